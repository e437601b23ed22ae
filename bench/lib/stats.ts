// Summaries the benchmarks report: quantiles of samples, ping output parsed.

/** The p-quantile (0..1) of the samples, by rank. */
export const q = (a: number[], p: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
/** The median of the samples that are numbers (NaN: a round that measured nothing), or NaN. */
export const median = (a: number[]) => {
  const s = a.filter((x) => !Number.isNaN(x));
  return s.length ? q(s, 0.5) : Number.NaN;
};
/** Round-trip times (ms) from ping's per-reply lines. */
export const times = (out: string) => [...out.matchAll(/time=([0-9.]+) ms/g)].map((m) => Number(m[1]));
/** Replies lost, from ping's summary line. */
export const lost = (out: string) => {
  const m = /(\d+) packets transmitted, (\d+) packets received/.exec(out);
  return m ? Number(m[1]) - Number(m[2]) : NaN;
};
