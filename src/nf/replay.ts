// netmap's nmreplay, its schedule: when each packet of a trace leaves, worked out ahead of time (as
// nmreplay does) from the bandwidth (constant, with Ethernet framing, or the trace's own timing
// with a speed-up), an added delay (constant, uniform or exponential; never reordering), and losses
// (a packet loss rate, or a bit error rate: 1 - (1 - ber)^bits). Pure: the sender (src/app/replay)
// only pumps packets out when their time comes.

export type Bandwidth =
  | { kind: "constant"; bps: number }
  | { kind: "ether"; bps: number }
  | { kind: "real"; speedup: number };
export type Delay =
  | { kind: "none" }
  | { kind: "constant"; s: number }
  | { kind: "uniform"; min: number; max: number }
  | { kind: "exp"; min: number; avg: number };
export type Loss = { kind: "none" } | { kind: "plr"; p: number } | { kind: "ber"; ber: number };

/** Ethernet's preamble, start delimiter and inter-frame gap (20 bytes) and CRC (4): nmreplay's 24. */
export const ETHER_OVERHEAD = 24;

/** A seeded generator (xorshift32): the same schedule for the same seed. */
export function random(seed = 0x2545f491): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export interface Schedule {
  /** Departure of each packet, seconds from the first; -1 for a packet the loss drops. */
  at: Float64Array;
  dropped: number;
}

/**
 * The schedule of a trace: `len[i]` its packets' lengths (bytes on the wire, without CRC), `ts[i]` their
 * capture times (seconds). Packet i leaves after packets 0..i-1 had their transmission times (the
 * bandwidth's), plus its delay, never before packet i-1.
 */
export function schedule(
  len: ArrayLike<number>,
  ts: ArrayLike<number>,
  bw: Bandwidth,
  delay: Delay = { kind: "none" },
  loss: Loss = { kind: "none" },
  rnd: () => number = random(),
): Schedule {
  const n = len.length,
    at = new Float64Array(n);
  let clock = 0,
    last = 0,
    dropped = 0;
  for (let i = 0; i < n; i++) {
    let t: number;
    if (bw.kind === "real") t = (ts[i] - ts[0]) / bw.speedup;
    else {
      t = clock;
      clock += ((len[i] + (bw.kind === "ether" ? ETHER_OVERHEAD : 0)) * 8) / bw.bps;
    }
    if (delay.kind === "constant") t += delay.s;
    else if (delay.kind === "uniform") t += delay.min + rnd() * (delay.max - delay.min);
    else if (delay.kind === "exp") t += delay.min - Math.log(1 - rnd()) * (delay.avg - delay.min);
    if (t < last) t = last; // never reorder
    last = t;
    const p = loss.kind === "plr" ? loss.p : loss.kind === "ber" ? 1 - (1 - loss.ber) ** (len[i] * 8) : 0;
    if (p > 0 && rnd() < p) {
      at[i] = -1;
      dropped++;
    } else at[i] = t;
  }
  return { at, dropped };
}

/** A number with nmreplay's suffixes: k/K 1e3, m/M 1e6, g/G 1e9 (rates); for times s, m, u, n. */
function scaled(text: string, units: Record<string, number>, what: string): number {
  const m = /^([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)([a-zA-Z]?)$/.exec(text);
  const u = m ? units[m[2]] : undefined;
  if (!m || u === undefined)
    throw new Error(`${what} ${text}: expected a number with one of ${Object.keys(units).filter(Boolean).join(", ")}`);
  return Number(m[1]) * u;
}
const RATE = { "": 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 };
const TIME = { "": 1, s: 1, m: 1e-3, u: 1e-6, n: 1e-9 };

/** -B {[constant,]bps|ether,bps|real[,speedup]} */
export function parseBandwidth(arg: string): Bandwidth {
  const p = arg.split(",");
  const bps = (t: string) => {
    const v = scaled(t, RATE, "-B");
    if (v <= 0) throw new Error(`-B ${arg}: the rate must be above 0`);
    return v;
  };
  if (p[0] === "real") {
    if (p.length > 2) throw new Error(`-B ${arg}: real takes one speed-up at most (real,2)`);
    const speedup = p.length === 2 ? Number(p[1]) : 1;
    if (!(speedup > 0 && speedup <= 1000)) throw new Error(`-B ${arg}: the speed-up must be above 0 and at most 1000`);
    return { kind: "real", speedup };
  }
  if (p[0] === "ether" && p.length === 2) return { kind: "ether", bps: bps(p[1]) };
  if (p[0] === "constant" && p.length === 2) return { kind: "constant", bps: bps(p[1]) };
  if (p.length === 1) return { kind: "constant", bps: bps(p[0]) };
  throw new Error(`-B ${arg}: expected bps, constant,bps, ether,bps or real[,speedup]`);
}

/** -D {dt|constant,dt|uniform,dmin,dmax|exp,dmin,davg} */
export function parseDelay(arg: string): Delay {
  const p = arg.split(",");
  const t = (x: string) => scaled(x, TIME, "-D");
  if (p.length === 1) return { kind: "constant", s: t(p[0]) };
  if (p[0] === "constant" && p.length === 2) return { kind: "constant", s: t(p[1]) };
  if (p[0] === "uniform" && p.length === 3) {
    const [min, max] = [t(p[1]), t(p[2])];
    if (min > max) throw new Error(`-D ${arg}: dmin above dmax`);
    return { kind: "uniform", min, max };
  }
  if (p[0] === "exp" && p.length === 3) {
    const [min, avg] = [t(p[1]), t(p[2])];
    if (min > avg) throw new Error(`-D ${arg}: dmin above davg`);
    return { kind: "exp", min, avg };
  }
  throw new Error(`-D ${arg}: expected dt, constant,dt, uniform,dmin,dmax or exp,dmin,davg`);
}

/** -L {x|plr,x|ber,x} */
export function parseLoss(arg: string): Loss {
  const p = arg.split(",");
  const x = Number(p[p.length - 1]);
  if (p.length > 2 || (p.length === 2 && p[0] !== "plr" && p[0] !== "ber") || !(x >= 0 && x <= 1))
    throw new Error(`-L ${arg}: expected x, plr,x or ber,x with x from 0 to 1`);
  return p[0] === "ber" ? { kind: "ber", ber: x } : { kind: "plr", p: x };
}
