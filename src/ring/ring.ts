// A netmap ring seen through typed arrays laid over the port's memory region.
// No I/O here: head/cur/tail move in user space; the port's txsync/rxsync talk to the other side.
import { NS_BUF_CHANGED, NS_MOREFRAG, RING, SLOT } from "./layout.ts";

const H_HEAD = RING.head >> 2;
const H_CUR = RING.cur >> 2;
const H_TAIL = RING.tail >> 2;

export class Ring {
  /** Views over the whole region: offsets below are region-absolute. */
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly dv: DataView;
  /** Byte offset of struct netmap_ring in the region. */
  readonly offset: number;
  /** u32 index of the header (for head/cur/tail). */
  readonly h: number;
  /** u32 index of slot 0; slot i is at s0 + 4*i. */
  readonly s0: number;
  readonly numSlots: number;
  readonly bufSize: number;
  /** Byte offset of buffer 0 in the region (ring offset + buf_ofs). */
  readonly bufBase: number;

  /**
   * @param slotsOffset where slot[] lives; netmap puts it right after the header, a shm pipe's rx view
   *   reads the producer's slot array (one array, two headers, nothing copied).
   */
  constructor(mem: ArrayBufferLike, offset: number, slotsOffset = offset + RING.slot) {
    if (offset % 8 || slotsOffset % 8) throw new Error(`ring at ${offset}: misaligned`);
    this.u8 = new Uint8Array(mem);
    this.u16 = new Uint16Array(mem);
    this.u32 = new Uint32Array(mem);
    this.dv = new DataView(mem);
    this.offset = offset;
    this.h = offset >> 2;
    this.s0 = slotsOffset >> 2;
    this.numSlots = this.u32[(offset + RING.num_slots) >> 2];
    this.bufSize = this.u32[(offset + RING.nr_buf_size) >> 2];
    // buf_ofs is a signed 64-bit offset relative to the ring
    this.bufBase = offset + Number(this.dv.getBigInt64(offset + RING.buf_ofs, true));
    if (this.numSlots < 2) throw new Error(`ring at ${offset}: num_slots ${this.numSlots} < 2`);
  }

  get head(): number {
    return this.u32[this.h + H_HEAD];
  }
  set head(v: number) {
    this.u32[this.h + H_HEAD] = v;
  }
  get cur(): number {
    return this.u32[this.h + H_CUR];
  }
  set cur(v: number) {
    this.u32[this.h + H_CUR] = v;
  }
  get tail(): number {
    return this.u32[this.h + H_TAIL];
  }
  set tail(v: number) {
    this.u32[this.h + H_TAIL] = v;
  }
  get ringid(): number {
    return this.u16[(this.offset + RING.ringid) >> 1];
  }
  get dir(): number {
    return this.u16[(this.offset + RING.dir) >> 1];
  }

  /** nm_ring_next */
  next(i: number): number {
    return i + 1 === this.numSlots ? 0 : i + 1;
  }

  /** nm_ring_space: slots between head and tail (free tx slots, or received rx slots). */
  space(): number {
    const d = this.u32[this.h + H_TAIL] - this.u32[this.h + H_HEAD];
    return d < 0 ? d + this.numSlots : d;
  }

  /** nm_ring_empty */
  empty(): boolean {
    return this.u32[this.h + H_HEAD] === this.u32[this.h + H_TAIL];
  }

  /**
   * What every sync checks before trusting head (as the kernel does): it may only have moved forward
   * from `last`, to at most tail. Returns an error message, or null when head is acceptable.
   */
  badHead(last: number): string | null {
    const n = this.numSlots,
      head = this.u32[this.h + H_HEAD],
      tail = this.u32[this.h + H_TAIL];
    // distances from the last sync, without a division (every sync asks)
    let moved = head - last,
      room = tail - last;
    if (moved < 0) moved += n;
    if (room < 0) room += n;
    if (head < n && moved <= room) return null;
    return `head ${head} outside [${last}, ${tail}] (num_slots ${n})`;
  }

