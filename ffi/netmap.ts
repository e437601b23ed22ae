// netmap's control ABI (sys/net/netmap.h, NETMAP_API 14, x86_64): request structs for NIOCCTRL,
// built and read byte for byte here. Offsets from the project's reference (checked with gcc there);
// tests compare every encoder with hand-laid bytes.

export const NETMAP_API = 14;
export const NETMAP_REQ_IFNAMSIZ = 64;

/** ioctl request numbers (x86_64). */
export const NIOCCTRL = 0xc0586997; // _IOWR('i', 151, struct nmreq_header)
export const NIOCTXSYNC = 0x6994; // _IO('i', 148)
export const NIOCRXSYNC = 0x6995; // _IO('i', 149)

/** nr_reqtype */
export const REQ = {
  REGISTER: 1,
  PORT_INFO_GET: 2,
  VALE_ATTACH: 3,
  VALE_DETACH: 4,
  VALE_LIST: 5,
  PORT_HDR_SET: 6,
  PORT_HDR_GET: 7,
  VALE_NEWIF: 8,
  VALE_DELIF: 9,
  VALE_POLLING_ENABLE: 10,
  VALE_POLLING_DISABLE: 11,
  POOLS_INFO_GET: 12,
  SYNC_KLOOP_START: 13,
  SYNC_KLOOP_STOP: 14,
  CSB_ENABLE: 15,
} as const;

/** nr_mode */
export const NR_REG = {
  DEFAULT: 0,
  ALL_NIC: 1,
  SW: 2,
  NIC_SW: 3,
  ONE_NIC: 4,
  PIPE_MASTER: 5,
  PIPE_SLAVE: 6,
  NULL: 7,
  ONE_SW: 8,
} as const;

/** nr_flags (u64, all below 2^32) */
export const NR_FLAG = {
  MONITOR_TX: 0x100,
  MONITOR_RX: 0x200,
  ZCOPY_MON: 0x400,
  EXCLUSIVE: 0x800,
  RX_RINGS_ONLY: 0x2000,
  TX_RINGS_ONLY: 0x4000,
  ACCEPT_VNET_HDR: 0x8000,
  DO_RX_POLL: 0x10000,
  NO_TX_POLL: 0x20000,
} as const;

export const POLLING_MODE = { SINGLE_CPU: 1, MULTI_CPU: 2 } as const;

/** struct nmreq_header */
export const HDR = {
  nr_version: 0,
  nr_reqtype: 2,
  nr_reserved: 4,
  nr_name: 8,
  nr_options: 72,
  nr_body: 80,
  size: 88,
} as const;
/** struct nmreq_register */
export const REG = {
  nr_offset: 0,
  nr_memsize: 8,
  nr_tx_slots: 16,
  nr_rx_slots: 20,
  nr_tx_rings: 24,
  nr_rx_rings: 26,
  nr_host_tx_rings: 28,
  nr_host_rx_rings: 30,
  nr_mem_id: 32,
  nr_ringid: 34,
  nr_mode: 36,
  nr_extra_bufs: 40,
  nr_flags: 48,
  size: 56,
} as const;
/** struct nmreq_vale_attach = { nmreq_register reg; u32 port_index; u32 pad1 } */
export const VALE_ATTACH = { reg: 0, port_index: 56, size: 64 } as const;
export const VALE_DETACH = { port_index: 0, size: 8 } as const;
export const VALE_NEWIF = {
  nr_tx_slots: 0,
  nr_rx_slots: 4,
  nr_tx_rings: 8,
  nr_rx_rings: 10,
  nr_mem_id: 12,
  size: 16,
} as const;
export const VALE_LIST = { nr_bridge_idx: 0, nr_port_idx: 4, size: 8 } as const;
export const PORT_INFO = {
  nr_memsize: 0,
  nr_tx_slots: 8,
  nr_rx_slots: 12,
  nr_tx_rings: 16,
  nr_rx_rings: 18,
  nr_host_tx_rings: 20,
  nr_host_rx_rings: 22,
  nr_mem_id: 24,
  size: 32,
} as const;
export const VALE_POLLING = { nr_mode: 0, nr_first_cpu_id: 4, nr_num_polling_cpus: 8, size: 16 } as const;
export const PORT_HDR = { nr_hdr_len: 0, size: 8 } as const;
export const OPTION = { nro_next: 0, nro_reqtype: 8, nro_status: 12, nro_size: 16, size: 24 } as const;

