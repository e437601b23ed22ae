// shm:NAME{N / shm:NAME}N — a netmap-pipe-like port in shared memory, the embedded default.
// txsync publishes the tx head (prod), rxsync publishes the rx head (cons); the peer's tail follows.
// A peer asleep in poll() is woken through its end's doorbell only when it said it is waiting.

import * as libc from "../../ffi/libc.ts";
import { POLLIN, POLLOUT, RING } from "../ring/layout.ts";
import { Ring } from "../ring/ring.ts";
import { type ConfTable, NR_REG, type PortName, readConf } from "./name.ts";
import { type Port, PortError } from "./port.ts";
import { CHAN, chanOffset, PIPE, PIPE_STRIDE, SHM_DEFAULTS, type ShmConf } from "./shm-layout.ts";
import { openFdRegion, openFileRegion, openSharedRegion, type Region } from "./shm-region.ts";

export interface ShmOpenOptions {
  /** Open on a SharedArrayBuffer region (createSharedRegion) instead of /dev/shm/bunmap-NAME. */
  region?: SharedArrayBuffer;
  /** Open on a region given as a descriptor (the ports protocol); the port owns it from now on. */
  regionFd?: number;
  /** What the port calls itself (`kind`): a net: port is a shm pipe end reached through a server. */
  kind?: string;
  /** Wake the peer by writing this eventfd instead of its futex (a peer that sleeps in epoll). */
  peerBellFd?: number;
  /** Run when the port closes (a net: port closes its connection). */
  onClose?: () => void;
}

/** @conf keys of a shm: port (tx_/rx_ forms must agree with the plain one: pipes are symmetric). */
const SHM_CONF = {
  pipes: { int: [4, 1, 4096] },
  rings: { int: [1, 1, 64] },
  tx_rings: { int: [1, 1, 64] },
  rx_rings: { int: [1, 1, 64] },
  slots: { int: [1024, 2, 1 << 16] },
  tx_slots: { int: [1024, 2, 1 << 16] },
  rx_slots: { int: [1024, 2, 1 << 16] },
  buf_size: { int: [2048, 64, 65536] },
  /** This end's doorbell is eventfd N of this process (0: its futex): pollFd, so epoll can wait on it. */
  bellfd: { int: [0, 0, 1 << 20] },
} as const satisfies ConfTable;

/** The region config the name asks for (only what it gives: the first opener's config wins). */
function confFrom(pn: PortName): Partial<ShmConf> {
  const v = readConf(pn, SHM_CONF);
  const given = (k: keyof typeof SHM_CONF) => pn.options.conf?.[k] !== undefined;
  const out: Partial<ShmConf> = {};
  const pick = (...keys: (keyof typeof SHM_CONF)[]) => {
    const vals = keys.filter(given).map((k) => v[k]);
    if (new Set(vals).size > 1)
      throw new PortError(`bad port name '${pn.spec}': shm pipes are symmetric, ${keys.join("/")} must agree`);
    return vals[0];
  };
  const rings = pick("rings", "tx_rings", "rx_rings");
  const slots = pick("slots", "tx_slots", "rx_slots");
  if (rings !== undefined) out.rings = rings;
  if (slots !== undefined) out.slots = slots;
  if (given("pipes")) out.pipes = v.pipes;
  if (given("buf_size")) {
    out.bufSize = v.buf_size;
    if (out.bufSize % 64) throw new PortError(`bad port name '${pn.spec}': buf_size must be a multiple of 64`);
  }
  return out;
}

let tokenSeq = 0;

function spinDefaultMs(): number {
  const v = Number(process.env.BUNMAP_SPIN_US ?? 50);
  return Number.isFinite(v) && v >= 0 ? v / 1000 : 0.05;
}

export class ShmPort implements Port {
  readonly kind: string;
  readonly name: string;
  readonly mem: ArrayBufferLike;
  readonly memId: string;
  readonly txRings: Ring[] = [];
  readonly rxRings: Ring[] = [];
  readonly bufSize: number;
  readonly mac = new Uint8Array(6);
  readonly hdrLen = 0;
  /** Pipes wake through a futex, not an fd, unless this end's doorbell is an eventfd (@conf:bellfd). */
  readonly pollFd: number;
  private readonly peerBellFd: number;
  private readonly onClose: (() => void) | undefined;
  /** Nothing is dropped on the way in: a full ring holds the sender back. */
  rxDrops(): number {
    return 0;
  }
  readonly zeroCopy = true;
  readonly deviceRings: number;
  private readonly region: Region;
  private readonly u32: Uint32Array;
  // per bound ring, u32 indices of the words it publishes / reads
  private readonly txProd: number[] = [];
  private readonly txCons: number[] = [];
  private readonly rxProd: number[] = [];
  private readonly rxCons: number[] = [];
  private readonly lastTx: number[] = [];
  private readonly lastRx: number[] = [];
  private readonly claims: number[] = []; // u32 indices of owner token words we hold
  private readonly token: number;
  private readonly myBell: number;
  private readonly myWaiters: number;
  private readonly peerBell: number;
  private readonly peerWaiters: number;
  private closed = false;
  /** How long poll() spins before sleeping (BUNMAP_SPIN_US, default 50 µs; 0 sleeps at once). */
  spinMs = spinDefaultMs();

