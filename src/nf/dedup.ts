// netmap's dedup as a network function: a packet identical (length and bytes) to one forwarded less
// than a window ago, among the last `fifo` forwarded, is dropped; every other packet goes on. The
// recent packets are kept as copies in one preallocated block (netmap's dedup holds their buffers);
// a hash of the first 64 bytes picks the candidates worth comparing. No allocation per packet.
import { drop, type Packet } from "./runner.ts";

export interface DedupOptions {
  /** How many recent packets are remembered (netmap's -F, default 10). */
  fifo?: number;
  /** How long a packet is remembered, µs (netmap's -W, default 50). */
  windowUs?: number;
  /** Largest packet remembered whole (larger ones are compared by their first bytes and length). */
  maxLen?: number;
}

/** Drop reasons of a Dedup, by the index drop() takes. */
export const DEDUP_REASONS = ["duplicate"];

export class Dedup {
  private readonly fifo: number;
  private readonly windowMs: number;
  private readonly maxLen: number;
  private readonly bytes: Uint8Array;
  private readonly lens: Int32Array;
  private readonly hashes: Uint32Array;
  private readonly times: Float64Array;
  private next = 0; // where the next packet is remembered
  private count = 0;

  constructor(
    /** Where non-duplicates go (an output port's index). */
    private readonly out: number,
    opts: DedupOptions = {},
  ) {
    this.fifo = opts.fifo ?? 10;
    this.windowMs = (opts.windowUs ?? 50) / 1000;
    this.maxLen = opts.maxLen ?? 2048;
    this.bytes = new Uint8Array(this.fifo * this.maxLen);
    this.lens = new Int32Array(this.fifo);
    this.hashes = new Uint32Array(this.fifo);
    this.times = new Float64Array(this.fifo);
  }

  /** The NF: forward to `out`, or drop(0) for a duplicate within the window. */
  readonly process = (p: Packet): number => {
    const u8 = p.u8,
      off = p.off,
      len = p.len,
      n = len < 64 ? len : 64;
    let h = 0x811c9dc5;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ u8[off + i], 0x01000193);
    h >>>= 0;
    const oldest = p.time - this.windowMs;
    const keep = len < this.maxLen ? len : this.maxLen;
    for (let k = 0, slot = this.next; k < this.count; k++) {
      slot = slot === 0 ? this.fifo - 1 : slot - 1; // newest first
      if (this.times[slot] < oldest) break; // older ones are older still
      if (this.hashes[slot] !== h || this.lens[slot] !== len) continue;
      const base = slot * this.maxLen;
      let same = true;
      for (let i = 0; i < keep && same; i++) same = this.bytes[base + i] === u8[off + i];
      if (same) return drop(0);
    }
    const s = this.next,
      base = s * this.maxLen,
      bytes = this.bytes;
    for (let i = 0; i < keep; i++) bytes[base + i] = u8[off + i]; // (a subarray would allocate)
    this.lens[s] = len;
    this.hashes[s] = h;
    this.times[s] = p.time;
    this.next = s + 1 === this.fifo ? 0 : s + 1;
    if (this.count < this.fifo) this.count++;
    return this.out;
  };
}
