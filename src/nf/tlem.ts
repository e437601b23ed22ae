// netmap's tlem as a network function: a link emulator between two ports, each direction its own
// link. A packet that arrives is lost (loss rate), or refused when the link's queue holds more than
// its size in bytes, else queued: it finishes crossing the link's bandwidth after the packets before
// it (max(arrival, previous finish) + bits / bandwidth), then waits the link's delay (constant,
// uniform or exponential, never reordering), and leaves. Packets are copies in a pool taken ahead;
// while any are in flight the runner keeps turning (tick), so they leave on time, not on a wake-up.
import { copyBytes } from "../ring/ring.ts";
import type { Delay, Loss } from "./replay.ts";
import { CONSUMED, drop, type NfRunner, type Packet } from "./runner.ts";

export interface LinkConfig {
  /** bits per second; 0: no limit */
  bps: number;
  delay: Delay;
  loss: Loss;
  /** the most bytes waiting for the bandwidth (tlem's -Q) */
  queueBytes: number;
}

export const TLEM_REASONS = ["lost (-L)", "queue full (-Q)", "no room in the delay line"];

class Link {
  readonly exit: Float64Array; // when each queued packet leaves (ms, performance.now's clock)
  readonly done: Float64Array; // when it has crossed the bandwidth
  readonly len: Int32Array;
  readonly pool: Uint8Array;
  readonly pool32: Uint32Array;
  /** Packets counted since the start: queued, left, and through the bandwidth (slot: seq % slots). */
  queued = 0;
  left = 0;
  through = 0;
  /** Bytes queued and not yet through the bandwidth. */
  backlog = 0;
  lastDone = 0;
  lastExit = 0;

  constructor(
    readonly cfg: LinkConfig,
    readonly slots: number,
    readonly bufSize: number,
  ) {
    this.exit = new Float64Array(slots);
    this.done = new Float64Array(slots);
    this.len = new Int32Array(slots);
    this.pool = new Uint8Array(slots * bufSize);
    this.pool32 = new Uint32Array(this.pool.buffer);
  }

  /** Bytes that have crossed the bandwidth by `now` leave the backlog. */
  settle(now: number): void {
    while (this.through < this.queued && this.done[this.through % this.slots] <= now) {
      this.backlog -= this.len[this.through % this.slots];
      this.through++;
    }
  }
}

export class LinkEmulator {
  private readonly links: Link[];

  /** @param cfg the links a->b (index 0: from port 0 to port 1) and b->a */
  constructor(
    private readonly runner: NfRunner,
    cfg: [LinkConfig, LinkConfig],
    private readonly rnd: () => number = Math.random,
    slots = 4096,
    bufSize = 2048,
  ) {
    this.links = cfg.map((c) => new Link(c, slots, bufSize));
  }

  /** The NF: each packet into its direction's link, or dropped with the reason. */
  readonly process = (p: Packet): number => {
    const k = p.input === 0 ? 0 : 1,
      l = this.links[k],
      c = l.cfg,
      now = p.time,
      len = p.len;
    const loss = c.loss.kind === "plr" ? c.loss.p : c.loss.kind === "ber" ? 1 - (1 - c.loss.ber) ** (len * 8) : 0;
    if (loss > 0 && this.rnd() < loss) return drop(0);
    l.settle(now);
    if (c.queueBytes && l.backlog + len > c.queueBytes) return drop(1);
    if (l.queued - l.left === l.slots || len > l.bufSize) return drop(2);
    const done = (now > l.lastDone ? now : l.lastDone) + (c.bps ? (len * 8 * 1000) / c.bps : 0);
    const d = c.delay;
    let exit =
      done +
      1000 *
        (d.kind === "constant"
          ? d.s
          : d.kind === "uniform"
            ? d.min + this.rnd() * (d.max - d.min)
            : d.kind === "exp"
              ? d.min - Math.log(1 - this.rnd()) * (d.avg - d.min)
              : 0);
    if (exit < l.lastExit) exit = l.lastExit; // never reorder
    const s = l.queued % l.slots;
    copyBytes(p.u8, p.u32, p.off, l.pool, l.pool32, s * l.bufSize, len);
    l.len[s] = len;
    l.done[s] = done;
    l.exit[s] = exit;
    l.queued++;
    l.backlog += len;
    l.lastDone = done;
    l.lastExit = exit;
    return CONSUMED;
  };

  /** Each round: the packets whose time has come leave; non-zero while any are in flight (the
   * runner then keeps turning instead of sleeping). */
  readonly tick = (): number => {
    const now = performance.now();
    let work = 0;
    for (let k = 0; k < 2; k++) {
      const l = this.links[k];
      l.settle(now); // (a packet leaves only after it is through: exit >= done)
      while (l.left < l.queued && l.exit[l.left % l.slots] <= now) {
        const s = l.left % l.slots;
        if (!this.runner.emit(1 - k, l.pool, l.pool32, s * l.bufSize, l.len[s])) break; // room next round
        l.left++;
      }
      work += l.queued - l.left;
    }
    return work;
  };

  /** Packets in flight on link k. */
  inFlight(k: 0 | 1): number {
    return this.links[k].queued - this.links[k].left;
  }
}
