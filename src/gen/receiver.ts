// What the receiving side counts per stream from the signatures it finds: packets and bytes, lost
// (sequence numbers never seen), duplicates (seen twice within the window), reordered (arrived after
// a later one), and the latency histogram (arrival - the tx time the packet carries). Sequence
// numbers are 32-bit on the wire; they are unwrapped against the highest seen.
import type { Port } from "../port/port.ts";
import { Histogram } from "./histogram.ts";
import { hasSignature, sigSeq, sigStream, sigTime, wallMs } from "./signature.ts";

/** How far back duplicates are recognised (packets). */
const WINDOW = 1 << 16;

export class StreamRx {
  packets = 0;
  bytes = 0;
  duplicates = 0;
  reordered = 0;
  /** Highest sequence number seen, unwrapped (-1: none). */
  top = -1;
  readonly latency = new Histogram();
  private readonly seen = new Uint8Array(WINDOW);

  /** Count one packet with sequence number s32 (as sent), latency in ns. */
  take(s32: number, len: number, latencyNs: number): void {
    let s = s32;
    if (this.top >= 0) {
      // the unwrapped value nearest the top
      const base = this.top - (this.top % 4294967296);
      s = base + s32;
      if (s - this.top > 2147483648) s -= 4294967296;
      else if (this.top - s > 2147483648) s += 4294967296;
    }
    const slot = s % WINDOW;
    if (s > this.top) {
      // slots passed over since the top are new ground: clear them (at most the window)
      for (let t = Math.max(this.top + 1, s - WINDOW + 1); t < s; t++) this.seen[t % WINDOW] = 0;
      this.top = s;
      this.seen[slot] = 1;
    } else if (this.top - s >= WINDOW) {
      this.reordered++; // too old to tell a duplicate: counted late
    } else if (this.seen[slot]) {
      this.duplicates++;
      return;
    } else {
      this.seen[slot] = 1;
      this.reordered++;
    }
    this.packets++;
    this.bytes += len;
    this.latency.record(latencyNs);
  }

  /** Lost: of `sent` (or, when the sender's count is unknown, of the highest number seen + 1). */
  lost(sent?: number): number {
    return Math.max(0, (sent ?? this.top + 1) - this.packets);
  }
}

export class Receiver {
  readonly streams: StreamRx[];
  /** Packets with no signature where any stream puts one. */
  foreign = 0;
  private readonly offsets: number[];

  /** @param sigOffs each stream's signature offset in its frames (by stream id) */
  constructor(private readonly sigOffs: number[]) {
    this.streams = sigOffs.map(() => new StreamRx());
    this.offsets = [...new Set(sigOffs)];
  }

  /** One frame at u8[off, off + len), received at rxMs (the signature's clock). */
  take(u8: Uint8Array, off: number, len: number, rxMs: number): void {
    for (let i = 0; i < this.offsets.length; i++) {
      const at = off + this.offsets[i];
      if (at + 16 > off + len || !hasSignature(u8, at)) continue;
      const id = sigStream(u8, at);
      if (id >= this.streams.length || this.sigOffs[id] !== this.offsets[i]) continue;
      this.streams[id].take(sigSeq(u8, at), len, (rxMs - sigTime(u8, at)) * 1e6);
      return;
    }
    this.foreign++;
  }
}

/** Take every frame waiting on the port's rx rings into the Receiver (one rxsync), at the kernel's
 * receive time where the port keeps one, else now; returns how many. */
export function drainPort(p: Port, rx: Receiver): number {
  p.rxsync();
  const now = wallMs(),
    origin = performance.timeOrigin,
    hdr = p.hdrLen,
    stamp = p.rxTime && p.rxRings.length === 1 ? p.rxTime : null;
  let got = 0;
  for (const r of p.rxRings) {
    let i = r.head;
    const m = r.space();
    for (let c = 0; c < m; c++) {
      rx.take(r.u8, r.buf(i) + hdr, r.len(i) - hdr, stamp ? origin + stamp(i) : now);
      i = r.next(i);
    }
    r.advance(i);
    got += m;
  }
  return got;
}