  constructor(pn: PortName, opts: ShmOpenOptions = {}) {
    if (!pn.pipe) throw new PortError(`bad port name '${pn.spec}': shm ports are pipe ends, NAME{N or NAME}N`);
    if (pn.flags) throw new PortError(`bad port name '${pn.spec}': shm ports take no /${pn.flags} flags`);
    if (pn.memId !== undefined)
      throw new PortError(`bad port name '${pn.spec}': shm ports take no @${pn.memId} memory id`);
    this.name = pn.spec;
    this.kind = opts.kind ?? "shm";
    const explicit = confFrom(pn);
    const conf = { ...SHM_DEFAULTS, ...explicit };
    this.pollFd = readConf(pn, SHM_CONF).bellfd || -1;
    this.peerBellFd = opts.peerBellFd ?? -1;
    this.onClose = opts.onClose;
    this.region =
      opts.regionFd !== undefined
        ? openFdRegion(opts.regionFd, pn.spec)
        : opts.region
          ? openSharedRegion(opts.region)
          : openFileRegion(pn.ifname, conf, explicit);
    const L = this.region.L;
    this.mem = this.region.mem;
    this.memId = `shm:${this.region.key}`;
    this.u32 = new Uint32Array(this.mem);
    this.bufSize = L.bufSize;
    this.deviceRings = L.rings;
    const { id, role } = pn.pipe;
    try {
      if (id >= L.pipes) {
        throw new PortError(
          `${pn.spec}: pipe ${id} does not exist, region '${pn.ifname}' has pipes 0..${L.pipes - 1} (first opener sets @conf:pipes=N)`,
        );
      }
      let rings: number[];
      if (pn.mode === NR_REG.ONE_NIC) {
        if (pn.ringId >= L.rings)
          throw new PortError(`${pn.spec}: ring ${pn.ringId} does not exist, the pipe has rings 0..${L.rings - 1}`);
        rings = [pn.ringId];
      } else {
        rings = Array.from({ length: L.rings }, (_, i) => i);
      }
      const me = role === "master" ? 0 : 1;
      const txDir = me,
        rxDir = 1 - me;
      this.token = (((process.pid & 0xfffff) << 11) | (++tokenSeq & 0x7ff)) >>> 0 || 1;
      for (const r of rings) {
        const tc = chanOffset(L, id, txDir, r);
        const rc = chanOffset(L, id, rxDir, r);
        this.claim(pn.spec, r, tc + CHAN.prodOwner);
        this.claim(pn.spec, r, rc + CHAN.consOwner);
        this.txRings.push(new Ring(this.mem, tc + CHAN.txRing));
        this.rxRings.push(new Ring(this.mem, rc + L.rxRingOff, rc + CHAN.txRing + RING.slot));
        this.txProd.push((tc + CHAN.prod) >> 2);
        this.txCons.push((tc + CHAN.cons) >> 2);
        this.rxProd.push((rc + CHAN.prod) >> 2);
        this.rxCons.push((rc + CHAN.cons) >> 2);
      }
      const pipe = L.pipeBase + id * PIPE_STRIDE;
      this.myBell = (pipe + PIPE.bell(me)) >> 2;
      this.myWaiters = (pipe + PIPE.waiters(me)) >> 2;
      this.peerBell = (pipe + PIPE.bell(1 - me)) >> 2;
      this.peerWaiters = (pipe + PIPE.waiters(1 - me)) >> 2;
      // a restarted end resumes where the ring stands: what the old owner published stays valid
      for (let k = 0; k < this.txRings.length; k++) {
        const t = this.txRings[k],
          r = this.rxRings[k];
        t.advance(Atomics.load(this.u32, this.txProd[k]));
        r.advance(Atomics.load(this.u32, this.rxCons[k]));
        this.lastTx.push(t.head);
        this.lastRx.push(r.head);
      }
      this.txsync();
      this.rxsync();
    } catch (e) {
      this.releaseClaims();
      this.region.release(true);
      throw e;
    }
  }

  /** Claim one end of a channel: token CAS, then our pid. A dead owner's claim is taken over. */
  private claim(spec: string, ring: number, off: number): void {
    const u = this.u32,
      t = off >> 2;
    for (let tries = 0; tries < 3; tries++) {
      const cur = Atomics.load(u, t);
      if (cur !== 0) {
        const pid = Atomics.load(u, t + 1);
        if (pid === 0 || libc.pidAlive(pid)) {
          throw new PortError(
            `${spec}: ring ${ring} is already open${pid ? ` by pid ${pid}` : ""}; each pipe end can be open once`,
          );
        }
      }
      if (Atomics.compareExchange(u, t, cur, this.token) === cur) {
        Atomics.store(u, t + 1, process.pid);
        this.claims.push(t);
        return;
      }
    }
    throw new PortError(`${spec}: ring ${ring} is being opened by another process`);
  }

