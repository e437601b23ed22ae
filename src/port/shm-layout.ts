// Layout of a shm region: netmap-style rings and one buffer pool, for `pipes` pipes of `rings` rings.
// A pipe direction is one slot array with two netmap ring headers over it: the producer's tx view
// and the consumer's rx view. Sync only publishes head indices, so nothing is copied (netmap pipes
// swap buffers in the kernel; here both ends share the slots).
//
//   [0, 4096)         region header (config, magic written last)
//   pipe blocks       per pipe: per end a doorbell and a waiter count, each on its own cache line
//   channels          per (pipe, dir, ring): prod, cons, owner words; tx ring header + slots; rx header
//   buffers           4096-aligned; 0 and 1 reserved like netmap; channel c slot i starts on buffer 2+c*slots+i
import { align, RING, SLOT } from "../ring/layout.ts";

export const SHM_MAGIC = 0x504d4e42; // "BNMP"
export const SHM_VERSION = 1;

export interface ShmConf {
  pipes: number;
  rings: number;
  slots: number;
  bufSize: number;
}

export const SHM_DEFAULTS: ShmConf = { pipes: 4, rings: 1, slots: 1024, bufSize: 2048 };

/** Region header, u32 word indices. */
export const HDR = {
  magic: 0,
  version: 1,
  pipes: 2,
  rings: 3,
  slots: 4,
  bufSize: 5,
  nbufs: 6,
  bufBase: 7,
  size: 8,
  pipeBase: 9,
  chanBase: 10,
  chanStride: 11,
} as const;

const LINE = 128;
export const PIPE_STRIDE = 4 * LINE; // end0 bell, end0 waiters, end1 bell, end1 waiters
/** Byte offsets inside a pipe block. */
export const PIPE = { bell: (end: number) => end * 2 * LINE, waiters: (end: number) => (end * 2 + 1) * LINE };

/** Byte offsets inside a channel block. */
export const CHAN = {
  prod: 0, // producer's published head
  cons: LINE, // consumer's published head
  prodOwner: 2 * LINE, // token, pid of the producer end
  consOwner: 2 * LINE + 8, // token, pid of the consumer end
  txRing: 3 * LINE,
} as const;

export interface ShmLayout extends ShmConf {
  pipeBase: number;
  chanBase: number;
  chanStride: number;
  rxRingOff: number; // inside a channel
  nbufs: number;
  bufBase: number;
  size: number;
}

export function layout(c: ShmConf): ShmLayout {
  const pipeBase = 4096;
  const chanBase = align(pipeBase + c.pipes * PIPE_STRIDE, 4096);
  const rxRingOff = align(CHAN.txRing + RING.slot + c.slots * SLOT.size, LINE);
  const chanStride = align(rxRingOff + RING.size, 4096);
  const nchan = c.pipes * 2 * c.rings;
  const nbufs = 2 + nchan * c.slots;
  const bufBase = align(chanBase + nchan * chanStride, 4096);
  const size = bufBase + nbufs * c.bufSize;
  return { ...c, pipeBase, chanBase, chanStride, rxRingOff, nbufs, bufBase, size };
}

/** Channel index: direction 0 carries master->slave, 1 slave->master. */
export function chanIndex(L: ShmConf, pipe: number, dir: number, ring: number): number {
  return (pipe * 2 + dir) * L.rings + ring;
}

export function chanOffset(L: ShmLayout, pipe: number, dir: number, ring: number): number {
  return L.chanBase + chanIndex(L, pipe, dir, ring) * L.chanStride;
}

/** Write a fresh region into `mem` (zeroed); magic goes last so openers never see a half-made one. */
export function initRegion(mem: ArrayBufferLike, L: ShmLayout): void {
  const u32 = new Uint32Array(mem);
  const u16 = new Uint16Array(mem);
  const dv = new DataView(mem);
  u32[HDR.version] = SHM_VERSION;
  u32[HDR.pipes] = L.pipes;
  u32[HDR.rings] = L.rings;
  u32[HDR.slots] = L.slots;
  u32[HDR.bufSize] = L.bufSize;
  u32[HDR.nbufs] = L.nbufs;
  u32[HDR.bufBase] = L.bufBase;
  u32[HDR.size] = L.size;
  u32[HDR.pipeBase] = L.pipeBase;
  u32[HDR.chanBase] = L.chanBase;
  u32[HDR.chanStride] = L.chanStride;
  for (let p = 0; p < L.pipes; p++) {
    for (let d = 0; d < 2; d++) {
      for (let r = 0; r < L.rings; r++) {
        const c = chanOffset(L, p, d, r);
        const first = 2 + chanIndex(L, p, d, r) * L.slots;
        for (const [off, dir] of [
          [c + CHAN.txRing, 0],
          [c + L.rxRingOff, 1],
        ] as const) {
          dv.setBigInt64(off + RING.buf_ofs, BigInt(L.bufBase - off), true);
          u32[(off + RING.num_slots) >> 2] = L.slots;
          u32[(off + RING.nr_buf_size) >> 2] = L.bufSize;
          u16[(off + RING.ringid) >> 1] = r;
          u16[(off + RING.dir) >> 1] = dir;
          u32[(off + RING.head) >> 2] = 0;
          u32[(off + RING.cur) >> 2] = 0;
          u32[(off + RING.tail) >> 2] = dir === 0 ? L.slots - 1 : 0;
        }
        const s0 = (c + CHAN.txRing + RING.slot) >> 2;
        for (let i = 0; i < L.slots; i++) u32[s0 + 4 * i] = first + i;
      }
    }
  }
  Atomics.store(u32, HDR.magic, SHM_MAGIC);
}

/** Read back the layout of an existing region; null if the header is not (yet) valid. */
export function readLayout(mem: ArrayBufferLike): ShmLayout | null {
  const u32 = new Uint32Array(mem, 0, 16);
  if (Atomics.load(u32, HDR.magic) !== SHM_MAGIC) return null;
  if (u32[HDR.version] !== SHM_VERSION) return null;
  const L = layout({ pipes: u32[HDR.pipes], rings: u32[HDR.rings], slots: u32[HDR.slots], bufSize: u32[HDR.bufSize] });
  if (L.size !== u32[HDR.size] || L.bufBase !== u32[HDR.bufBase]) return null;
  return L;
}
