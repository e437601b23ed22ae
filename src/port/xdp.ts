// xdp:IFACE[@QUEUE] — AF_XDP through libxdp. The UMEM lives inside the port's region, so netmap
// buffer index i is UMEM frame i and packets are never copied: rxsync turns rx descriptors into
// slots (buf_idx = frame) and gives released slots' frames to the fill ring; txsync turns new tx
// slots into tx descriptors and counts completions to move tail. Buffers may be swapped between the
// port's rings (an rx frame sent as is), exactly as netmap apps do.
import { type Pointer, read } from "bun:ffi";
import * as libc from "../../ffi/libc.ts";
import {
  libxdp,
  type RingViews,
  ringViews,
  SOCKET_CONFIG,
  SOL_XDP,
  UMEM_CONFIG,
  XDP_COPY,
  XDP_DESC,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_SKB_MODE,
  XDP_PACKET_HEADROOM,
  XDP_RING_NEED_WAKEUP,
  XDP_STATISTICS,
  XDP_STATS,
  XDP_USE_NEED_WAKEUP,
  XDP_ZEROCOPY,
} from "../../ffi/xsk.ts";
import { POLLIN, POLLOUT } from "../ring/layout.ts";
import type { Ring } from "../ring/ring.ts";
import { FdPoller } from "./fd-poll.ts";
import { ifaceMac } from "./iface.ts";
import { align, PrivateRegion, ringBytes, writeRing } from "./local-rings.ts";
import { type ConfTable, NR_REG, type PortName, readConf } from "./name.ts";
import { type Port, PortError } from "./port.ts";

export interface XdpConf {
  slots: number; // rx, tx, fill and completion ring sizes
  frameSize: number;
  xdpMode: "auto" | "skb" | "drv";
  bind: "auto" | "copy" | "zerocopy";
}

/** @conf keys of an xdp: port. */
const XDP_CONF = {
  slots: { int: [2048, 64, 32768] },
  frame_size: { int: [4096, 2048, 4096] },
  mode: { oneOf: ["auto", "skb", "drv"], def: "auto" },
  bind: { oneOf: ["auto", "copy", "zerocopy"], def: "auto" },
} as const satisfies ConfTable;

function confOf(pn: PortName): XdpConf {
  const v = readConf(pn, XDP_CONF);
  const c: XdpConf = { slots: v.slots, frameSize: v.frame_size, xdpMode: v.mode, bind: v.bind };
  if (c.slots & (c.slots - 1)) throw new PortError(`bad port name '${pn.spec}': slots must be a power of two`);
  if (c.frameSize !== 2048 && c.frameSize !== 4096)
    throw new PortError(`bad port name '${pn.spec}': frame_size is 2048 or 4096`);
  return c;
}

const ERRNO_HINT: Record<number, string> = {
  1: "needs CAP_NET_ADMIN and CAP_BPF (run as root)",
  13: "needs CAP_NET_ADMIN and CAP_BPF (run as root)",
  16: "the queue is busy: another AF_XDP socket or XDP program holds it",
  19: "no such device",
  22: "invalid argument (queue out of range, or the mode/bind flags are not supported here)",
  95: "not supported by this driver in this mode (try @conf:mode=skb,bind=copy)",
};

