// The throughput search of RFC 2544 (NDR: no loss) and FD.io CSIT's PDR (loss up to a threshold):
// trials at a share of the profile's rates (every stream scaled alike), a binary search on that
// share between 0 and 1 (the profile's rates are the most that is offered), until the bounds are
// within the precision. Each trial: a fresh generator, the receive ring emptied first, `seconds` of
// traffic, then a drain; its rate, loss and latency reported as it ends. Loss is of what the schedule
// offered: a device that holds the sender back (a full queue before a shaper) fails the trial too.
import type { Port } from "../port/port.ts";
import { Generator } from "./generator.ts";
import type { CompiledStream } from "./profile.ts";

export interface SearchOptions {
  /** Loss allowed in a passing trial, % (0: NDR). */
  lossPct: number;
  trialSeconds: number;
  /** Stop when the bounds are this close, % of the upper one. */
  precisionPct: number;
  onTrial?: (t: Trial) => void;
}

export interface Trial {
  /** The share of the profile's rates offered (0..1) and the packets/s that made. */
  share: number;
  offeredPps: number;
  /** Packets due in the trial, and sent (fewer when the port held the sender back). */
  offered: number;
  sent: number;
  received: number;
  lossPct: number;
  p50Us: number;
  p99Us: number;
  pass: boolean;
}

/** The profile's total packets/s at full rate. */
export function profilePps(streams: CompiledStream[]): number {
  return streams.reduce((a, s) => a + (s.rate.pps ?? (s.rate.bps ?? 0) / 8 / s.writer.meanSize), 0);
}

export async function searchRate(
  streams: CompiledStream[],
  tx: Port,
  rx: Port,
  o: SearchOptions,
): Promise<{ share: number; pps: number; trials: Trial[] }> {
  const full = profilePps(streams);
  const trials: Trial[] = [];
  const trial = async (share: number): Promise<Trial> => {
    const scaled = streams.map((s) => ({
      ...s,
      rate: s.rate.pps ? { pps: s.rate.pps * share } : { bps: (s.rate.bps ?? 0) * share },
    }));
    // what an earlier trial left in flight is not this one's
    rx.rxsync();
    for (const r of rx.rxRings) r.advance(r.tail);
    rx.rxsync();
    const g = new Generator(scaled, tx, rx, { seconds: o.trialSeconds, drainMs: 500 });
    await g.run();
    // offered: what the schedule had due in the trial, sent or held back by the port
    let sent = 0,
      offered = 0,
      received = 0;
    for (const [i, t] of g.tx.entries()) {
      sent += t.sent;
      offered += t.sent + t.behind;
      received += g.rx?.streams[i].packets ?? 0;
    }
    const all = g.rx?.streams.map((r) => r.latency) ?? [];
    const merged = all[0];
    for (const h of all.slice(1)) merged?.merge(h);
    const lossPct = offered ? ((offered - Math.min(offered, received)) / offered) * 100 : 100;
    const t: Trial = {
      share,
      offeredPps: full * share,
      offered,
      sent,
      received,
      lossPct,
      p50Us: (merged?.quantile(0.5) ?? Number.NaN) / 1000,
      p99Us: (merged?.quantile(0.99) ?? Number.NaN) / 1000,
      pass: sent > 0 && lossPct <= o.lossPct,
    };
    trials.push(t);
    o.onTrial?.(t);
    return t;
  };
  if ((await trial(1)).pass) return { share: 1, pps: full, trials };
  let lo = 0,
    hi = 1;
  while (hi - lo > (o.precisionPct / 100) * hi) {
    const mid = (lo + hi) / 2;
    if ((await trial(mid)).pass) lo = mid;
    else hi = mid;
  }
  return { share: lo, pps: full * lo, trials };
}
