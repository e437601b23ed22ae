// Network functions on ports of any backend: a function sees each received packet and says where it
// goes (an output port by index) or why it is dropped; the runner does the rest as netmap's apps do:
// one rxsync and one txsync per port per round, zero-copy swap where the two ports share memory, a
// copy otherwise; it spins while packets flow and sleeps when idle (one epoll over every port's fd,
// naps for ports without one), stops cleanly on SIGINT/SIGTERM, and counts per port (packets and
// bytes in and out, drops by reason) and per reason the NF gives. No allocation per packet: one
// Packet object is reused, its Layers located on first use.
import * as libc from "../../ffi/libc.ts";
import { canSwap } from "../forward/move.ts";
import { Layers } from "../packet/layers.ts";
import { openPort } from "../port/open.ts";
import type { Port } from "../port/port.ts";
import { POLLIN } from "../ring/layout.ts";
import { copyBytes, type Ring } from "../ring/ring.ts";

/** What an NF returns for a packet it drops: drop(k) names reason k of its `reasons` (0: "dropped"). */
export const drop = (reason = 0) => -1 - reason;
/** What an NF returns for a packet it sent on itself (NfRunner.emit): neither forwarded nor dropped. */
export const CONSUMED = -0x7fffffff;
/** What the runner counts a verdict under that names neither a port nor one of the NF's reasons. */
export const NO_SUCH_OUTPUT = "no such output or reason";
/** The reasons the runner itself drops for, counted per output port. */
export const PORT_DROPS = ["tx ring full", "too long for the port's buffers"] as const;

/** A received packet, valid during the call only (the object is reused). */
export class Packet {
  /** The region's bytes (the frame starts at `off`, after any virtio-net header), and its words. */
  u8: Uint8Array = new Uint8Array(0);
  u32: Uint32Array = new Uint32Array(0);
  off = 0;
  /** Frame length; an NF may shorten it (the slot's length follows). */
  len = 0;
  /** Index of the port it came in by. */
  input = 0;
  /** When its batch was taken from the ring (performance.now(), ms; one reading per batch), or with
   * the runner's kernelTime, when the kernel received it where the port knows. */
  time = 0;
  private readonly lay = new Layers();
  private located = false;
  /** Its headers (located on first use). */
  get layers(): Layers {
    if (!this.located) {
      this.lay.locate(this.u8, this.off, this.len);
      this.located = true;
    }
    return this.lay;
  }
  /** @internal */
  reset(u8: Uint8Array, off: number, len: number, input: number, time: number, u32?: Uint32Array): void {
    this.time = time;
    this.u8 = u8;
    if (u32) this.u32 = u32;
    this.off = off;
    this.len = len;
    this.input = input;
    this.located = false;
  }
  /** A big-endian field of `bytes` (1, 2 or 4) at `at` from the frame's start. */
  field(at: number, bytes: 1 | 2 | 4): number {
    const o = this.off + at,
      u = this.u8;
    if (bytes === 1) return u[o];
    if (bytes === 2) return (u[o] << 8) | u[o + 1];
    return ((u[o] << 24) | (u[o + 1] << 16) | (u[o + 2] << 8) | u[o + 3]) >>> 0;
  }
}

/** The function: the output port's index, or drop(reason). */
export type NfFunction = (p: Packet) => number;

export interface PortCounters {
  name: string;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** What the runner dropped on the way out of this port, by PORT_DROPS reason. */
  drops: Record<(typeof PORT_DROPS)[number], number>;
}
export interface NfCounters {
  ports: PortCounters[];
  /** What the NF dropped, by its reason. */
  drops: Record<string, number>;
}

export interface RunnerOptions {
  /** Drop reasons the NF names by index: drop(0) is reasons[0] ("dropped" if none are given). */
  reasons?: string[];
  /** Slots taken from one rx ring per round. */
  burst?: number;
  /** How long to spin after the last packet before sleeping, in µs (Infinity: never sleep). */
  spinUs?: number;
  /** Called once a round, after the packets and before the txsyncs (an NF's own queues); returns
   * the work it did (non-zero keeps the runner from sleeping). */
  tick?: () => number;
  /**
   * Take from an input only as many packets as every output has room for (default), as netmap's
   * bridge does: a full output holds the input back and nothing is lost. false: take what comes and
   * count what does not fit as dropped ("tx ring full"), for NFs that queue or shed load themselves.
   */
  backpressure?: boolean;
  /** Copy every packet, even between ports whose buffers could be swapped (bridge -c). */
  copy?: boolean;
  /** Packet.time from the kernel's receive time where the port keeps one (Port.rxTime: AF_PACKET's
   * V2 ring), else the batch's: for NFs whose timing starts at arrival (tlem), so a runner that was
   * asleep when a packet came does not make it late. */
  kernelTime?: boolean;
}