export class XdpPort implements Port {
  readonly kind = "xdp";
  readonly name: string;
  readonly memId: string;
  readonly txRings: Ring[];
  readonly rxRings: Ring[];
  readonly deviceRings = 1;
  readonly bufSize: number;
  readonly mac: Uint8Array;
  readonly zeroCopy = true;
  readonly hdrLen = 0;
  get pollFd(): number {
    return this.fd;
  }
  private readonly stats = new BigUint64Array(XDP_STATS.size / 8);
  rxDrops(): number {
    libc.getsockopt(this.fd, SOL_XDP, XDP_STATISTICS, new Uint8Array(this.stats.buffer));
    const s = this.stats;
    // every drop on the way in is in rx_dropped; rx_ring_full and rx_fill_ring_empty_descs break some
    // of them down again (measured: a full ring counts in both), so they are not added
    return Number(s[XDP_STATS.rx_dropped / 8]);
  }
  readonly ifname: string;
  readonly queue: number;
  private readonly region: PrivateRegion;
  private readonly u8: Uint8Array;
  private readonly fd: number;
  private readonly xsk: number;
  private readonly umem: number;
  private readonly fill: RingViews;
  private readonly comp: RingViews;
  private readonly rx: RingViews;
  private readonly tx: RingViews;
  private readonly frame: number;
  private readonly shift: number;
  private readonly umemOff: number;
  // local producer/consumer counters (u32, wrapping)
  private fillProd: number;
  private compCons: number;
  private rxCons: number;
  private txProd: number;
  private inflight = 0;
  private lastTx = 0;
  private lastRx = 0;
  private readonly poller: FdPoller;
  private closed = false;

  constructor(pn: PortName) {
    if (pn.mode !== NR_REG.ALL_NIC && !(pn.mode === NR_REG.ONE_NIC && pn.ringId === 0)) {
      throw new PortError(`${pn.spec}: an AF_XDP port binds one queue; choose it with xdp:IF@QUEUE`);
    }
    this.name = pn.spec;
    this.ifname = pn.ifname;
    this.queue = pn.queue ?? 0;
    const c = confOf(pn);
    let x: ReturnType<typeof libxdp>;
    try {
      x = libxdp();
    } catch (e) {
      throw new PortError(`${pn.spec}: ${(e as Error).message}`);
    }
    if (!libc.ifIndex(pn.ifname))
      throw new PortError(`${pn.spec}: no such interface '${pn.ifname}' (ip link show lists them)`);
    this.frame = c.frameSize;
    this.shift = Math.log2(c.frameSize);
    const n = c.slots;
    // region: [4 KiB: libxdp structs][tx ring][rx ring][UMEM: n tx frames + n fill frames]
    const structs = 0; // fill, comp, rx, tx ring structs, configs, out-pointers
    const txRingOff = 4096;
    const rxRingOff = txRingOff + ringBytes(n);
    this.umemOff = align(rxRingOff + ringBytes(n), 4096);
    const nframes = 2 * n;
    const region = (this.region = new PrivateRegion(this.umemOff + nframes * c.frameSize));
    const base = region.base as number;
    const mem = region.mem;
    const dv = new DataView(mem);
    const S = {
      fill: structs,
      comp: structs + 48,
      rx: structs + 96,
      tx: structs + 144,
      ucfg: structs + 192,
      scfg: structs + 224,
      umemOut: structs + 256,
      xskOut: structs + 264,
    };
    dv.setUint32(S.ucfg + UMEM_CONFIG.fill_size, n, true);
    dv.setUint32(S.ucfg + UMEM_CONFIG.comp_size, n, true);
    dv.setUint32(S.ucfg + UMEM_CONFIG.frame_size, c.frameSize, true);
    dv.setUint32(S.ucfg + UMEM_CONFIG.frame_headroom, 0, true);
    dv.setUint32(S.scfg + SOCKET_CONFIG.rx_size, n, true);
    dv.setUint32(S.scfg + SOCKET_CONFIG.tx_size, n, true);
    dv.setUint32(
      S.scfg + SOCKET_CONFIG.xdp_flags,
      c.xdpMode === "skb" ? XDP_FLAGS_SKB_MODE : c.xdpMode === "drv" ? XDP_FLAGS_DRV_MODE : 0,
      true,
    );
    dv.setUint16(
      S.scfg + SOCKET_CONFIG.bind_flags,
      XDP_USE_NEED_WAKEUP | (c.bind === "copy" ? XDP_COPY : c.bind === "zerocopy" ? XDP_ZEROCOPY : 0),
      true,
    );
    const at = (o: number) => (base + o) as Pointer;
    let umem = 0,
      xsk = 0;
    try {
      let r = x.xsk_umem__create(
        at(S.umemOut),
        at(this.umemOff),
        nframes * c.frameSize,
        at(S.fill),
        at(S.comp),
        at(S.ucfg),
      );
      if (r) throw new PortError(`${pn.spec}: creating the UMEM failed: ${ERRNO_HINT[-r] ?? libc.strerror(-r)}`);
      umem = read.ptr(at(S.umemOut), 0) as number;
      r = x.xsk_socket__create(
        at(S.xskOut),
        Buffer.from(`${pn.ifname}\0`),
        this.queue,
        umem as Pointer,
        at(S.rx),
        at(S.tx),
        at(S.scfg),
      );
      if (r)
        throw new PortError(
          `${pn.spec}: creating the AF_XDP socket on queue ${this.queue} failed: ${ERRNO_HINT[-r] ?? libc.strerror(-r)}`,
        );
      xsk = read.ptr(at(S.xskOut), 0) as number;
    } catch (e) {
      if (umem) x.xsk_umem__delete(umem as Pointer);
      region.release();
      throw e;
    }
    this.umem = umem;
    this.xsk = xsk;
    this.fd = x.xsk_socket__fd(xsk as Pointer);
    this.fill = ringViews(base + S.fill, 8);
    this.comp = ringViews(base + S.comp, 8);
    this.rx = ringViews(base + S.rx, XDP_DESC.bytes);
    this.tx = ringViews(base + S.tx, XDP_DESC.bytes);
    this.fillProd = this.fill.producer[0];
    this.compCons = this.comp.consumer[0];
    this.rxCons = this.rx.consumer[0];
    this.txProd = this.tx.producer[0];
    this.u8 = new Uint8Array(mem);
    this.memId = `xdp:${pn.ifname}@${this.queue}:${this.fd}`;
    this.bufSize = c.frameSize - XDP_PACKET_HEADROOM;
    this.mac = ifaceMac(pn.ifname);
    const bufBase = this.umemOff + XDP_PACKET_HEADROOM;
    // tx slots own frames 0..n-1; frames n..2n-1 start in the fill ring
    this.txRings = [
      writeRing(mem, txRingOff, { slots: n, bufBase, bufStride: c.frameSize, dir: 0, ringid: this.queue, firstBuf: 0 }),
    ];
    this.rxRings = [
      writeRing(mem, rxRingOff, { slots: n, bufBase, bufStride: c.frameSize, dir: 1, ringid: this.queue, firstBuf: n }),
    ];
    for (let i = 0; i < n; i++) this.pushFill((n + i) << this.shift);
    Atomics.store(this.fill.producer, 0, this.fillProd);
    this.poller = new FdPoller([this.fd], (_k, ev) => ev & (POLLIN | POLLOUT));
  }

