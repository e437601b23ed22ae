// IPv4 header (no options) at a byte offset.
import { checksum } from "./checksum.ts";

export const IPV4_HLEN = 20;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPTOS_LOWDELAY = 0x10;
export const IP_DF = 0x4000;
export const IPDEFTTL = 64;
/** Field offsets. */
export const IP4 = { vhl: 0, tos: 1, len: 2, id: 4, off: 6, ttl: 8, proto: 9, sum: 10, src: 12, dst: 16 } as const;

export function parseIPv4(s: string): number {
  const p = s.split(".");
  if (p.length !== 4 || !p.every((x) => /^[0-9]{1,3}$/.test(x) && Number(x) < 256)) {
    throw new Error(`bad IPv4 address '${s}'`);
  }
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** Is `s` a dotted-quad IPv4 address (the syntax parseIPv4 takes)? */
export function isIPv4(s: string): boolean {
  try {
    parseIPv4(s);
    return true;
  } catch {
    return false;
  }
}

export function formatIPv4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export function get32(u8: Uint8Array, o: number): number {
  return ((u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3]) >>> 0;
}
export function put32(u8: Uint8Array, o: number, v: number): void {
  u8[o] = v >>> 24;
  u8[o + 1] = v >>> 16;
  u8[o + 2] = v >>> 8;
  u8[o + 3] = v;
}
export function get16(u8: Uint8Array, o: number): number {
  return (u8[o] << 8) | u8[o + 1];
}
export function put16(u8: Uint8Array, o: number, v: number): void {
  u8[o] = v >>> 8;
  u8[o + 1] = v;
}

export interface IPv4Fields {
  src: number;
  dst: number;
  proto: number;
  totalLen: number;
  tos?: number;
  id?: number;
  frag?: number;
  ttl?: number;
}

/** Write a 20-byte header with its checksum. */
export function writeIPv4(u8: Uint8Array, o: number, f: IPv4Fields): void {
  u8[o] = 0x45;
  u8[o + 1] = f.tos ?? 0;
  put16(u8, o + 2, f.totalLen);
  put16(u8, o + 4, f.id ?? 0);
  put16(u8, o + 6, f.frag ?? 0);
  u8[o + 8] = f.ttl ?? IPDEFTTL;
  u8[o + 9] = f.proto;
  put16(u8, o + 10, 0);
  put32(u8, o + 12, f.src);
  put32(u8, o + 16, f.dst);
  put16(u8, o + 10, checksum(u8, o, IPV4_HLEN));
}

/** True if the header checksum verifies. */
export function ipv4ChecksumOk(u8: Uint8Array, o: number): boolean {
  const hl = (u8[o] & 0xf) * 4;
  return checksum(u8, o, hl) === 0;
}

/** Swap source and destination addresses (checksum unchanged: the sum is commutative). */
export function swapIPv4(u8: Uint8Array, o: number): void {
  for (let i = 0; i < 4; i++) {
    const t = u8[o + 12 + i];
    u8[o + 12 + i] = u8[o + 16 + i];
    u8[o + 16 + i] = t;
  }
}