export class NfRunner {
  /** The ports by name, and their indices (what the NF returns). */
  readonly index: Record<string, number> = {};
  private readonly ports: Port[] = [];
  private readonly names: string[] = [];
  private readonly swap: boolean[][];
  private readonly ctr: Float64Array; // per port: rxP, rxB, txP, txB, full, long
  private readonly nfDrops: Float64Array;
  private readonly reasons: string[];
  private readonly pkt = new Packet();
  private readonly burst: number;
  private readonly spinMs: number;
  private stopping = false;
  private draining = false;
  private readonly ep: number;
  private readonly fdless: Port[] = [];
  /** The port packets last came from (the one worth waiting on). */
  private active = 0;
  private readonly tick: (() => number) | null;
  private readonly backpressure: boolean;
  private readonly kernelTime: boolean;

  /** Open (or take) the ports; a port that cannot open closes the ones opened before and throws. */
  constructor(
    ports: Record<string, string | Port>,
    private readonly nf: NfFunction,
    opts: RunnerOptions = {},
  ) {
    try {
      for (const [name, p] of Object.entries(ports)) {
        this.index[name] = this.ports.length;
        this.names.push(name);
        this.ports.push(typeof p === "string" ? openPort(p) : p);
      }
    } catch (e) {
      for (const p of this.ports) p.close();
      throw e;
    }
    if (!this.ports.length) throw new Error("an NF runner needs at least one port");
    this.swap = this.ports.map((a) => this.ports.map((b) => !opts.copy && canSwap(a, b)));
    this.ctr = new Float64Array(this.ports.length * 6);
    // the NF's own reasons, then the runner's for a verdict that names no port and no reason
    this.reasons = [...(opts.reasons?.length ? opts.reasons : ["dropped"]), NO_SUCH_OUTPUT];
    this.nfDrops = new Float64Array(this.reasons.length);
    this.burst = opts.burst ?? 512;
    this.spinMs = (opts.spinUs ?? 50) / 1000;
    this.tick = opts.tick ?? null;
    this.backpressure = opts.backpressure !== false;
    this.kernelTime = opts.kernelTime === true;
    this.ep = libc.epollCreate();
    for (const [k, p] of this.ports.entries()) {
      if (p.pollFd >= 0) libc.epollAdd(this.ep, p.pollFd, libc.EPOLLIN, k);
      else this.fdless.push(p);
    }
  }

  /** One pass: each port's rxsync (releasing what the last pass took, seeing what came), its rx rings
   * through the NF, then one txsync per port for what the pass sent. Returns the packets taken. */
  round(): number {
    let taken = 0;
    const ports = this.ports;
    for (let k = 0; k < ports.length; k++) {
      ports[k].rxsync();
      let got = 0;
      for (const rx of ports[k].rxRings) got += this.drain(k, rx);
      if (got) this.active = k;
      taken += got;
    }
    if (this.tick) taken += this.tick();
    for (let k = 0; k < ports.length; k++) ports[k].txsync();
    return taken;
  }

  private drain(k: number, rx: Ring): number {
    const port = this.ports[k],
      hdr = port.hdrLen,
      u8 = rx.u8,
      ctr = this.ctr,
      pkt = this.pkt;
    let i = rx.head,
      m = rx.space();
    if (m > this.burst) m = this.burst;
    if (m && this.backpressure) m = Math.min(m, this.room());
    const now = m ? performance.now() : 0;
    const stamp = this.kernelTime && port.rxTime && port.rxRings.length === 1 ? port.rxTime : null;
    let bytes = 0; // counted once per batch
    for (let n = 0; n < m; n++) {
      const len = rx.len(i);
      bytes += len - hdr;
      pkt.reset(u8, rx.buf(i) + hdr, len - hdr, k, stamp ? stamp(i) : now, rx.u32);
      const out = this.nf(pkt);
      if (out >= 0 && out < this.ports.length && (out | 0) === out) {
        if (pkt.len !== len - hdr) rx.setLen(i, pkt.len + hdr);
        this.forward(rx, i, k, out);
      } else if (out !== CONSUMED) {
        const r = -1 - out; // a drop's reason; anything else (a port or reason not there) the last
        this.nfDrops[r >= 0 && r < this.nfDrops.length - 1 && (r | 0) === r ? r : this.nfDrops.length - 1] += 1;
      }
      i = i + 1 === rx.numSlots ? 0 : i + 1;
    }
    ctr[k * 6] += m;
    ctr[k * 6 + 1] += bytes;
    rx.advance(i);
    return m;
  }