  get mem(): ArrayBuffer {
    return this.region.mem;
  }

  private pushFill(addr: number): void {
    const f = this.fill,
      i = (this.fillProd & f.mask) << 1;
    f.desc[i] = addr;
    f.desc[i + 1] = 0;
    this.fillProd = (this.fillProd + 1) >>> 0;
  }

  rxsync(): void {
    const ring = this.rxRings[0];
    const n = ring.numSlots,
      head = ring.head,
      u32 = ring.u32,
      s0 = ring.s0;
    // give released slots' frames back to the kernel
    let j = this.lastRx;
    if (j !== head) {
      const bad = ring.badHead(j);
      if (bad) throw new PortError(`rxsync on ${this.name}: ${bad}`);
      while (j !== head) {
        this.pushFill(u32[s0 + (j << 2)] << this.shift);
        j = j + 1 === n ? 0 : j + 1;
      }
      this.lastRx = head;
      Atomics.store(this.fill.producer, 0, this.fillProd);
      if (this.fill.flags[0] & XDP_RING_NEED_WAKEUP) libc.wakeRx(this.fd);
    }
    // turn new rx descriptors into slots
    const rx = this.rx;
    const avail = (Atomics.load(rx.producer, 0) - this.rxCons) >>> 0;
    let tail = ring.tail;
    const free = (head + n - 1 - tail) % n;
    const k = avail < free ? avail : free;
    const d = rx.desc,
      mask = rx.mask,
      shift = this.shift,
      frame = this.frame;
    for (let m = 0; m < k; m++) {
      const i = ((this.rxCons + m) & mask) << 2;
      const addr = d[i]; // UMEM < 4 GiB: the high word is 0
      const len = d[i + 2];
      const idx = addr >>> shift;
      const off = addr & (frame - 1);
      if (off !== XDP_PACKET_HEADROOM) {
        // not where our buffers start: move it (rare: drivers with other headroom)
        const start = this.umemOff + (idx << shift);
        this.u8.copyWithin(start + XDP_PACKET_HEADROOM, start + off, start + off + len);
      }
      const w = s0 + (tail << 2);
      u32[w] = idx;
      u32[w + 1] = len;
      tail = tail + 1 === n ? 0 : tail + 1;
    }
    if (k) {
      this.rxCons = (this.rxCons + k) >>> 0;
      Atomics.store(rx.consumer, 0, this.rxCons);
      ring.tail = tail;
    }
  }

