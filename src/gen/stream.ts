// One stream compiled: its template, its field rules, its sizes, and the per-packet write: the
// varying fields, the length fields, the signature, then the checksums. Most streams get a write
// generated for them as O(1) patches (patch.ts). The general write below is for streams with a
// callback (and the reference the generated one is tested against): IPv4 headers summed again, 20 bytes; the innermost transport's
// sum from its pseudo-header, header and signature plus the known sum of the payload pattern for that
// length, so a packet costs the same at 60 or 1514 bytes. A stream with a callback (`each`) may
// change any byte: its transport checksum is then summed whole.
import { finish, sum16 } from "../packet/checksum.ts";
import { IPPROTO_TCP, IPPROTO_UDP } from "../packet/ipv4.ts";
import {
  compileRule,
  compileSize,
  type FieldRule,
  type Rule,
  RuleError,
  type SizeRule,
  writeField,
  xorshift,
} from "./fields.ts";
import { compilePatches, type WriteFn } from "./patch.ts";
import { SIG_LEN, writeSignature } from "./signature.ts";
import {
  buildTemplate,
  type FieldLoc,
  IPPROTO_ICMPV6,
  type PacketSpec,
  type Template,
  TemplateError,
} from "./template.ts";

export interface StreamSpec {
  name: string;
  packet: PacketSpec;
  /** Frame size without FCS (default: the smallest that holds the headers and the signature, 60 for IPv4/UDP). */
  size?: SizeRule;
  fields?: Record<string, FieldRule>;
  /** For what the rules cannot say: change the frame u8[off, off + len) in place (packet number k). */
  each?: (u8: Uint8Array, off: number, len: number, k: number) => void;
  /** Seed of the stream's random rules (default: its index + 1). */
  seed?: number;
}

/** A stream's mistake: one sentence naming the stream and the fix. */
export class StreamError extends Error {}

export class StreamWriter {
  readonly template: Template;
  readonly largest: number;
  /** The template with the stream's part of the signature: what prime() puts in a buffer. */
  private readonly frame: Uint8Array;
  /** The mean frame size over the first 4096 packets (for rates in bits/s turned into packets/s). */
  readonly meanSize: number;
  private readonly size: (k: number) => number;
  private readonly locs: FieldLoc[];
  private readonly rules: Rule[];
  private readonly sizeRule: Rule;
  private readonly pre: Float64Array; // payload pattern sums by length
  private readonly patStart: number;
  private readonly proto: number;
  /** The transport checksum's offset in its header; whether a pseudo-header is in it; UDP (0 -> 0xffff). */
  private readonly csumAt: number;
  private readonly pseudo: boolean;
  private readonly udp: boolean;
  /** The write as O(1) patches (patch.ts), where the stream allows it. */
  private readonly fast: WriteFn | null;

  /** @param id the stream's number in the signature; @param maxLen the largest frame the port takes */
  constructor(
    readonly spec: StreamSpec,
    readonly id: number,
    maxLen = 9000,
  ) {
    const name = typeof spec?.name === "string" && spec.name ? spec.name : `stream ${id}`;
    try {
      if (spec.seed !== undefined && (typeof spec.seed !== "number" || !Number.isInteger(spec.seed)))
        throw new RuleError(`seed: expected a whole number, got ${JSON.stringify(spec.seed)}`);
      if (
        spec.fields !== undefined &&
        (typeof spec.fields !== "object" || spec.fields === null || Array.isArray(spec.fields))
      )
        throw new RuleError('fields: expected { "ip.src": range(a, b), ... }');
      const rnd = xorshift(spec.seed ?? id + 1);
      // the headers first (at the largest size any rule allows), then the size rule against them
      const probe = buildTemplate(spec.packet, maxLen);
      const sz = compileSize(spec.size ?? probe.minLen, probe.minLen, maxLen, rnd);
      this.sizeRule = sz.rule;
      this.size = sz.rule.at;
      let total = 0;
      for (let k = 0; k < 4096; k++) total += sz.rule.at(k);
      this.meanSize = total / 4096;
      this.largest = sz.largest;
      this.template = buildTemplate(spec.packet, sz.largest);
      const f = this.template.fields;
      const names = Object.keys(spec.fields ?? {});
      this.locs = names.map((n) => {
        if (!f[n]) throw new RuleError(`fields: no field '${n}' in this packet (it has ${Object.keys(f).join(", ")})`);
        return f[n];
      });
      this.rules = names.map((n, i) =>
        compileRule((spec.fields as Record<string, FieldRule>)[n], this.locs[i], `fields.${n}`, rnd),
      );
    } catch (e) {
      if (e instanceof RuleError || e instanceof TemplateError) throw new StreamError(`stream '${name}': ${e.message}`);
      throw e;
    }
    if (spec.each !== undefined && typeof spec.each !== "function")
      throw new StreamError(`stream '${name}': each must be a function (u8, off, len, k) => void`);
    const t = this.template;
    // what every packet of the stream has: the template, and the signature's magic and stream id
    this.frame = t.frame.slice();
    writeSignature(this.frame, t.sigOff, id, 0, 0);
    this.patStart = t.sigOff + SIG_LEN;
    const fr = t.frame;
    this.pre = new Float64Array(fr.length - this.patStart + 1);
    for (let n = 1; n < this.pre.length; n++) {
      const i = this.patStart + n - 1;
      this.pre[n] = this.pre[n - 1] + ((n - 1) & 1 ? fr[i] : fr[i] << 8);
    }
    this.proto = t.l4.kind === "udp" ? IPPROTO_UDP : t.l4.kind === "tcp" ? IPPROTO_TCP : IPPROTO_ICMPV6;
    this.csumAt = t.l4.kind === "udp" ? 6 : t.l4.kind === "tcp" ? 16 : 2;
    this.pseudo = t.l4.kind !== "icmp";
    this.udp = t.l4.kind === "udp";
    this.fast = spec.each
      ? null
      : compilePatches({
          template: t,
          frame: this.frame,
          locs: this.locs,
          rules: this.rules,
          size: this.sizeRule,
          pre: this.pre,
          patStart: this.patStart,
          proto: this.proto,
          pseudo: this.pseudo,
          udp: this.udp,
          csumAt: this.csumAt,
        });
  }

