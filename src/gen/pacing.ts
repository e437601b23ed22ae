// When each packet of a stream leaves: constant spacing, Poisson (exponential gaps), or bursts (on
// for `on` seconds at the rate, then silent for `off`). A rate in packets/s, or in bits/s of the
// frames as sent (without FCS; each packet's gap then follows its own size). Times are ms on the
// signature's clock.
export type Pattern = "constant" | "poisson" | { on: number; off: number };
export type Rate = { pps: number } | { bps: number } | { share: number };

export class PacingError extends Error {}

export class Pacer {
  /** When the next packet is due. */
  next: number;
  private readonly pps: number;
  private readonly bps: number;
  private readonly onMs: number;
  private readonly periodMs: number;
  /** The gap of constant pacing in packets/s (0 otherwise). */
  private readonly gap: number;

  constructor(
    rate: { pps?: number; bps?: number },
    private readonly pattern: Pattern,
    private readonly rnd: () => number,
    private readonly start: number,
  ) {
    this.pps = rate.pps ?? 0;
    this.bps = rate.bps ?? 0;
    if (typeof pattern === "object") {
      this.onMs = pattern.on * 1000;
      this.periodMs = (pattern.on + pattern.off) * 1000;
    } else this.onMs = this.periodMs = 0;
    this.gap = pattern === "constant" && this.pps ? 1000 / this.pps : 0;
    this.next = start;
  }

  /** How many packets (of `len` bytes on average) fall due from `next` up to `end`: exactly for
   * constant pacing, the expected number otherwise. */
  dueBefore(end: number, len: number): number {
    if (this.next >= end) return 0;
    const gap = this.bps ? (len * 8 * 1000) / this.bps : 1000 / this.pps;
    const share = this.periodMs ? this.onMs / this.periodMs : 1;
    return Math.ceil(((end - this.next) / gap) * share);
  }

  /** The packet due at `next` has `len` bytes: move on to the one after it. */
  advance(len: number): void {
    if (this.gap) {
      this.next += this.gap; // constant pacing in packets/s: the common case, one add
      return;
    }
    let gap = this.bps ? (len * 8 * 1000) / this.bps : 1000 / this.pps;
    if (this.pattern === "poisson") gap *= -Math.log(1 - this.rnd());
    let t = this.next + gap;
    if (this.periodMs) {
      // past the end of an on-period: the next one starts a period later
      const into = (t - this.start) % this.periodMs;
      if (into >= this.onMs) t += this.periodMs - into;
    }
    this.next = t;
  }
}

/** Check a stream's rate and pattern; `total` is the profile's pps for shares. Returns pps/bps. */
export function checkRate(rate: unknown, pattern: unknown, total: number | undefined): { pps?: number; bps?: number } {
  const r = rate as Record<string, unknown>;
  if (!r || typeof r !== "object") throw new PacingError("rate: expected { pps: N }, { bps: N } or { share: 0..1 }");
  const pos = (v: unknown, what: string) => {
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0)
      throw new PacingError(`${what}: expected a number above 0, got ${JSON.stringify(v)}`);
    return v;
  };
  if (pattern !== undefined && pattern !== "constant" && pattern !== "poisson") {
    const p = pattern as Record<string, unknown>;
    if (!p || typeof p !== "object")
      throw new PacingError(
        `pattern: expected "constant", "poisson" or { on: s, off: s }, got ${JSON.stringify(pattern)}`,
      );
    pos(p.on, "pattern.on");
    if (typeof p.off !== "number" || p.off < 0)
      throw new PacingError(`pattern.off: expected seconds >= 0, got ${JSON.stringify(p.off)}`);
  }
  if (r.pps !== undefined) return { pps: pos(r.pps, "rate.pps") };
  if (r.bps !== undefined) return { bps: pos(r.bps, "rate.bps") };
  if (r.share !== undefined) {
    const s = pos(r.share, "rate.share");
    if (s > 1) throw new PacingError(`rate.share: ${s} is above 1 (a share of the total rate)`);
    if (!total)
      throw new PacingError("rate.share needs the profile's total rate: export rate: { pps: N } beside streams, or -R");
    return { pps: s * total };
  }
  throw new PacingError("rate: expected { pps: N }, { bps: N } or { share: 0..1 }");
}