  txsync(): void {
    const ring = this.txRings[0];
    const n = ring.numSlots,
      head = ring.head,
      u32 = ring.u32,
      s0 = ring.s0;
    let j = this.lastTx;
    const submitted = j !== head;
    if (submitted) {
      const bad = ring.badHead(j);
      if (bad) throw new PortError(`txsync on ${this.name}: ${bad}`);
      const t = this.tx,
        d = t.desc;
      while (j !== head) {
        const i = (this.txProd & t.mask) << 2;
        d[i] = (u32[s0 + (j << 2)] << this.shift) + XDP_PACKET_HEADROOM;
        d[i + 1] = 0;
        d[i + 2] = u32[s0 + (j << 2) + 1] & 0xffff;
        d[i + 3] = 0;
        this.txProd = (this.txProd + 1) >>> 0;
        this.inflight++;
        j = j + 1 === n ? 0 : j + 1;
      }
      this.lastTx = head;
      Atomics.store(t.producer, 0, this.txProd);
    }
    if (this.inflight) {
      // copy mode sends inside sendto(); zero-copy drivers ask for a kick with NEED_WAKEUP
      if (submitted || this.tx.flags[0] & XDP_RING_NEED_WAKEUP) {
        // copy mode transmits at most 32 descriptors per sendto(): keep kicking while the kernel
        // makes progress, so one txsync sends the whole batch
        const t = this.tx;
        for (let k = 0; k < 64; k++) {
          const before = Atomics.load(t.consumer, 0);
          const r = libc.kick(this.fd);
          if (r < 0 && r !== -libc.EAGAIN && r !== -libc.ENOBUFS && r !== -libc.EBUSY && r !== -libc.ENETDOWN) {
            throw new PortError(`${this.name}: sendto failed: ${libc.strerror(-r)}`);
          }
          const after = Atomics.load(t.consumer, 0);
          if (after === this.txProd || after === before) break;
        }
      }
      const c = this.comp;
      const done = (Atomics.load(c.producer, 0) - this.compCons) >>> 0;
      if (done) {
        // completions come back in submission order, so slots keep their frames
        this.compCons = (this.compCons + done) >>> 0;
        Atomics.store(c.consumer, 0, this.compCons);
        this.inflight -= done;
      }
    }
    const oldest = (head - this.inflight + n) % n;
    ring.tail = oldest === 0 ? n - 1 : oldest - 1;
  }

  poll(events: number, timeoutMs: number): number {
    return this.poller.poll(this, events, timeoutMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const x = libxdp();
    x.xsk_socket__delete(this.xsk as Pointer);
    x.xsk_umem__delete(this.umem as Pointer);
    this.region.release();
  }
}
