// The scripted generator: the profile's streams onto a port's first tx ring, each packet when its
// stream's pacer says, in time order across streams; one txsync per batch. Each packet carries the
// batch's time in its signature (the moment it was put on the ring, just before the sync). A buffer
// gets its stream's template only when it is new to that slot, changed by the other side
// (NS_BUF_CHANGED) or last held another stream. Optionally a receiving port in the same process
// (through a device under test): its frames go to the Receiver, with the kernel's receive time where
// the port keeps one. Counted per stream: sent, lateness against the schedule, per-second counts.
import type { Port } from "../port/port.ts";
import { NS_BUF_CHANGED } from "../ring/layout.ts";
import { xorshift } from "./fields.ts";
import { Histogram } from "./histogram.ts";
import { Pacer } from "./pacing.ts";
import type { CompiledStream } from "./profile.ts";
import { drainPort, Receiver } from "./receiver.ts";
import { wallMs } from "./signature.ts";

export interface GenOptions {
  /** Packets per stream (0: no limit). */
  count?: number;
  /** Seconds to run (0: until count, or stop()). */
  seconds?: number;
  /** Slots filled per txsync at most. */
  burst?: number;
  /** Called about once a second (from the run's event-loop turns). */
  onSecond?: (g: Generator) => void;
  /** After the last packet is sent, how long the receiver keeps listening (ms). */
  drainMs?: number;
}

export interface StreamTx {
  name: string;
  sent: number;
  bytes: number;
  /** How late each packet left against its schedule (ns). */
  lateness: Histogram;
  /** Packets sent in each whole second since the start (the achieved rate, second by second). */
  perSecond: number[];
  /** Packets the schedule had due before the end that were never sent (the port held them back). */
  behind: number;
}

export class Generator {
  readonly tx: StreamTx[];
  readonly rx: Receiver | null;
  /** When the run started and (once done) stopped sending, on the signature's clock. */
  startMs = 0;
  endMs = 0;
  private stopping = false;
  private readonly pacers: Pacer[] = [];

  constructor(
    readonly streams: CompiledStream[],
    private readonly txPort: Port,
    private readonly rxPort: Port | null = null,
    private readonly opts: GenOptions = {},
  ) {
    this.tx = streams.map((s) => ({
      name: s.name,
      sent: 0,
      bytes: 0,
      lateness: new Histogram(),
      perSecond: [],
      behind: 0,
    }));
    this.rx = rxPort ? new Receiver(streams.map((s) => s.writer.template.sigOff)) : null;
  }

  stop(): void {
    this.stopping = true;
  }

