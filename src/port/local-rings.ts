// netmap ring headers and slots written into a region a backend owns (AF_PACKET, AF_XDP, pcap):
// the kernel side speaks its own ring format; these are the rings apps see.
import { type Pointer, toArrayBuffer } from "bun:ffi";
import * as libc from "../../ffi/libc.ts";
import { align, RING, SLOT } from "../ring/layout.ts";
import { Ring } from "../ring/ring.ts";

export interface RingSpec {
  slots: number;
  /** Region offset of buffer 0 of this ring's pool and the distance between buffers. */
  bufBase: number;
  bufStride: number;
  dir: 0 | 1;
  ringid: number;
  /** Initial buf_idx of slot 0 (slot i gets first + i). */
  firstBuf: number;
}

/** Bytes a ring (header + slots) takes, 128-aligned. */
export const ringBytes = (slots: number) => align(RING.slot + slots * SLOT.size, 128);

/** Write a netmap ring header + slots at `offset`; returns its view. tx rings start with tail = slots - 1. */
export function writeRing(mem: ArrayBufferLike, offset: number, s: RingSpec): Ring {
  const dv = new DataView(mem);
  dv.setBigInt64(offset + RING.buf_ofs, BigInt(s.bufBase - offset), true);
  dv.setUint32(offset + RING.num_slots, s.slots, true);
  dv.setUint32(offset + RING.nr_buf_size, s.bufStride, true);
  dv.setUint16(offset + RING.ringid, s.ringid, true);
  dv.setUint16(offset + RING.dir, s.dir, true);
  dv.setUint32(offset + RING.head, 0, true);
  dv.setUint32(offset + RING.cur, 0, true);
  dv.setUint32(offset + RING.tail, s.dir === 0 ? s.slots - 1 : 0, true);
  for (let i = 0; i < s.slots; i++) {
    dv.setUint32(offset + RING.slot + i * SLOT.size + SLOT.buf_idx, s.firstBuf + i, true);
    dv.setUint32(offset + RING.slot + i * SLOT.size + SLOT.len, 0, true);
  }
  return new Ring(mem, offset);
}

/** An anonymous region the port owns; kernel rings get mapped into it at fixed offsets. */
export class PrivateRegion {
  readonly base: Pointer;
  readonly size: number;
  private _mem: ArrayBuffer | null = null;
  constructor(size: number) {
    this.size = align(size, 4096);
    this.base = libc.mmapAnon(this.size);
  }
  /** Map fd's ring memory at `offset` (MAP_FIXED inside our reservation). */
  mapFixed(offset: number, size: number, fd: number, fdOffset = 0): void {
    libc.mmapFixed((this.base as number) + offset, size, fd, fdOffset);
  }
  get mem(): ArrayBuffer {
    return (this._mem ??= toArrayBuffer(this.base, 0, this.size));
  }
  release(): void {
    libc.munmap(this.base, this.size);
  }
}

export { align };