  /** Packets waiting in any rx ring (as of the last rxsync). */
  private queued(): boolean {
    for (const p of this.ports) for (const r of p.rxRings) if (!r.empty()) return true;
    return false;
  }

  /** The fewest free tx slots among the ports (each packet takes at most one of one port); a full
   * ring is synced once first, its tail moving only then. */
  private room(): number {
    let least = Number.POSITIVE_INFINITY;
    for (const p of this.ports) {
      const tx = p.txRings[0];
      let r = tx.space();
      if (r === 0) {
        p.txsync();
        r = tx.space();
      }
      if (r < least) least = r;
    }
    return least;
  }

  /** One slot to port `d`'s first tx ring: swapped when the ports share memory, else copied. */
  private forward(rx: Ring, i: number, s: number, d: number): void {
    const dst = this.ports[d],
      tx = dst.txRings[0],
      ctr = this.ctr,
      len = rx.len(i);
    if (tx.empty()) {
      dst.txsync(); // its tail moves only on a sync: once before giving up
      if (tx.empty()) {
        ctr[d * 6 + 4] += 1;
        return;
      }
    }
    if (len > dst.bufSize) {
      ctr[d * 6 + 5] += 1;
      return;
    }
    const j = tx.head;
    if (this.swap[s][d]) rx.swapTo(i, tx, j);
    else rx.copyTo(i, tx, j);
    tx.advance(j + 1 === tx.numSlots ? 0 : j + 1);
    ctr[d * 6 + 2] += 1;
    ctr[d * 6 + 3] += len - dst.hdrLen;
  }

  /**
   * Send a copy of a frame (u8[off, off + len), without virtio-net header; u32 the same memory's
   * words) on output port `d`, counted there; false, and nothing sent or counted, when its tx ring
   * stays full after one txsync or the frame is longer than its buffers (the caller keeps or drops it).
   */
  emit(d: number, u8: Uint8Array, u32: Uint32Array, off: number, len: number): boolean {
    const dst = this.ports[d],
      tx = dst.txRings[0],
      hdr = dst.hdrLen;
    if (len + hdr > dst.bufSize) return false;
    if (tx.empty()) {
      dst.txsync();
      if (tx.empty()) return false;
    }
    const j = tx.head,
      o = tx.buf(j),
      t = tx.u8;
    if (hdr) t.fill(0, o, o + hdr); // no offload requests
    copyBytes(u8, u32, off, t, tx.u32, o + hdr, len);
    tx.setLenFlags(j, len + hdr, 0);
    tx.advance(j + 1 === tx.numSlots ? 0 : j + 1);
    this.ctr[d * 6 + 2] += 1;
    this.ctr[d * 6 + 3] += len;
    return true;
  }

  /** Counters since the start (control path: allocates). */
  counters(): NfCounters {
    const c = this.ctr;
    return {
      ports: this.names.map((name, k) => ({
        name,
        rxPackets: c[k * 6],
        rxBytes: c[k * 6 + 1],
        txPackets: c[k * 6 + 2],
        txBytes: c[k * 6 + 3],
        drops: { [PORT_DROPS[0]]: c[k * 6 + 4], [PORT_DROPS[1]]: c[k * 6 + 5] } as PortCounters["drops"],
      })),
      drops: Object.fromEntries(this.reasons.map((r, k) => [r, this.nfDrops[k]])),
    };
  }

