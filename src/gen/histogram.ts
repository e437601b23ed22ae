// A latency histogram in the HDR style: exact below 128, then 64 buckets per power of two (every
// value within 1/64 of its bucket's bounds), so 1 ns to days fit in ~4 K counters; recording is a
// few integer operations, no allocation. Values are ns.
const SUB = 64;
const BUCKETS = 128 + 58 * SUB;

export class Histogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  sum = 0;

  /** The bucket of a value >= 0 (values below 0, a clock step back, count as 0). */
  static bucket(v: number): number {
    if (v < 128) return v < 0 ? 0 : Math.floor(v);
    // v in [2^e, 2^(e+1)); above 2^32 from the high word (no log2 on the hot path)
    const hi = v < 4294967296 ? 0 : Math.floor(v / 4294967296);
    const e = hi ? 63 - Math.clz32(hi) : 31 - Math.clz32(v);
    const shift = e - 6; // 2^6 = 64 sub-buckets of width 2^shift
    return 128 + (shift - 1) * SUB + (Math.floor(v / 2 ** shift) - SUB);
  }

  /** The smallest value of bucket b, and the bucket's width. */
  static lower(b: number): number {
    if (b < 128) return b;
    const shift = Math.floor((b - 128) / SUB) + 1;
    return ((b - 128) % SUB) * 2 ** shift + SUB * 2 ** shift;
  }
  static width(b: number): number {
    return b < 128 ? 1 : 2 ** (Math.floor((b - 128) / SUB) + 1);
  }

  record(v: number): void {
    // below 2^31 (2 s in ns) the bucket in integer operations: bucket() with a division by a power
    // of two costs a recording about 8 ns more, per packet
    let b: number;
    if (v >= 128 && v < 2147483648) {
      const i = v | 0,
        shift = 25 - Math.clz32(i); // e - 6
      b = 128 + (shift - 1) * SUB + ((i >>> shift) - SUB);
    } else b = Histogram.bucket(v);
    this.counts[b]++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The value at quantile q (0..1): the middle of its bucket, clamped to [min, max]. */
  quantile(q: number): number {
    if (!this.count) return Number.NaN;
    const want = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b];
      if (seen >= want) {
        const v = Histogram.lower(b) + (Histogram.width(b) - 1) / 2;
        return Math.min(this.max, Math.max(this.min, v));
      }
    }
    return this.max;
  }

  /** Non-empty buckets as [lower bound, count] (for JSON output and plots). */
  buckets(): [number, number][] {
    const out: [number, number][] = [];
    for (let b = 0; b < BUCKETS; b++) if (this.counts[b]) out.push([Histogram.lower(b), this.counts[b]]);
    return out;
  }

  merge(h: Histogram): void {
    for (let b = 0; b < BUCKETS; b++) this.counts[b] += h.counts[b];
    this.count += h.count;
    this.sum += h.sum;
    this.min = Math.min(this.min, h.min);
    this.max = Math.max(this.max, h.max);
  }
}