  /** Advance head and cur together (release rx slots / hand tx slots to the backend). */
  advance(to: number): void {
    this.u32[this.h + H_HEAD] = to;
    this.u32[this.h + H_CUR] = to;
  }

  bufIdx(i: number): number {
    return this.u32[this.s0 + 4 * i];
  }
  setBufIdx(i: number, idx: number): void {
    this.u32[this.s0 + 4 * i] = idx;
  }
  len(i: number): number {
    return this.u16[(this.s0 + 4 * i) * 2 + 2];
  }
  setLen(i: number, len: number): void {
    this.u16[(this.s0 + 4 * i) * 2 + 2] = len;
  }
  flags(i: number): number {
    return this.u16[(this.s0 + 4 * i) * 2 + 3];
  }
  setFlags(i: number, f: number): void {
    this.u16[(this.s0 + 4 * i) * 2 + 3] = f;
  }
  /** len and flags in one u32 store (little endian: len low, flags high). */
  setLenFlags(i: number, len: number, flags: number): void {
    this.u32[this.s0 + 4 * i + 1] = len | (flags << 16);
  }

  /** NETMAP_BUF: byte offset in the region of slot i's buffer. */
  buf(i: number): number {
    return this.bufBase + this.u32[this.s0 + 4 * i] * this.bufSize;
  }
  /** NETMAP_BUF by buffer index. */
  bufAt(idx: number): number {
    return this.bufBase + idx * this.bufSize;
  }
  /** A Uint8Array view of slot i's packet (allocates: for control paths and tests, not hot loops). */
  packet(i: number): Uint8Array {
    const o = this.buf(i);
    return this.u8.subarray(o, o + this.len(i));
  }

  /**
   * Zero-copy move of rx slot i to tx slot j of another ring in the same region (netmap bridge's
   * rings_move): swap buffer indices, copy len and MOREFRAG, flag both slots NS_BUF_CHANGED.
   */
  swapTo(i: number, tx: Ring, j: number): void {
    const a = this.s0 + 4 * i,
      b = tx.s0 + 4 * j;
    const u = this.u32,
      v = tx.u32;
    const idx = v[b];
    v[b] = u[a];
    u[a] = idx;
    const rw = u[a + 1];
    const tf = (v[b + 1] >>> 16) & ~NS_MOREFRAG;
    v[b + 1] = (rw & 0xffff) | ((tf | NS_BUF_CHANGED | ((rw >>> 16) & NS_MOREFRAG)) << 16);
    u[a + 1] = (rw & 0xffff) | (((rw >>> 16) | NS_BUF_CHANGED) << 16);
  }

  /** Copy rx slot i's packet into tx slot j (different regions). */
  copyTo(i: number, tx: Ring, j: number): void {
    const len = this.len(i);
    copyBytes(this.u8, this.u32, this.buf(i), tx.u8, tx.u32, tx.buf(j), len);
    tx.setLenFlags(j, len, this.flags(i) & NS_MOREFRAG);
  }
}

/**
 * Packet copy without allocating (nm_pkt_copy's idea). Within one region: copyWithin (native memmove).
 * Across regions: 32-bit words up to 2 KiB (every MTU-sized frame; buffers are 4-byte aligned in every
 * backend); only larger frames, or unaligned ones, take a bulk copy that allocates a view.
 */
export function copyBytes(
  s8: Uint8Array,
  s32: Uint32Array,
  src: number,
  d8: Uint8Array,
  d32: Uint32Array,
  dst: number,
  len: number,
): void {
  if (s8.buffer === d8.buffer) {
    d8.copyWithin(dst, src, src + len);
    return;
  }
  if (len > 2048 || (src | dst) & 3) {
    d8.set(s8.subarray(src, src + len), dst);
    return;
  }
  let a = src >> 2,
    b = dst >> 2;
  const end = a + ((len + 3) >> 2); // rounding up stays inside the source buffer (buffers are >= 64 B)
  while (a < end) d32[b++] = s32[a++];
}

export { SLOT };