  /**
   * Run until stop(), `seconds` pass, or SIGINT/SIGTERM (when `signals`): rounds back to back while
   * packets flow; after spinUs without any, a sleep in epoll over the ports' fds (ports without one,
   * shm: a poll on one of them in turn, woken by its peer, 1 ms growing to 10), at most 100 ms at a
   * time so signals are seen.
   */
  async run(opts: { seconds?: number; signals?: boolean } = {}): Promise<NfCounters> {
    const onSignal = () => {
      this.stopping = true;
    };
    if (opts.signals !== false) {
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    }
    const end = opts.seconds ? performance.now() + opts.seconds * 1000 : Number.POSITIVE_INFINITY;
    const events = new Uint8Array(this.ports.length * libc.EPOLL_EVENT_SIZE + libc.EPOLL_EVENT_SIZE);
    let idleSince = -1,
      nap = 1,
      turn = 0;
    try {
      while (!this.stopping && performance.now() < end) {
        // a slice of rounds, then a turn of the event loop (signals, timers, the caller's awaits)
        const slice = performance.now() + 50;
        while (performance.now() < slice) {
          if (this.round()) {
            idleSince = -1;
            nap = 1;
            continue;
          }
          const now = performance.now();
          if (idleSince < 0) idleSince = now;
          if (now - idleSince < this.spinMs) continue;
          if (this.fdless.length) {
            // ports without an fd (shm: a futex) wake a poll on themselves at once: wait on the one
            // packets last came from, 1 ms at a time; idle for 100 ms, on each in turn, up to 10 ms
            // (the others meanwhile, fd ports included: at most that late)
            const long = now - idleSince > 100;
            const p = long ? this.fdless[turn++ % this.fdless.length] : this.ports[this.active];
            if (p.pollFd >= 0) libc.epollWait(this.ep, events, this.ports.length, 1);
            else p.poll(POLLIN, long ? nap : 1);
            if (long) nap = Math.min(10, nap * 2);
          } else libc.epollWait(this.ep, events, this.ports.length, 100);
          // wait again within the slice: the event loop turns once a slice (50 ms), not once a wait
        }
        await Bun.sleep(0);
      }
      // asked to drain: on until its rx rings are empty (what was queued for it delivered, an output
      // that is full waited for), 1 s at most
      const until = performance.now() + 1000;
      while (this.draining && (this.round() || this.queued()) && performance.now() < until);
    } catch (e) {
      // an NF that threw, or a port that failed, mid-round: what the round already put on the other
      // ports' tx rings still goes out (each port on its own: the failed one may fail again)
      for (const p of this.ports)
        try {
          p.txsync();
        } catch {}
      throw e;
    } finally {
      if (opts.signals !== false) {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    }
    return this.counters();
  }

  /** Ask run() to return after the round it is in, or (`drain`) once a round finds nothing more to take
   * (an upstream that has stopped: what it sent is delivered; at most 1 s). */
  stop(drain = false): void {
    this.stopping = true;
    this.draining ||= drain;
  }

  /** Close the ports it opened or was given. */
  close(): void {
    for (const p of this.ports) p.close();
    libc.close(this.ep);
  }
}

/** Report lines of the ports' counters (one per port), or JSON lines. */
export function formatPorts(ports: PortCounters[], json = false): string {
  if (json) return ports.map((p) => `${JSON.stringify({ port: p.name, ...p })}\n`).join("");
  return ports
    .map((p) => {
      const drops = Object.entries(p.drops)
        .filter(([, n]) => n)
        .map(([r, n]) => `, ${n} dropped (${r})`)
        .join("");
      return `${p.name}: received ${p.rxPackets} packets ${p.rxBytes} bytes, sent ${p.txPackets} packets ${p.txBytes} bytes${drops}\n`;
    })
    .join("");
}

/** Report lines of the counters, pkt-gen's way (one per port, then the NF's drops), or JSON lines. */
export function formatCounters(c: NfCounters, json = false): string {
  if (json) return `${formatPorts(c.ports, true)}${JSON.stringify({ nf: c.drops })}\n`;
  const nf = Object.entries(c.drops)
    .filter(([, n]) => n)
    .map(([r, n]) => `${n} ${r}`)
    .join(", ");
  return `${formatPorts(c.ports)}nf: dropped ${nf || "0"}\n`;
}

/**
 * Run until stopped, or until a port fails (its interface went away, its peer closed): the counters
 * so far, and the failure if there was one, for a command to print before it says what stopped it.
 */
export async function runUntilDone(
  runner: NfRunner,
  seconds = 0,
): Promise<{ counters: NfCounters; failed: Error | null }> {
  // a command's handlers stay for the rest of the process: a second ^C (bun run forwards the one
  // the process group got) must not kill it while it closes its ports and prints its counters
  const stop = () => runner.stop();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  try {
    return { counters: await runner.run({ seconds: seconds || undefined, signals: false }), failed: null };
  } catch (e) {
    return { counters: runner.counters(), failed: e as Error };
  }
}

/** A command's exit status after runUntilDone: 0, or 1 with one line saying what stopped it. */
export function reportFailure(tool: string, failed: Error | null): number {
  if (!failed) return 0;
  process.stderr.write(`${tool}: stopped: ${failed.message}\n`);
  return 1;
}
