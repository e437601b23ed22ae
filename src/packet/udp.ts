// UDP header and its checksum over the IPv4/IPv6 pseudo-header.
import { finish, sum16 } from "./checksum.ts";
import { IPPROTO_UDP } from "./ipv4.ts";

export const UDP_HLEN = 8;
export const UDP = { sport: 0, dport: 2, len: 4, sum: 6 } as const;

export function writeUdpHeader(u8: Uint8Array, o: number, sport: number, dport: number, len: number): void {
  u8[o] = sport >> 8;
  u8[o + 1] = sport & 255;
  u8[o + 2] = dport >> 8;
  u8[o + 3] = dport & 255;
  u8[o + 4] = len >> 8;
  u8[o + 5] = len & 255;
  u8[o + 6] = 0;
  u8[o + 7] = 0;
}

/** Checksum of the UDP datagram at `udp` (len bytes) whose IP header starts at `ip`. */
export function udpChecksum(u8: Uint8Array, ip: number, udp: number, len: number, v6 = false): number {
  const pseudo = v6
    ? sum16(u8, ip + 8, 32, IPPROTO_UDP + len) // src+dst, next header, upper-layer length
    : sum16(u8, ip + 12, 8, IPPROTO_UDP + len);
  const c = finish(sum16(u8, udp, len, pseudo));
  return c === 0 ? 0xffff : c; // 0 means "no checksum" in UDP
}

/** Compute and store the UDP checksum. */
export function fillUdpChecksum(u8: Uint8Array, ip: number, udp: number, len: number, v6 = false): void {
  u8[udp + 6] = 0;
  u8[udp + 7] = 0;
  const c = udpChecksum(u8, ip, udp, len, v6);
  u8[udp + 6] = c >> 8;
  u8[udp + 7] = c & 255;
}

/** True if a received datagram's checksum verifies (0 = absent, accepted for IPv4). */
export function udpChecksumOk(u8: Uint8Array, ip: number, udp: number, v6 = false): boolean {
  const len = (u8[udp + 4] << 8) | u8[udp + 5];
  const stored = (u8[udp + 6] << 8) | u8[udp + 7];
  if (stored === 0) return !v6;
  const pseudo = v6 ? sum16(u8, ip + 8, 32, IPPROTO_UDP + len) : sum16(u8, ip + 12, 8, IPPROTO_UDP + len);
  return finish(sum16(u8, udp, len, pseudo)) === 0;
}