  private releaseClaims(): void {
    for (const t of this.claims) {
      Atomics.store(this.u32, t + 1, 0);
      Atomics.compareExchange(this.u32, t, this.token, 0);
    }
    this.claims.length = 0;
  }

  txsync(): void {
    const u = this.u32;
    let moved = false;
    for (let k = 0; k < this.txRings.length; k++) {
      const ring = this.txRings[k];
      const n = ring.numSlots;
      const head = ring.head,
        last = this.lastTx[k];
      if (head !== last) {
        const bad = ring.badHead(last);
        if (bad) throw new PortError(`txsync on ${this.name}: ${bad}`);
        Atomics.store(u, this.txProd[k], head);
        this.lastTx[k] = head;
        moved = true;
      }
      const c = Atomics.load(u, this.txCons[k]);
      // the peer may be another process that owes us nothing (a container): never trust an index
      if (c >= n) throw new PortError(`txsync on ${this.name}: the peer published ${c}, beyond the ring's ${n} slots`);
      ring.tail = c === 0 ? n - 1 : c - 1;
    }
    if (moved) this.ring();
  }

  rxsync(): void {
    const u = this.u32;
    let moved = false;
    for (let k = 0; k < this.rxRings.length; k++) {
      const ring = this.rxRings[k];
      const head = ring.head,
        last = this.lastRx[k];
      if (head !== last) {
        const bad = ring.badHead(last);
        if (bad) throw new PortError(`rxsync on ${this.name}: ${bad}`);
        Atomics.store(u, this.rxCons[k], head);
        this.lastRx[k] = head;
        moved = true;
      }
      const p = Atomics.load(u, this.rxProd[k]);
      if (p >= ring.numSlots)
        throw new PortError(
          `rxsync on ${this.name}: the peer published ${p}, beyond the ring's ${ring.numSlots} slots`,
        );
      ring.tail = p;
    }
    if (moved) this.ring();
  }

  /** Wake the peer if it sleeps in poll(). */
  private ring(): void {
    if (Atomics.load(this.u32, this.peerWaiters) !== 0) {
      Atomics.add(this.u32, this.peerBell, 1);
      if (this.peerBellFd >= 0) libc.eventfdSignal(this.peerBellFd);
      else this.region.wake(this.peerBell << 2);
    }
  }

  /**
   * Before sleeping on pollFd (an engine's epoll): say so, so the peer rings the eventfd; true when
   * packets already wait (then do not sleep). Every arm() is followed by one disarm().
   */
  arm(): boolean {
    Atomics.add(this.u32, this.myWaiters, 1);
    return (this.ready(POLLIN) & POLLIN) !== 0;
  }
  disarm(): void {
    Atomics.sub(this.u32, this.myWaiters, 1);
  }

  private ready(events: number): number {
    let rev = 0;
    if (events & POLLOUT) {
      this.txsync();
      for (const r of this.txRings)
        if (!r.empty()) {
          rev |= POLLOUT;
          break;
        }
    }
    if (events & POLLIN) {
      this.rxsync();
      for (const r of this.rxRings)
        if (!r.empty()) {
          rev |= POLLIN;
          break;
        }
    }
    return rev;
  }

  poll(events: number, timeoutMs: number): number {
    let rev = this.ready(events);
    if (rev || timeoutMs === 0) return rev;
    const u = this.u32;
    const t0 = performance.now();
    const deadline = timeoutMs < 0 ? Infinity : t0 + timeoutMs;
    // spin a little first: a peer that is mid-batch answers in microseconds, and a futex sleep plus
    // wakeup costs tens of them (pkt-gen-b busy-waits for the same reason)
    const spinEnd = Math.min(deadline, t0 + this.spinMs);
    for (let k = 1; performance.now() < spinEnd; k++) {
      rev = this.ready(events);
      if (rev) return rev;
      // on a machine with fewer cores than busy threads (a sender, a switch, a receiver on two),
      // the peer we wait for may be waiting for this CPU: now and then give it (back at once if not)
      if ((k & 7) === 0) libc.yieldCpu();
    }
    Atomics.add(u, this.myWaiters, 1);
    try {
      for (;;) {
        const bell = Atomics.load(u, this.myBell);
        rev = this.ready(events); // re-check after announcing ourselves: no lost wakeup
        if (rev) return rev;
        const left = deadline - performance.now();
        if (left <= 0) return 0;
        if (this.pollFd >= 0) this.sleepOnFd(left === Infinity ? -1 : Math.ceil(left));
        else this.region.wait(this.myBell << 2, bell, left === Infinity ? -1 : left);
      }
    } finally {
      Atomics.sub(u, this.myWaiters, 1);
    }
  }

  private readonly pfd = new Uint8Array(8);
  private sleepOnFd(timeoutMs: number): void {
    new DataView(this.pfd.buffer).setInt32(0, this.pollFd, true);
    this.pfd[4] = POLLIN;
    libc.poll(this.pfd, 1, timeoutMs);
    libc.eventfdDrain(this.pollFd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseClaims();
    this.region.release(true);
    this.onClose?.();
  }
}
