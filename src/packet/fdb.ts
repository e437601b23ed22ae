// The forwarding database: MAC -> (port id, last seen), open addressing in typed arrays over a
// SharedArrayBuffer so every worker learns into and looks up the same table. Writes are plain
// stores (a racing learn costs at most one misforwarded packet, as in VALE); no allocation.
// Entries hold stable port ids (see layout.ts), never positions, so membership changes cannot
// redirect a learned station to another port.
export const FDB_PROBES = 8;

export class Fdb {
  readonly sab: SharedArrayBuffer;
  private readonly lo: Uint32Array; // low 32 bits of the MAC
  private readonly hi: Uint32Array; // high 16 bits | 0x10000 when the entry is in use
  private readonly port: Int32Array;
  private readonly seen: Uint32Array; // seconds
  private readonly mask: number;
  /** Entries older than this many seconds are ignored (and replaced). */
  ageSec: number;
  /** Whether the last learn that changed something moved a known station to another port. */
  moved = false;

  constructor(sizeLog2 = 16, ageSec = 300, sab?: SharedArrayBuffer) {
    const n = 1 << sizeLog2;
    this.sab = sab ?? new SharedArrayBuffer(n * 16);
    if (this.sab.byteLength !== n * 16) throw new Error("fdb: buffer size mismatch");
    this.lo = new Uint32Array(this.sab, 0, n);
    this.hi = new Uint32Array(this.sab, n * 4, n);
    this.port = new Int32Array(this.sab, n * 8, n);
    this.seen = new Uint32Array(this.sab, n * 12, n);
    this.mask = n - 1;
    this.ageSec = ageSec;
  }

  static of(sab: SharedArrayBuffer, ageSec: number): Fdb {
    return new Fdb(Math.log2(sab.byteLength / 16), ageSec, sab);
  }

  private hash(hi: number, lo: number): number {
    return (Math.imul(lo, 0x9e3779b1) ^ Math.imul(hi + 0x7f4a7c15, 0x85ebca6b)) >>> 0;
  }

  /** Learn the MAC at u8[off..off+6) on `port` at time `now` (seconds); true when the station is
   * new (or aged out) or moved to another port. */
  learn(u8: Uint8Array, off: number, port: number, now: number): boolean {
    const hi = (u8[off] << 8) | u8[off + 1] | 0x10000;
    const lo = ((u8[off + 2] << 24) | (u8[off + 3] << 16) | (u8[off + 4] << 8) | u8[off + 5]) >>> 0;
    let i = this.hash(hi, lo) & this.mask,
      victim = i,
      oldest = 0xffffffff;
    for (let p = 0; p < FDB_PROBES; p++, i = (i + 1) & this.mask) {
      if (this.hi[i] === hi && this.lo[i] === lo) {
        const changed = this.port[i] !== port || now - this.seen[i] > this.ageSec;
        this.moved = this.port[i] !== port;
        if (this.moved) this.port[i] = port; // a station moved
        if (this.seen[i] !== now) this.seen[i] = now;
        return changed;
      }
      const s = this.hi[i] === 0 ? 0 : this.seen[i];
      if (s < oldest) {
        oldest = s;
        victim = i;
      }
    }
    this.port[victim] = port;
    this.seen[victim] = now;
    this.lo[victim] = lo;
    this.hi[victim] = hi;
    this.moved = false;
    return true;
  }

  /** Port of the MAC at u8[off..off+6), or -1 if unknown or aged out. */
  lookup(u8: Uint8Array, off: number, now: number): number {
    const hi = (u8[off] << 8) | u8[off + 1] | 0x10000;
    const lo = ((u8[off + 2] << 24) | (u8[off + 3] << 16) | (u8[off + 4] << 8) | u8[off + 5]) >>> 0;
    let i = this.hash(hi, lo) & this.mask;
    for (let p = 0; p < FDB_PROBES; p++, i = (i + 1) & this.mask) {
      if (this.hi[i] === hi && this.lo[i] === lo) return now - this.seen[i] > this.ageSec ? -1 : this.port[i];
    }
    return -1;
  }

  /** Drop every entry learned on `port` (a port left the switch). Walks the table: control path only. */
  forget(port: number): number {
    let n = 0;
    for (let i = 0; i <= this.mask; i++)
      if (this.hi[i] && this.port[i] === port) {
        this.hi[i] = 0;
        n++;
      }
    return n;
  }

  /** Live entries: MAC, port, seconds since last seen (for views; walks the table). */
  *entries(now: number): Generator<{ mac: string; port: number; age: number }> {
    for (let i = 0; i <= this.mask; i++) {
      if (!this.hi[i] || now - this.seen[i] > this.ageSec) continue;
      const v = [
        (this.hi[i] >> 8) & 255,
        this.hi[i] & 255,
        this.lo[i] >>> 24,
        (this.lo[i] >>> 16) & 255,
        (this.lo[i] >>> 8) & 255,
        this.lo[i] & 255,
      ];
      yield {
        mac: v.map((b) => b.toString(16).padStart(2, "0")).join(":"),
        port: this.port[i],
        age: now - this.seen[i],
      };
    }
  }

  /** Live entries (for reports; walks the table). */
  count(now: number): number {
    let c = 0;
    for (let i = 0; i <= this.mask; i++) if (this.hi[i] && now - this.seen[i] <= this.ageSec) c++;
    return c;
  }
}