  /** Put the template into a buffer (once per buffer; again when its contents were changed). */
  prime(u8: Uint8Array, off: number): void {
    u8.set(this.frame, off);
  }

  /** Write packet k (sent at timeMs) into a primed buffer at off; returns its length. */
  write(u8: Uint8Array, off: number, k: number, timeMs: number): number {
    if (this.fast) return this.fast(u8, off, k, timeMs);
    const t = this.template;
    const len = this.size(k);
    const each = this.spec.each;
    if (each) this.prime(u8, off); // the callback may have changed anything last time
    const rules = this.rules,
      locs = this.locs;
    for (let i = 0; i < rules.length; i++) {
      const loc = locs[i],
        v = rules[i].at(k),
        o = off + loc.off;
      // the common widths with integer shifts; MACs and bit fields the general way
      if (loc.bytes === 4 && loc.bits === 32) {
        u8[o] = v >>> 24;
        u8[o + 1] = (v >>> 16) & 255;
        u8[o + 2] = (v >>> 8) & 255;
        u8[o + 3] = v & 255;
      } else if (loc.bytes === 2 && loc.bits === 16) {
        u8[o] = v >>> 8;
        u8[o + 1] = v & 255;
      } else if (loc.bytes === 1) u8[o] = v;
      else writeField(u8, off, loc, v);
    }
    const ips = t.ips;
    for (let i = 0; i < ips.length; i++) {
      const ip = ips[i],
        o = off + ip.off;
      if (ip.v6) {
        const l = len - ip.off - 40;
        u8[o + 4] = l >> 8;
        u8[o + 5] = l & 255;
      } else {
        const l = len - ip.off;
        u8[o + 2] = l >> 8;
        u8[o + 3] = l & 255;
      }
    }
    const udps = t.udps;
    for (let i = 0; i < udps.length; i++) {
      const o = off + udps[i],
        l = len - udps[i];
      u8[o + 4] = l >> 8;
      u8[o + 5] = l & 255;
    }
    writeSignature(u8, off + t.sigOff, this.id, k, timeMs);
    if (each) each(u8, off, len, k);
    for (let i = 0; i < ips.length; i++) {
      const ip = ips[i];
      if (ip.v6) continue;
      // the IPv4 header's 10 words, its checksum word left out
      const o = off + ip.off;
      let sum = 0;
      for (let w = 0; w < 20; w += 2) if (w !== 10) sum += (u8[o + w] << 8) | u8[o + w + 1];
      sum = (sum & 0xffff) + (sum >>> 16);
      sum = ~((sum & 0xffff) + (sum >>> 16)) & 0xffff;
      u8[o + 10] = sum >> 8;
      u8[o + 11] = sum & 255;
    }
    this.l4Checksum(u8, off, len, each !== undefined);
    return len;
  }

  private l4Checksum(u8: Uint8Array, off: number, len: number, whole: boolean): void {
    const l4 = this.template.l4,
      o = off + l4.off,
      at = this.csumAt,
      l4len = len - l4.off;
    u8[o + at] = 0;
    u8[o + at + 1] = 0;
    let s = 0;
    if (this.pseudo) {
      const ip = off + l4.ip.off,
        a = ip + (l4.ip.v6 ? 8 : 12),
        end = a + (l4.ip.v6 ? 32 : 8);
      for (let i = a; i < end; i += 2) s += (u8[i] << 8) | u8[i + 1];
      s += this.proto + l4len;
    }
    if (whole) s = sum16(u8, o, l4len, s);
    else {
      const end = o + l4.hdr + SIG_LEN; // even: headers and the signature are whole words
      for (let i = o; i < end; i += 2) s += (u8[i] << 8) | u8[i + 1];
      s += this.pre[len - this.patStart];
    }
    let c = finish(s);
    if (c === 0 && this.udp) c = 0xffff;
    u8[o + at] = c >> 8;
    u8[o + at + 1] = c & 255;
  }
}