/** libnetmap's struct nmport_d (x86_64, gcc): the fields a port reads after nmport_open. */
export const NMPORT_D = {
  hdr: 0,
  reg: 88,
  mem: 144,
  ctx: 152,
  register_done: 160,
  mmap_done: 164,
  extmem: 168,
  fd: 176,
  nifp: 184,
  first_tx_ring: 192,
  last_tx_ring: 194,
  first_rx_ring: 196,
  last_rx_ring: 198,
  cur_tx_ring: 200,
  cur_rx_ring: 202,
  clist: 208,
  size: 216,
} as const;
/** struct nmem_d */
export const NMEM_D = { mem_id: 0, mem: 8, size: 16 } as const;

export interface Header {
  reqtype: number;
  name: string;
  /** Addresses (bun:ffi pointers) of the body and the first option, 0 if none. */
  body?: number;
  options?: number;
}

/** struct nmreq_header with nr_version = NETMAP_API. */
export function encodeHeader(h: Header): Uint8Array {
  const enc = new TextEncoder().encode(h.name);
  if (enc.length >= NETMAP_REQ_IFNAMSIZ)
    throw new Error(`port name '${h.name}' is longer than ${NETMAP_REQ_IFNAMSIZ - 1} bytes`);
  const b = new Uint8Array(HDR.size);
  const dv = new DataView(b.buffer);
  dv.setUint16(HDR.nr_version, NETMAP_API, true);
  dv.setUint16(HDR.nr_reqtype, h.reqtype, true);
  b.set(enc, HDR.nr_name);
  dv.setBigUint64(HDR.nr_options, BigInt(h.options ?? 0), true);
  dv.setBigUint64(HDR.nr_body, BigInt(h.body ?? 0), true);
  return b;
}

export interface Register {
  mode: number;
  ringId?: number;
  flags?: number;
  memId?: number;
  txSlots?: number;
  rxSlots?: number;
  txRings?: number;
  rxRings?: number;
  hostTxRings?: number;
  hostRxRings?: number;
  extraBufs?: number;
}

function writeRegister(dv: DataView, o: number, r: Register): void {
  dv.setUint32(o + REG.nr_tx_slots, r.txSlots ?? 0, true);
  dv.setUint32(o + REG.nr_rx_slots, r.rxSlots ?? 0, true);
  dv.setUint16(o + REG.nr_tx_rings, r.txRings ?? 0, true);
  dv.setUint16(o + REG.nr_rx_rings, r.rxRings ?? 0, true);
  dv.setUint16(o + REG.nr_host_tx_rings, r.hostTxRings ?? 0, true);
  dv.setUint16(o + REG.nr_host_rx_rings, r.hostRxRings ?? 0, true);
  dv.setUint16(o + REG.nr_mem_id, r.memId ?? 0, true);
  dv.setUint16(o + REG.nr_ringid, r.ringId ?? 0, true);
  dv.setUint32(o + REG.nr_mode, r.mode, true);
  dv.setUint32(o + REG.nr_extra_bufs, r.extraBufs ?? 0, true);
  dv.setBigUint64(o + REG.nr_flags, BigInt(r.flags ?? 0), true);
}

export function encodeRegister(r: Register): Uint8Array {
  const b = new Uint8Array(REG.size);
  writeRegister(new DataView(b.buffer), 0, r);
  return b;
}

export interface RegisterReply {
  offset: number;
  memsize: number;
  txSlots: number;
  rxSlots: number;
  txRings: number;
  rxRings: number;
  hostTxRings: number;
  hostRxRings: number;
  memId: number;
  ringId: number;
  mode: number;
  flags: number;
}

export function decodeRegister(b: Uint8Array, o = 0): RegisterReply {
  const dv = new DataView(b.buffer, b.byteOffset);
  return {
    offset: Number(dv.getBigUint64(o + REG.nr_offset, true)),
    memsize: Number(dv.getBigUint64(o + REG.nr_memsize, true)),
    txSlots: dv.getUint32(o + REG.nr_tx_slots, true),
    rxSlots: dv.getUint32(o + REG.nr_rx_slots, true),
    txRings: dv.getUint16(o + REG.nr_tx_rings, true),
    rxRings: dv.getUint16(o + REG.nr_rx_rings, true),
    hostTxRings: dv.getUint16(o + REG.nr_host_tx_rings, true),
    hostRxRings: dv.getUint16(o + REG.nr_host_rx_rings, true),
    memId: dv.getUint16(o + REG.nr_mem_id, true),
    ringId: dv.getUint16(o + REG.nr_ringid, true),
    mode: dv.getUint32(o + REG.nr_mode, true),
    flags: Number(dv.getBigUint64(o + REG.nr_flags, true)),
  };
}

