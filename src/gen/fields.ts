// The field engine's rules (TRex's field engine, MoonGen's per-packet modifiers), each compiled to a
// function of the packet's number in its stream, O(1): a range stepped through, random values in a
// range, a sequence that wraps at the field's width, a list in turn. Sizes the same way: fixed, a
// range, random, IMIX, or weighted sizes.
import { parseMac } from "../packet/ethernet.ts";
import { parseIPv4 } from "../packet/ipv4.ts";
import { parseIPv6 } from "../packet/ipv6.ts";
import type { FieldLoc } from "./template.ts";

export type FieldValue = number | string;
export type FieldRule =
  | { range: [FieldValue, FieldValue]; step?: number }
  | { random: [FieldValue, FieldValue] }
  | { seq: FieldValue; step?: number }
  | { list: FieldValue[] };

/** Rule builders for profiles: range("198.18.0.1", "198.18.0.254"), random(1024, 65535), ... */
export const range = (from: FieldValue, to: FieldValue, step = 1): FieldRule => ({ range: [from, to], step });
export const random = (from: FieldValue, to: FieldValue): FieldRule => ({ random: [from, to] });
export const seq = (from: FieldValue, step = 1): FieldRule => ({ seq: from, step });
export const list = (...values: FieldValue[]): FieldRule => ({ list: values });

/** Frame sizes (bytes without FCS): fixed, stepped through a range, random in one, IMIX (7 x 60,
 * 4 x 590, 1 x 1514: 64/594/1518 on the wire; 60 grows to what the headers need), or [size, weight]
 * pairs taken in turn. */
export type SizeRule =
  | number
  | { range: [number, number] }
  | { random: [number, number] }
  | "imix"
  | [number, number][];
export const IMIX: [number, number][] = [
  [60, 7],
  [590, 4],
  [1514, 1],
];

export class RuleError extends Error {}

/** xorshift32: a fast seeded generator for random rules (one per stream). */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** A value of the field's kind as a number (MACs: 48 bits; IPv6: the low 32 bits, see template.ts). */
function fieldValue(v: FieldValue, loc: FieldLoc, name: string): number {
  const max = 2 ** loc.bits - 1;
  let n: number;
  try {
    if (typeof v === "number") n = v;
    else if (loc.kind === "mac") n = parseMac(v).reduce((a, b) => a * 256 + b, 0);
    else if (loc.kind === "ip4") n = parseIPv4(v);
    else if (loc.kind === "ip6") {
      const b = parseIPv6(v);
      n = ((b[12] << 24) | (b[13] << 16) | (b[14] << 8) | b[15]) >>> 0;
    } else n = Number.NaN;
  } catch {
    n = Number.NaN;
  }
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new RuleError(
      `${name}: ${JSON.stringify(v)} is not a value of this field (0..${max}${loc.kind === "num" ? "" : ` or ${loc.kind === "mac" ? "a MAC" : "an address"}`})`,
    );
  return n;
}

/**
 * A rule compiled: its value for packet k as JS source, so that a stream's writer can be generated
 * with the rule inline (patch.ts: a call to a closure that keeps state costs the JIT about 10 ns a
 * packet there), and as a function built from that same source.
 */
export interface Rule {
  at: (k: number) => number;
  /** `let` declarations of its state; statements that set the state for packet k when packets did
   * not come in turn (k is not the last one + 1); statements setting `const v<x>` for packet k. Every
   * name it uses ends in the suffix x. */
  source(x: string): { decl: string; jump: string; body: string };
  /** The values its source names (each name + x, bound by the generated function). */
  refs: Record<string, unknown>;
  /** The value when it never changes. */
  fixed: number | null;
}

