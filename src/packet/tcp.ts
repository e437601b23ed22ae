// TCP header fields (RFC 9293) as far as bunmap rewrites them: sequence number, data offset, flags, checksum.

export const TCP = { sport: 0, dport: 2, seq: 4, ack: 8, doff: 12, flags: 13, win: 14, sum: 16, urp: 18 } as const;
export const TCP_HLEN = 20;
export const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
export const TCP_CWR = 0x80;

/** Header length in bytes of the TCP header at o (data offset × 4). */
export function tcpHeaderLen(u8: Uint8Array, o: number): number {
  return (u8[o + TCP.doff] >> 4) * 4;
}
