// What a pktgen thread gets: its port, the config, and its counters in shared memory that the
// main thread reads for the periodic report (no messages on the hot path).
import type { Port } from "../../port/port.ts";
import type { Log } from "../report.ts";
import type { Config } from "./args.ts";

/** Per-thread counter slots (Float64). */
export const C = {
  pkts: 0,
  bytes: 1,
  events: 2,
  minSpace: 3,
  used: 4,
  completed: 5,
  tic: 6,
  toc: 7,
  gaps: 8,
  missing: 9,
  ooo: 10,
  rttMin: 11,
  rttSum: 12,
  rttMax: 13,
  rttCount: 14,
  fragErr: 15,
  /** Packets the kernel dropped before this thread's rx ring (port.rxDrops at the end). */
  kernelDrops: 16,
} as const;
export const STRIDE = 32;
/** Control words (Int32) at the start of the shared buffer. */
export const CTL = { cancel: 0, done: 1 } as const;
const CTL_BYTES = 64;

export function makeShared(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(CTL_BYTES + threads * STRIDE * 8);
}

export function views(sab: SharedArrayBuffer, idx: number): { ctl: Int32Array; ctr: Float64Array } {
  return { ctl: new Int32Array(sab, 0, 16), ctr: new Float64Array(sab, CTL_BYTES + idx * STRIDE * 8, STRIDE) };
}

export function allCounters(sab: SharedArrayBuffer, threads: number): Float64Array {
  return new Float64Array(sab, CTL_BYTES, threads * STRIDE);
}

export interface Ctx {
  cfg: Config;
  port: Port;
  idx: number;
  ctl: Int32Array;
  ctr: Float64Array;
  log: Log;
  out: (s: string) => void;
}

export const cancelled = (ctx: Ctx) => Atomics.load(ctx.ctl, CTL.cancel) !== 0;

/** Wall clock in ms with sub-ms precision (comparable across workers). */
export const wallMs = () => performance.timeOrigin + performance.now();

/** RD(): at most `n` messages per second per call site. */
export function rateLimited(n: number): (emit: () => void) => void {
  let sec = 0,
    count = 0;
  return (emit) => {
    const s = Math.floor(performance.now() / 1000);
    if (s !== sec) {
      sec = s;
      count = 0;
    }
    if (count++ < n) emit();
  };
}
