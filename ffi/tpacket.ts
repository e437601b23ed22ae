// AF_PACKET mmap ring ABI (linux/if_packet.h, x86_64). Declared once; tests compare against gcc.
export const PACKET = {
  RX_RING: 5,
  STATISTICS: 6,
  VERSION: 10,
  RESERVE: 12,
  TX_RING: 13,
  LOSS: 14,
  VNET_HDR: 15,
  QDISC_BYPASS: 20,
  IGNORE_OUTGOING: 23,
} as const;

export const TPACKET_V2 = 1;
export const TPACKET_V3 = 2;
export const TPACKET_ALIGNMENT = 16;
export const tpacketAlign = (x: number) => (x + TPACKET_ALIGNMENT - 1) & ~(TPACKET_ALIGNMENT - 1);
export const ETH_P_ALL = 0x0003;

/** rx status bits */
export const TP_STATUS_KERNEL = 0;
export const TP_STATUS_USER = 1;
export const TP_STATUS_COPY = 2;
export const TP_STATUS_LOSING = 4;
export const TP_STATUS_BLK_TMO = 32;
/** tx status values */
export const TP_STATUS_AVAILABLE = 0;
export const TP_STATUS_SEND_REQUEST = 1;
export const TP_STATUS_SENDING = 2;
export const TP_STATUS_WRONG_FORMAT = 4;

export const TP2 = {
  tp_status: 0,
  tp_len: 4,
  tp_snaplen: 8,
  tp_mac: 12,
  tp_net: 14,
  tp_sec: 16,
  tp_nsec: 20,
  size: 32,
} as const;
export const TP3 = {
  tp_next_offset: 0,
  tp_sec: 4,
  tp_nsec: 8,
  tp_snaplen: 12,
  tp_len: 16,
  tp_status: 20,
  tp_mac: 24,
  tp_net: 26,
  size: 48,
} as const;
/** struct tpacket_block_desc { version, offset_to_priv, tpacket_hdr_v1 hdr @8 } */
export const BLOCK = { version: 0, offset_to_priv: 4, hdr: 8, size: 48 } as const;
export const HDR_V1 = {
  block_status: 0,
  num_pkts: 4,
  offset_to_first_pkt: 8,
  blk_len: 12,
  seq_num: 16,
  size: 40,
} as const;
export const REQ3 = {
  tp_block_size: 0,
  tp_block_nr: 4,
  tp_frame_size: 8,
  tp_frame_nr: 12,
  tp_retire_blk_tov: 16,
  tp_sizeof_priv: 20,
  tp_feature_req_word: 24,
  size: 28,
} as const;
export const REQ_SIZE = 16; // struct tpacket_req: block_size, block_nr, frame_size, frame_nr
export const SOCKADDR_LL = {
  sll_family: 0,
  sll_protocol: 2,
  sll_ifindex: 4,
  sll_hatype: 8,
  sll_pkttype: 10,
  sll_halen: 11,
  sll_addr: 12,
  size: 20,
} as const;
export const TPACKET2_HDRLEN = tpacketAlign(TP2.size) + SOCKADDR_LL.size; // 52
export const TPACKET3_HDRLEN = tpacketAlign(TP3.size) + SOCKADDR_LL.size; // 68
/** Where V2 tx data starts in a frame (no PACKET_TX_HAS_OFF): right after the header, sockaddr_ll excluded. */
export const TX_DATA_OFFSET = TPACKET2_HDRLEN - SOCKADDR_LL.size; // 32
/** struct tpacket_stats_v3 (V2 reads the first two): reading them resets them. */
export const TP_STATS = { tp_packets: 0, tp_drops: 4, tp_freeze_q_cnt: 8, size: 12 } as const;
/** struct virtio_net_hdr (linux/virtio_net.h), the header PACKET_VNET_HDR puts before each frame. */
export const VNET_HDR = {
  flags: 0,
  gso_type: 1,
  hdr_len: 2,
  gso_size: 4,
  csum_start: 6,
  csum_offset: 8,
  size: 10,
} as const;
/** virtio_net_hdr flags and gso_type values (linux/virtio_net.h). */
export const VIRTIO_NET = {
  F_NEEDS_CSUM: 1,
  F_DATA_VALID: 2,
  GSO_NONE: 0,
  GSO_TCPV4: 1,
  GSO_UDP: 3,
  GSO_TCPV6: 4,
  GSO_ECN: 0x80,
} as const;
/**
 * Where the kernel puts a received frame in a V2 rx frame (af_packet.c tpacket_rcv, Ethernet): the
 * network header at TPACKET_ALIGN(TPACKET2_HDRLEN + 16) + reserve (+ the vnet header), the MAC header
 * 14 bytes before it. With reserve 2 the MAC header (vnet 0) or the vnet header (vnet 10) starts at 68:
 * word-aligned, so copies take the fast path.
 */
export const V2_RX_RESERVE = 2;
export const V2_RX_DATA = tpacketAlign(TPACKET2_HDRLEN + 16) + V2_RX_RESERVE - 14; // 68, vnet or not

/** struct sockaddr_ll for bind(). */
export function sockaddrLL(ifindex: number, protocolBE: number): Uint8Array {
  const b = new Uint8Array(SOCKADDR_LL.size);
  const dv = new DataView(b.buffer);
  dv.setUint16(SOCKADDR_LL.sll_family, 17, true); // AF_PACKET
  dv.setUint16(SOCKADDR_LL.sll_protocol, protocolBE, false); // network order
  dv.setInt32(SOCKADDR_LL.sll_ifindex, ifindex, true);
  return b;
}

/** struct tpacket_req3 for PACKET_RX_RING (V3). */
export function req3(blockSize: number, blockNr: number, frameSize: number, retireTovMs: number): Uint8Array {
  const b = new Uint8Array(REQ3.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(REQ3.tp_block_size, blockSize, true);
  dv.setUint32(REQ3.tp_block_nr, blockNr, true);
  dv.setUint32(REQ3.tp_frame_size, frameSize, true);
  dv.setUint32(REQ3.tp_frame_nr, (blockSize / frameSize) * blockNr, true);
  dv.setUint32(REQ3.tp_retire_blk_tov, retireTovMs, true);
  return b;
}

/** struct tpacket_req for PACKET_TX_RING (V2). */
export function req2(blockSize: number, blockNr: number, frameSize: number): Uint8Array {
  const b = new Uint32Array([blockSize, blockNr, frameSize, (blockSize / frameSize) * blockNr]);
  return new Uint8Array(b.buffer);
}