/** nmreq_vale_attach: vale-ctl -a (mode ALL_NIC, host stack detached) / -h (NIC_SW, host kept). */
export function encodeValeAttach(r: Register): Uint8Array {
  const b = new Uint8Array(VALE_ATTACH.size);
  writeRegister(new DataView(b.buffer), VALE_ATTACH.reg, r);
  return b;
}

export function encodeValeDetach(): Uint8Array {
  return new Uint8Array(VALE_DETACH.size);
}

export function encodeValeNewif(c: {
  txSlots?: number;
  rxSlots?: number;
  txRings?: number;
  rxRings?: number;
  memId?: number;
}): Uint8Array {
  const b = new Uint8Array(VALE_NEWIF.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(VALE_NEWIF.nr_tx_slots, c.txSlots ?? 0, true);
  dv.setUint32(VALE_NEWIF.nr_rx_slots, c.rxSlots ?? 0, true);
  dv.setUint16(VALE_NEWIF.nr_tx_rings, c.txRings ?? 0, true);
  dv.setUint16(VALE_NEWIF.nr_rx_rings, c.rxRings ?? 0, true);
  dv.setUint16(VALE_NEWIF.nr_mem_id, c.memId ?? 0, true);
  return b;
}

/** What the kernel wrote back into a VALE_NEWIF body (the slots and rings it chose). */
export function decodeValeNewif(b: Uint8Array): {
  txSlots: number;
  rxSlots: number;
  txRings: number;
  rxRings: number;
  memId: number;
} {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    txSlots: dv.getUint32(VALE_NEWIF.nr_tx_slots, true),
    rxSlots: dv.getUint32(VALE_NEWIF.nr_rx_slots, true),
    txRings: dv.getUint16(VALE_NEWIF.nr_tx_rings, true),
    rxRings: dv.getUint16(VALE_NEWIF.nr_rx_rings, true),
    memId: dv.getUint16(VALE_NEWIF.nr_mem_id, true),
  };
}

export function encodeValeList(bridgeIdx = 0, portIdx = 0): Uint8Array {
  const b = new Uint8Array(VALE_LIST.size);
  const dv = new DataView(b.buffer);
  dv.setUint16(VALE_LIST.nr_bridge_idx, bridgeIdx, true);
  dv.setUint32(VALE_LIST.nr_port_idx, portIdx, true);
  return b;
}

export function decodeValeList(b: Uint8Array): { bridgeIdx: number; portIdx: number } {
  const dv = new DataView(b.buffer, b.byteOffset);
  return { bridgeIdx: dv.getUint16(VALE_LIST.nr_bridge_idx, true), portIdx: dv.getUint32(VALE_LIST.nr_port_idx, true) };
}

export function encodePolling(mode: number, firstCpu: number, ncpus: number): Uint8Array {
  const b = new Uint8Array(VALE_POLLING.size);
  const dv = new DataView(b.buffer);
  dv.setUint32(VALE_POLLING.nr_mode, mode, true);
  dv.setUint32(VALE_POLLING.nr_first_cpu_id, firstCpu, true);
  dv.setUint32(VALE_POLLING.nr_num_polling_cpus, ncpus, true);
  return b;
}

export interface PortInfo {
  memsize: number;
  txSlots: number;
  rxSlots: number;
  txRings: number;
  rxRings: number;
  hostTxRings: number;
  hostRxRings: number;
  memId: number;
}

export function decodePortInfo(b: Uint8Array): PortInfo {
  const dv = new DataView(b.buffer, b.byteOffset);
  return {
    memsize: Number(dv.getBigUint64(PORT_INFO.nr_memsize, true)),
    txSlots: dv.getUint32(PORT_INFO.nr_tx_slots, true),
    rxSlots: dv.getUint32(PORT_INFO.nr_rx_slots, true),
    txRings: dv.getUint16(PORT_INFO.nr_tx_rings, true),
    rxRings: dv.getUint16(PORT_INFO.nr_rx_rings, true),
    hostTxRings: dv.getUint16(PORT_INFO.nr_host_tx_rings, true),
    hostRxRings: dv.getUint16(PORT_INFO.nr_host_rx_rings, true),
    memId: dv.getUint16(PORT_INFO.nr_mem_id, true),
  };
}