  async run(): Promise<void> {
    const port = this.txPort,
      ring = port.txRings[0],
      n = ring.numSlots,
      streams = this.streams,
      count = this.opts.count ?? 0,
      burst = this.opts.burst ?? 256;
    const primedBy = new Int32Array(n).fill(-1),
      bufAt = new Int32Array(n).fill(-1);
    this.startMs = wallMs();
    // the schedule runs on ms since the start: at epoch magnitudes a double steps by 0.24 us, too
    // coarse to add sub-microsecond gaps to
    const t0 = this.startMs;
    const end = this.opts.seconds ? this.opts.seconds * 1000 : Number.POSITIVE_INFINITY;
    for (const [i, s] of streams.entries()) this.pacers.push(new Pacer(s.rate, s.pattern, xorshift(0x5eed + i), 0));
    const pacers = this.pacers,
      tx = this.tx;
    const sentBefore = new Float64Array(tx.length); // sent at the last batch's end
    let nextSecond = this.startMs + 1000,
      live = true;
    while (live && !this.stopping) {
      const slice = performance.now() + 50;
      while (performance.now() < slice) {
        const now = wallMs() - t0;
        // at the end: one last fill of what fell due before it, then stop
        const closing = now >= end;
        let filled = 0,
          due = Number.POSITIVE_INFINITY,
          pending = -1; // streams with packets left (-1: not looked, the ring was full)
        let room = ring.space();
        if (room === 0) {
          port.txsync();
          room = ring.space();
        }
        let head = ring.head;
        while (filled < burst && room > 0) {
          // the stream due first, and when the next one is due (few streams: a scan)
          let s = -1,
            after = Number.POSITIVE_INFINITY;
          due = Number.POSITIVE_INFINITY;
          pending = 0;
          for (let i = 0; i < pacers.length; i++) {
            if (count && tx[i].sent >= count) continue;
            pending++;
            const d = pacers[i].next;
            if (d < due) {
              after = due;
              due = d;
              s = i;
            } else if (d < after) after = d;
          }
          if (s < 0 || due > now || due >= end) break;
          // its packets in a run, up to the next stream's turn: per packet only the write, the slot,
          // the lateness and the pacer
          const p = pacers[s],
            t = tx[s],
            w = streams[s].writer,
            lateness = t.lateness,
            limit = Math.min(burst - filled, room, count ? count - t.sent : burst);
          let m = 0,
            bytes = 0;
          do {
            const j = head,
              b = ring.bufIdx(j);
            if (primedBy[j] !== s || bufAt[j] !== b || ring.flags(j) & NS_BUF_CHANGED) {
              w.prime(ring.u8, ring.buf(j));
              primedBy[j] = s;
              bufAt[j] = b;
            }
            const len = w.write(ring.u8, ring.buf(j), t.sent + m, t0 + now);
            ring.setLenFlags(j, len, 0);
            head = head + 1 === n ? 0 : head + 1;
            bytes += len;
            lateness.record((now - p.next) * 1e6);
            p.advance(len);
            m++;
          } while (m < limit && p.next <= now && p.next < end && p.next < after);
          t.sent += m;
          t.bytes += bytes;
          filled += m;
          room -= m;
        }
        if (filled) {
          ring.advance(head); // one head move per batch
          port.txsync();
          // the second the batch left in (the achieved rate, second by second)
          const sec = Math.floor(now / 1000);
          for (let i = 0; i < tx.length; i++) {
            const t = tx[i];
            if (t.sent === sentBefore[i]) continue;
            while (t.perSecond.length <= sec) t.perSecond.push(0);
            t.perSecond[sec] += t.sent - sentBefore[i];
            sentBefore[i] = t.sent;
          }
        }
        if (closing && (filled < burst || room === 0)) {
          live = false;
          break;
        }
        this.receive();
        if (pending === 0 && !filled) {
          live = false;
          break;
        }
        if (!filled && due !== Number.POSITIVE_INFINITY) {
          // nothing due: sleep through long gaps (the event loop turns), spin the last 2 ms
          const wait = due - (wallMs() - t0);
          if (wait > 2) {
            await Bun.sleep(Math.min(wait - 1.5, 40));
            break;
          }
        }
      }
      const now = wallMs();
      if (now >= nextSecond) {
        this.opts.onSecond?.(this);
        nextSecond += 1000 * Math.max(1, Math.ceil((now - nextSecond) / 1000));
      }
      await Bun.sleep(0);
    }
    this.endMs = wallMs();
    // what the schedule had due by the end and the port never took (a timed run only)
    if (end !== Number.POSITIVE_INFINITY)
      for (let i = 0; i < pacers.length; i++) {
        const due = pacers[i].dueBefore(end, streams[i].writer.meanSize); // sent up to end: none, unless held back
        tx[i].behind = count ? Math.min(due, Math.max(0, count - tx[i].sent)) : due;
      }
    // what is still in the ring leaves (up to 10 s), then the receiver hears the last of it
    const flushed = performance.now() + 10_000;
    while (ring.space() < n - 1 && performance.now() < flushed) {
      port.txsync();
      this.receive();
      await Bun.sleep(1);
    }
    const until = performance.now() + (this.opts.drainMs ?? 200);
    while (performance.now() < until) {
      port.txsync();
      this.receive();
      await Bun.sleep(1);
    }
  }

  /** Drain the receiving port into the Receiver. */
  private receive(): void {
    if (this.rxPort && this.rx) drainPort(this.rxPort, this.rx);
  }
}
