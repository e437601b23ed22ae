// netmap's ring ABI (sys/net/netmap.h, x86_64, gcc layout). Declared once; tests check every number.
// Every backend lays its rings out like this so one ring view serves all of them.

/** struct netmap_ring: byte offsets of the header fields. */
export const RING = {
  buf_ofs: 0, // i64, buffer 0 address relative to the ring
  num_slots: 8, // u32
  nr_buf_size: 12, // u32
  ringid: 16, // u16
  dir: 18, // u16: 0 tx, 1 rx
  head: 20, // u32, written by the user
  cur: 24, // u32, written by the user
  tail: 28, // u32, written by the kernel (or the backend's sync)
  flags: 32, // u32
  ts: 40, // struct timeval
  offset_mask: 56, // u64
  buf_align: 64, // u64
  sem: 128, // u8[128], aligned 128
  slot: 256, // struct netmap_slot slot[]
  size: 256, // sizeof(struct netmap_ring), header only
} as const;

/** struct netmap_slot: 16 bytes. */
export const SLOT = {
  buf_idx: 0, // u32
  len: 4, // u16
  flags: 6, // u16
  ptr: 8, // u64
  size: 16,
} as const;

/** Slot flags. */
export const NS_BUF_CHANGED = 0x0001;
export const NS_REPORT = 0x0002;
export const NS_FORWARD = 0x0004;
export const NS_NO_LEARN = 0x0008;
export const NS_INDIRECT = 0x0010;
export const NS_MOREFRAG = 0x0020;

/** n rounded up to a multiple of a. */
export const align = (n: number, a: number) => Math.ceil(n / a) * a;
export const NS_TXMON = 0x0040;
export const NS_PORT_SHIFT = 8;
export const NS_PORT_MASK = 0xff00;

/** Ring flags. */
export const NR_TIMESTAMP = 0x0002;
export const NR_FORWARD = 0x0004;

/** struct netmap_if: header fields, then ring_ofs[] (ssize_t) in order NIC tx, host tx, NIC rx, host rx. */
export const NIF = {
  ni_name: 0, // char[16]
  ni_version: 16,
  ni_flags: 20,
  ni_tx_rings: 24,
  ni_rx_rings: 28,
  ni_bufs_head: 32,
  ni_host_tx_rings: 36,
  ni_host_rx_rings: 40,
  ni_spare1: 44,
  ring_ofs: 56,
} as const;

export const NM_CACHE_ALIGN = 128;
export const IFNAMSIZ = 16;

export const POLLIN = 0x001;
export const POLLOUT = 0x004;
