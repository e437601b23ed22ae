// netmap's lb as a network function: every packet from the input goes to each group of output pipes
// in turn, within a group to the pipe its flow hashes to (lb's own hash, lb-hash.ts, so a packet
// lands where netmap's lb would put it). A pipe whose ring is full keeps packets in an overflow queue
// made of a shared pool of extra buffers (-B); when the pool runs dry, the oldest buffers of the
// longest queue are taken back (those packets dropped), as lb does. Packets are copied into the
// pipes (the input's memory is not the pipes'). No allocation per packet.
import { copyBytes } from "../ring/ring.ts";
import { lbHash } from "./lb-hash.ts";
import { CONSUMED, drop, type NfRunner, type Packet } from "./runner.ts";

/** lb's BUF_REVOKE: how many buffers are taken back from the longest queue at once. */
const BUF_REVOKE = 150;

export const LB_REASONS = ["arrived on an output pipe"];

export interface PipeCounters {
  packets: number;
  bytes: number;
  drops: number;
  dropBytes: number;
}

export class LoadBalancer {
  /** What lb counts: packets taken from the input, those it hashed to 0 (not IP, to lb). */
  received = 0;
  nonIp = 0;
  readonly pipes: PipeCounters[];
  private readonly pool: Uint8Array;
  private readonly pool32: Uint32Array;
  private readonly poolLen: Int32Array;
  private readonly free: Int32Array; // a stack of free pool buffers
  private nfree: number;
  // per pipe, a ring of pool buffer indices (capacity: the whole pool)
  private readonly q: Int32Array[];
  private readonly qHead: Int32Array;
  private readonly qLen: Int32Array;

  /**
   * @param groups each group's output ports, as runner indices
   * @param extra extra buffers for the overflow queues (0: none, a full pipe drops)
   * @param bufSize the largest packet a pool buffer holds
   */
  constructor(
    private readonly runner: NfRunner,
    private readonly groups: number[][],
    private readonly extra: number,
    private readonly bufSize = 2048,
  ) {
    const n = groups.reduce((a, g) => a + g.length, 0);
    this.pipes = Array.from({ length: n }, () => ({ packets: 0, bytes: 0, drops: 0, dropBytes: 0 }));
    this.pool = new Uint8Array(Math.max(1, extra) * bufSize);
    this.pool32 = new Uint32Array(this.pool.buffer);
    this.poolLen = new Int32Array(Math.max(1, extra));
    this.free = Int32Array.from({ length: extra }, (_, k) => k);
    this.nfree = extra;
    this.q = Array.from({ length: n }, () => new Int32Array(Math.max(1, extra)));
    this.qHead = new Int32Array(n);
    this.qLen = new Int32Array(n);
  }

  /** The output pipe index (0..) of runner port `port`. */
  private pipeOf(port: number): number {
    return port - 1; // the input is port 0, the pipes follow in group order
  }

  /** The NF: a copy to each group's pipe for the packet's flow. */
  readonly process = (p: Packet): number => {
    if (p.input !== 0) return drop(0);
    this.received++;
    const h = lbHash(p.u8, p.off);
    if (h === 0) this.nonIp++;
    const groups = this.groups;
    for (let k = 0; k < groups.length; k++) this.push(groups[k][h % groups[k].length], p.u8, p.u32, p.off, p.len);
    return CONSUMED;
  };

  private push(port: number, u8: Uint8Array, u32: Uint32Array, off: number, len: number): void {
    const k = this.pipeOf(port),
      c = this.pipes[k];
    // a queued packet goes first: the new one waits behind it
    if (this.qLen[k] === 0 && this.runner.emit(port, u8, u32, off, len)) {
      c.packets++;
      c.bytes += len;
      return;
    }
    if (this.extra === 0 || len > this.bufSize) {
      c.drops++;
      c.dropBytes += len;
      return;
    }
    if (this.nfree === 0) this.revoke();
    const b = this.free[--this.nfree];
    copyBytes(u8, u32, off, this.pool, this.pool32, b * this.bufSize, len);
    this.poolLen[b] = len;
    const q = this.q[k];
    q[(this.qHead[k] + this.qLen[k]) % q.length] = b;
    this.qLen[k]++;
  }

  /** The pool is empty: take back the oldest buffers of the longest queue (their packets dropped). */
  private revoke(): void {
    let longest = 0;
    for (let k = 1; k < this.qLen.length; k++) if (this.qLen[k] > this.qLen[longest]) longest = k;
    const q = this.q[longest],
      c = this.pipes[longest];
    for (let j = 0; j < BUF_REVOKE && this.qLen[longest] > 0; j++) {
      const b = q[this.qHead[longest]];
      this.qHead[longest] = (this.qHead[longest] + 1) % q.length;
      this.qLen[longest]--;
      c.drops++;
      c.dropBytes += this.poolLen[b];
      this.free[this.nfree++] = b;
    }
  }

  /** Each round: the overflow queues drain into their pipes as room appears. */
  readonly tick = (): number => {
    let moved = 0;
    for (let k = 0; k < this.qLen.length; k++) {
      const q = this.q[k],
        c = this.pipes[k];
      while (this.qLen[k] > 0) {
        const b = q[this.qHead[k]],
          len = this.poolLen[b];
        if (!this.runner.emit(k + 1, this.pool, this.pool32, b * this.bufSize, len)) break;
        c.packets++;
        c.bytes += len;
        this.qHead[k] = (this.qHead[k] + 1) % q.length;
        this.qLen[k]--;
        this.free[this.nfree++] = b;
        moved++;
      }
    }
    return moved;
  };

  /** Packets waiting in pipe k's overflow queue; free pool buffers. */
  queued(k: number): number {
    return this.qLen[k];
  }
  get freeBuffers(): number {
    return this.nfree;
  }
}