function fromSource(source: Rule["source"], refs: Record<string, unknown> = {}, fixed: number | null = null): Rule {
  const { decl, jump, body } = source("");
  const names = Object.keys(refs);
  const at = new Function(
    ...names,
    `${decl}\nlet next = 0;\nreturn (k) => {\nif (k !== next) {\n${jump}\n}\nnext = k + 1;\n${body}\nreturn v;\n};`,
  )(...Object.values(refs));
  return { at, source, refs, fixed };
}

/**
 * base + ((first + k * step) mod n), without a division per packet: packets are numbered in turn,
 * so the remainder is carried from k to k + 1 and worked out afresh (exactly, in BigInt) only when k
 * jumps. `base`, `first` and `step` are whole numbers, 0 <= first < n, step >= 0.
 */
function stepRule(base: number, first: number, step: number, n: number, then = (v: string) => v): Rule {
  const inc = step % n;
  const at = (k: number) => Number((BigInt(first) + BigInt(k) * BigInt(step)) % BigInt(n));
  return fromSource(
    (x) => ({
      decl: `let c${x} = ${first};`,
      jump: `c${x} = at${x}(k);`,
      body: `const v${x} = ${then(`${base} + c${x}`)};
c${x} += ${inc};
if (c${x} >= ${n}) c${x} -= ${n};`,
    }),
    { at },
    n === 1 ? base + first : null,
  );
}

/** A value drawn from the stream's generator: base + floor(rnd() * n). */
function randomRule(base: number, n: number, rnd: () => number, then = (v: string) => v): Rule {
  return fromSource(
    (x) => ({ decl: "", jump: "", body: `const v${x} = ${then(`${base} + Math.floor(rnd${x}() * ${n})`)};` }),
    { rnd },
    n === 1 ? base : null,
  );
}

/**
 * The rule as a function of the packet's number k (0, 1, 2, ...). A 32-bit field's values come as
 * signed 32-bit integers (the same 32 bits): values at or above 2^31 would be doubles, and turning
 * those back into bits takes the JIT a slow call per store and per checksum share.
 */
export function compileRule(rule: FieldRule, loc: FieldLoc, name: string, rnd: () => number): Rule {
  const r = rule as Record<string, unknown>;
  const wrap = 2 ** loc.bits,
    i32 = loc.bits === 32,
    asField = i32 ? (v: string) => `(${v}) | 0` : undefined;
  if (Array.isArray(r.range)) {
    const [a, b] = r.range.map((v) => fieldValue(v as FieldValue, loc, name));
    const step = r.step ?? 1;
    if (b < a) throw new RuleError(`${name}: range ${JSON.stringify(r.range)} ends before it starts`);
    if (typeof step !== "number" || !Number.isInteger(step) || step < 1)
      throw new RuleError(`${name}: step must be a whole number >= 1`);
    return stepRule(i32 ? a | 0 : a, 0, step, b - a + 1, asField);
  }
  if (Array.isArray(r.random)) {
    const [a, b] = r.random.map((v) => fieldValue(v as FieldValue, loc, name));
    if (b < a) throw new RuleError(`${name}: random ${JSON.stringify(r.random)} ends before it starts`);
    return randomRule(i32 ? a | 0 : a, b - a + 1, rnd, asField);
  }
  if (r.seq !== undefined) {
    const a = fieldValue(r.seq as FieldValue, loc, name);
    const step = r.step ?? 1;
    if (typeof step !== "number" || !Number.isInteger(step))
      throw new RuleError(`${name}: step must be a whole number`);
    // (a + k * step) modulo the field's width; 32 bits: the product's low 32 bits (imul), stateless
    if (i32)
      return fromSource((x) => ({
        decl: "",
        jump: "",
        body: `const v${x} = (${a | 0} + Math.imul(k, ${step | 0})) | 0;`,
      }));
    return stepRule(0, a, ((step % wrap) + wrap) % wrap, wrap, asField);
  }
  if (Array.isArray(r.list)) {
    if (!r.list.length) throw new RuleError(`${name}: list needs at least one value`);
    const vals = r.list.map((v) => fieldValue(v as FieldValue, loc, name));
    return listRule(i32 ? Int32Array.from(vals) : Float64Array.from(vals));
  }
  throw new RuleError(`${name}: expected range(a, b), random(a, b), seq(a) or list(...), got ${JSON.stringify(rule)}`);
}

