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

/** The rule as a function of the packet's number k (0, 1, 2, ...). */
export function compileRule(rule: FieldRule, loc: FieldLoc, name: string, rnd: () => number): (k: number) => number {
  const r = rule as Record<string, unknown>;
  const wrap = 2 ** loc.bits;
  if (Array.isArray(r.range)) {
    const [a, b] = r.range.map((v) => fieldValue(v as FieldValue, loc, name));
    const step = r.step ?? 1;
    if (b < a) throw new RuleError(`${name}: range ${JSON.stringify(r.range)} ends before it starts`);
    if (typeof step !== "number" || !Number.isInteger(step) || step < 1)
      throw new RuleError(`${name}: step must be a whole number >= 1`);
    const n = b - a + 1;
    return (k) => a + ((k * step) % n);
  }
  if (Array.isArray(r.random)) {
    const [a, b] = r.random.map((v) => fieldValue(v as FieldValue, loc, name));
    if (b < a) throw new RuleError(`${name}: random ${JSON.stringify(r.random)} ends before it starts`);
    const n = b - a + 1;
    return () => a + Math.floor(rnd() * n);
  }
  if (r.seq !== undefined) {
    const a = fieldValue(r.seq as FieldValue, loc, name);
    const step = r.step ?? 1;
    if (typeof step !== "number" || !Number.isInteger(step))
      throw new RuleError(`${name}: step must be a whole number`);
    return (k) => (((a + k * step) % wrap) + wrap) % wrap;
  }
  if (Array.isArray(r.list)) {
    if (!r.list.length) throw new RuleError(`${name}: list needs at least one value`);
    const vals = Float64Array.from(r.list, (v) => fieldValue(v as FieldValue, loc, name));
    return (k) => vals[k % vals.length];
  }
  throw new RuleError(`${name}: expected range(a, b), random(a, b), seq(a) or list(...), got ${JSON.stringify(rule)}`);
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

/** The size rule as a function of k; `min`/`max` bound it (headers + signature; the port's buffers). */
export function compileSize(
  rule: SizeRule,
  min: number,
  max: number,
  rnd: () => number,
): { at: (k: number) => number; largest: number } {
  const check = (n: unknown) => {
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max)
      throw new RuleError(`size ${JSON.stringify(n)}: expected a whole number of bytes ${min}..${max} (without FCS)`);
    return n;
  };
  if (typeof rule === "number") {
    const n = check(rule);
    return { at: () => n, largest: n };
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
    const t = Int32Array.from(seqd);
    return { at: (k) => t[k % t.length], largest: Math.max(...t) };
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
  return { at: Array.isArray(r.range) ? (k) => a + (k % n) : () => a + Math.floor(rnd() * n), largest: b };
}
