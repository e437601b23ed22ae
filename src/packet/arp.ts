// ARP for IPv4 over Ethernet (RFC 826), read and written in place at a frame's offset.
import { ETH_HLEN, ETHERTYPE_ARP, writeEthernet } from "./ethernet.ts";
import { get32, put32 } from "./ipv4.ts";

export const ARP_LEN = 28;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
/** Field offsets from the start of the ARP header. */
export const ARP = { htype: 0, ptype: 2, hlen: 4, plen: 5, op: 6, sha: 8, spa: 14, tha: 18, tpa: 24 } as const;

/** True if the frame at `off` is an Ethernet/IPv4 ARP packet. */
export function isArp(u8: Uint8Array, off: number, len: number): boolean {
  return (
    len >= ETH_HLEN + ARP_LEN &&
    u8[off + 12] === 0x08 &&
    u8[off + 13] === 0x06 &&
    u8[off + 14] === 0 &&
    u8[off + 15] === 1 &&
    u8[off + 16] === 0x08 &&
    u8[off + 17] === 0 &&
    u8[off + 18] === 6 &&
    u8[off + 19] === 4
  );
}

export const arpOp = (u8: Uint8Array, off: number) => (u8[off + 14 + ARP.op] << 8) | u8[off + 14 + ARP.op + 1];
export const arpSenderIp = (u8: Uint8Array, off: number) => get32(u8, off + 14 + ARP.spa);
export const arpTargetIp = (u8: Uint8Array, off: number) => get32(u8, off + 14 + ARP.tpa);

/** Write a whole ARP frame (42 bytes, padded by the caller if it wants 60). Returns its length. */
export function writeArp(
  u8: Uint8Array,
  off: number,
  op: number,
  sha: Uint8Array,
  spa: number,
  tha: Uint8Array,
  tpa: number,
  ethDst: Uint8Array,
): number {
  writeEthernet(u8, off, ethDst, sha, ETHERTYPE_ARP);
  const a = off + ETH_HLEN;
  u8[a] = 0;
  u8[a + 1] = 1;
  u8[a + 2] = 8;
  u8[a + 3] = 0;
  u8[a + 4] = 6;
  u8[a + 5] = 4;
  u8[a + 6] = 0;
  u8[a + 7] = op;
  u8.set(sha, a + ARP.sha);
  put32(u8, a + ARP.spa, spa);
  u8.set(tha, a + ARP.tha);
  put32(u8, a + ARP.tpa, tpa);
  return ETH_HLEN + ARP_LEN;
}