/** The values in turn. */
function listRule(vals: Int32Array | Float64Array): Rule {
  const i = stepRule(0, 0, 1, vals.length);
  return fromSource(
    (x) => {
      const s = i.source(`i${x}`); // its names: ci<x>, vi<x>, ati<x>
      return { decl: s.decl, jump: s.jump, body: `${s.body}\nconst v${x} = vals${x}[vi${x}];` };
    },
    { vals, ati: i.refs.at },
    vals.every((v) => v === vals[0]) ? vals[0] : null,
  );
}

/** Write v into the field (bit fields: into their 16-bit word). */
export function writeField(u8: Uint8Array, at: number, loc: FieldLoc, v: number): void {
  const o = at + loc.off;
  if (loc.bits !== loc.bytes * 8) {
    const mask = ((1 << loc.bits) - 1) << loc.shift;
    const w = ((u8[o] << 8) | u8[o + 1]) & ~mask;
    const n = w | ((v << loc.shift) & mask);
    u8[o] = n >> 8;
    u8[o + 1] = n & 255;
    return;
  }
  for (let i = loc.bytes - 1; i >= 0; i--) {
    u8[o + i] = v % 256;
    v = Math.floor(v / 256);
  }
}

/** The size rule; `min`/`max` bound it (headers + signature; the port's buffers). */
export function compileSize(
  rule: SizeRule,
  min: number,
  max: number,
  rnd: () => number,
): { rule: Rule; largest: number } {
  const check = (n: unknown) => {
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max)
      throw new RuleError(`size ${JSON.stringify(n)}: expected a whole number of bytes ${min}..${max} (without FCS)`);
    return n;
  };
  if (typeof rule === "number") {
    const n = check(rule);
    return { rule: stepRule(n, 0, 0, 1), largest: n };
  }
  // IMIX's 60 bytes grow to the smallest frame the headers and signature allow (TCP, IPv6, VXLAN)
  const imix = IMIX.map(([sz, w]) => [Math.min(Math.max(sz, min), max), w] as [number, number]);
  const weighted = rule === "imix" ? imix : Array.isArray(rule) ? rule : null;
  if (weighted) {
    if (!weighted.length) throw new RuleError("size: [size, weight] pairs needed");
    const seqd: number[] = [];
    for (const pair of weighted) {
      if (!Array.isArray(pair) || pair.length !== 2)
        throw new RuleError("size: expected [size, weight] pairs, e.g. [[60, 7], [1514, 1]]");
      const [s, w] = pair;
      check(s);
      if (!Number.isInteger(w) || w < 1 || w > 1000)
        throw new RuleError(`size: weight ${JSON.stringify(w)} must be a whole number 1..1000`);
      for (let i = 0; i < w; i++) seqd.push(s);
    }
    return { rule: listRule(Int32Array.from(seqd)), largest: Math.max(...seqd) };
  }
  const r = rule as Record<string, unknown>;
  const pair = (Array.isArray(r.range) ? r.range : r.random) as unknown;
  if (!Array.isArray(pair) || pair.length !== 2)
    throw new RuleError(
      `size: expected a number, { range: [a, b] }, { random: [a, b] }, "imix" or [size, weight] pairs, got ${JSON.stringify(rule)}`,
    );
  const a = check(pair[0]),
    b = check(pair[1]);
  if (b < a) throw new RuleError(`size: ${JSON.stringify(pair)} ends before it starts`);
  const n = b - a + 1;
  return { rule: Array.isArray(r.range) ? stepRule(a, 0, 1, n) : randomRule(a, n, rnd), largest: b };
}
