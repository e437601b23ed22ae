// One stream compiled: its template, its field rules, its sizes, and the per-packet write: the
// varying fields, the length fields, the signature, then the checksums (IPv4 headers summed again,
// 20 bytes; the innermost transport's from its pseudo-header, header and signature plus the known sum
// of the payload pattern for that length), so a packet costs the same at 60 or 1514 bytes. A stream
// with a callback (`each`) may change any byte: its transport checksum is then summed whole.
import { checksum, finish, sum16 } from "../packet/checksum.ts";
import { IPPROTO_TCP, IPPROTO_UDP } from "../packet/ipv4.ts";
import { compileRule, compileSize, type FieldRule, RuleError, type SizeRule, writeField, xorshift } from "./fields.ts";
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
  /** The mean frame size over the first 4096 packets (for rates in bits/s turned into packets/s). */
  readonly meanSize: number;
  private readonly size: (k: number) => number;
  private readonly locs: FieldLoc[];
  private readonly rules: ((k: number) => number)[];
  private readonly pre: Float64Array; // payload pattern sums by length
  private readonly patStart: number;
  private readonly proto: number;

  /** @param id the stream's number in the signature; @param maxLen the largest frame the port takes */
  constructor(
    readonly spec: StreamSpec,
    readonly id: number,
    maxLen = 9000,
  ) {
    const name = typeof spec?.name === "string" && spec.name ? spec.name : `stream ${id}`;
    try {
      const rnd = xorshift(spec.seed ?? id + 1);
      // the headers first (at the largest size any rule allows), then the size rule against them
      const probe = buildTemplate(spec.packet, maxLen);
      const sz = compileSize(spec.size ?? probe.minLen, probe.minLen, maxLen, rnd);
      this.size = sz.at;
      let total = 0;
      for (let k = 0; k < 4096; k++) total += sz.at(k);
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
    this.patStart = t.sigOff + SIG_LEN;
    const fr = t.frame;
    this.pre = new Float64Array(fr.length - this.patStart + 1);
    for (let n = 1; n < this.pre.length; n++) {
      const i = this.patStart + n - 1;
      this.pre[n] = this.pre[n - 1] + ((n - 1) & 1 ? fr[i] : fr[i] << 8);
    }
    this.proto = t.l4.kind === "udp" ? IPPROTO_UDP : t.l4.kind === "tcp" ? IPPROTO_TCP : IPPROTO_ICMPV6;
  }

  /** Put the template into a buffer (once per buffer; again when its contents were changed). */
  prime(u8: Uint8Array, off: number): void {
    u8.set(this.template.frame, off);
  }

  /** Write packet k (sent at timeMs) into a primed buffer at off; returns its length. */
  write(u8: Uint8Array, off: number, k: number, timeMs: number): number {
    const t = this.template;
    const len = this.size(k);
    if (this.spec.each) this.prime(u8, off); // the callback may have changed anything last time
    for (let i = 0; i < this.rules.length; i++) writeField(u8, off, this.locs[i], this.rules[i](k));
    for (let i = 0; i < t.ips.length; i++) {
      const ip = t.ips[i],
        o = off + ip.off,
        l = ip.v6 ? len - ip.off - 40 : len - ip.off;
      u8[o + (ip.v6 ? 4 : 2)] = l >> 8;
      u8[o + (ip.v6 ? 5 : 3)] = l & 255;
    }
    for (let i = 0; i < t.udps.length; i++) {
      const o = off + t.udps[i],
        l = len - t.udps[i];
      u8[o + 4] = l >> 8;
      u8[o + 5] = l & 255;
    }
    writeSignature(u8, off + t.sigOff, this.id, k, timeMs);
    if (this.spec.each) this.spec.each(u8, off, len, k);
    for (let i = 0; i < t.ips.length; i++) {
      const ip = t.ips[i];
      if (ip.v6) continue;
      const o = off + ip.off;
      u8[o + 10] = 0;
      u8[o + 11] = 0;
      const c = checksum(u8, o, 20);
      u8[o + 10] = c >> 8;
      u8[o + 11] = c & 255;
    }
    this.l4Checksum(u8, off, len);
    return len;
  }

  private l4Checksum(u8: Uint8Array, off: number, len: number): void {
    const l4 = this.template.l4,
      o = off + l4.off,
      at = l4.kind === "udp" ? 6 : l4.kind === "tcp" ? 16 : 2,
      l4len = len - l4.off;
    u8[o + at] = 0;
    u8[o + at + 1] = 0;
    let s = 0;
    if (l4.kind !== "icmp") {
      const ip = off + l4.ip.off;
      s = l4.ip.v6 ? sum16(u8, ip + 8, 32) : sum16(u8, ip + 12, 8);
      s += this.proto + l4len;
    }
    if (this.spec.each) s = sum16(u8, o, l4len, s);
    else {
      s = sum16(u8, o, l4.hdr + SIG_LEN, s);
      s += this.pre[len - this.patStart];
    }
    let c = finish(s);
    if (l4.kind === "udp" && c === 0) c = 0xffff;
    u8[o + at] = c >> 8;
    u8[o + at + 1] = c & 255;
  }
}
