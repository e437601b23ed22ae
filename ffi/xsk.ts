// libxdp's AF_XDP API (xdp/xsk.h, libxdp 1.3) through bun:ffi. Only socket/UMEM setup and teardown
// cross into C; the rings' inline helpers are re-done in TypeScript (src/port/xdp.ts).
import { dlopen, FFIType, type Pointer, read, toArrayBuffer } from "bun:ffi";

const { i32, u32, ptr: P, cstring, u64, void: V } = FFIType;

/** struct xsk_ring_prod / xsk_ring_cons (same layout). */
export const XSK_RING = {
  cached_prod: 0,
  cached_cons: 4,
  mask: 8,
  size: 12,
  producer: 16,
  consumer: 24,
  ring: 32,
  flags: 40,
  bytes: 48,
} as const;
export const UMEM_CONFIG = {
  fill_size: 0,
  comp_size: 4,
  frame_size: 8,
  frame_headroom: 12,
  flags: 16,
  bytes: 20,
} as const;
export const SOCKET_CONFIG = {
  rx_size: 0,
  tx_size: 4,
  libxdp_flags: 8,
  xdp_flags: 12,
  bind_flags: 16,
  bytes: 20,
} as const;
export const XDP_DESC = { addr: 0, len: 8, options: 12, bytes: 16 } as const;

export const XDP_COPY = 1 << 1;
export const XDP_ZEROCOPY = 1 << 2;
export const XDP_USE_NEED_WAKEUP = 1 << 3;
export const XDP_RING_NEED_WAKEUP = 1 << 0;
export const XDP_FLAGS_SKB_MODE = 1 << 1;
export const XDP_FLAGS_DRV_MODE = 1 << 2;
export const XDP_PACKET_HEADROOM = 256;
export const SOL_XDP = 283;
export const XDP_STATISTICS = 7;
/** struct xdp_statistics: u64 counters. */
export const XDP_STATS = {
  rx_dropped: 0,
  rx_invalid_descs: 8,
  tx_invalid_descs: 16,
  rx_ring_full: 24,
  rx_fill_ring_empty_descs: 32,
  tx_ring_empty_descs: 40,
  size: 48,
} as const;

const LIBS = ["libxdp.so.1", "libxdp.so"];

type Xsk = {
  xsk_umem__create: (
    umem: Pointer,
    area: Pointer,
    size: number | bigint,
    fill: Pointer,
    comp: Pointer,
    cfg: Pointer,
  ) => number;
  xsk_socket__create: (
    xsk: Pointer,
    ifname: Buffer,
    queue: number,
    umem: Pointer,
    rx: Pointer,
    tx: Pointer,
    cfg: Pointer,
  ) => number;
  xsk_socket__delete: (xsk: Pointer) => void;
  xsk_umem__delete: (umem: Pointer) => number;
  xsk_socket__fd: (xsk: Pointer) => number;
};

let lib: Xsk | null = null;
let loadError = "";

/** libxdp's symbols, or a sentence saying how to get them. */
export function libxdp(): Xsk {
  if (lib) return lib;
  for (const name of [process.env.BUNMAP_LIBXDP, ...LIBS].filter(Boolean) as string[]) {
    try {
      lib = dlopen(name, {
        xsk_umem__create: { args: [P, P, u64, P, P, P], returns: i32 },
        xsk_socket__create: { args: [P, cstring, u32, P, P, P, P], returns: i32 },
        xsk_socket__delete: { args: [P], returns: V },
        xsk_umem__delete: { args: [P], returns: i32 },
        xsk_socket__fd: { args: [P], returns: i32 },
      }).symbols as unknown as Xsk;
      quiet(name);
      return lib;
    } catch (e) {
      loadError = (e as Error).message;
    }
  }
  throw new Error(`libxdp is not installed (${loadError}): apt-get install libxdp1, or set BUNMAP_LIBXDP to its path`);
}

/** libbpf and libxdp print informational lines (ELF sections, dispatcher fallback) to stderr; keep
 * them for BUNMAP_DEBUG=1, since our errors carry errno with a hint anyway. */
function quiet(libxdpName: string): void {
  if (process.env.BUNMAP_DEBUG) return;
  try {
    dlopen(libxdpName, { libxdp_set_print: { args: [P], returns: P } }).symbols.libxdp_set_print(null);
    dlopen("libbpf.so.1", { libbpf_set_print: { args: [P], returns: P } }).symbols.libbpf_set_print(null);
  } catch {
    /* older builds without the setters: stay verbose */
  }
}

/** Views over one AF_XDP ring as libxdp mapped it: producer, consumer, flags words and descriptors. */
export interface RingViews {
  producer: Uint32Array;
  consumer: Uint32Array;
  flags: Uint32Array;
  /** Descriptors as u32 words: 4 per xdp_desc (rx/tx), 2 per u64 address (fill/comp). */
  desc: Uint32Array;
  mask: number;
  size: number;
}

/** Read a struct xsk_ring_* that libxdp filled in at `at`, and view its memory. */
export function ringViews(at: number, descBytes: number): RingViews {
  const p = at as Pointer;
  const mask = read.u32(p, XSK_RING.mask);
  const size = read.u32(p, XSK_RING.size);
  const word = (off: number) => new Uint32Array(toArrayBuffer(read.ptr(p, off) as Pointer, 0, 4));
  return {
    producer: word(XSK_RING.producer),
    consumer: word(XSK_RING.consumer),
    flags: word(XSK_RING.flags),
    desc: new Uint32Array(toArrayBuffer(read.ptr(p, XSK_RING.ring) as Pointer, 0, size * descBytes)),
    mask,
    size,
  };
}
