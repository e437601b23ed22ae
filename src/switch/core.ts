// One thread's share of a switch: for every port, drain a burst from its rx ring(s), learn the
// source MAC, ask the lookup, put the packet on the destination's tx ring (buffer swap when both
// ports share memory, copy otherwise; floods copy). Multi-slot packets follow their first slot.
// Ports may differ in their virtio-net header (a kernel port's GSO frames, a shm port's plain ones):
// the copy between them adds an empty header, or does what the header asks (segments, checksum),
// as VALE does between ports of different nr_hdr_len.
// Ports come and go between rounds (add/remove): the others are never stopped, and because the
// learning table holds port ids with a generation, a departed port's stations are simply unknown.
// One rxsync and one txsync per port per round; no allocation per packet.

import { VIRTIO_NET, VNET_HDR } from "../../ffi/tpacket.ts";
import type { Fdb } from "../packet/fdb.ts";
import { completeChecksum, patchTcpSegment, tcpHeadersLen, tcpSegmentCount } from "../packet/offload.ts";
import type { Port } from "../port/port.ts";
import { NS_MOREFRAG } from "../ring/layout.ts";
import type { Ring } from "../ring/ring.ts";
import {
  addCounters,
  counterBlock,
  MAX_PORTS,
  PORT_CTR,
  type PortCounters,
  SLOT_MASK,
  SW_CTR,
  type SwitchCounters,
  slotOf,
  zeroCounters,
} from "./layout.ts";
import { BROADCAST, DROP, type Lookup, type SwitchView } from "./lookup.ts";

export class SwitchCore implements SwitchView {
  nports = 0;
  readonly ports = new Int32Array(MAX_PORTS);
  now = Math.floor(Date.now() / 1000);
  /** This thread's counters: SW_CTR fields, then PORT_CTR fields per port slot (layout.ts). */
  readonly ctr: Float64Array;
  private readonly maxPorts: number;
  private readonly portAt: (Port | null)[] = new Array(MAX_PORTS).fill(null);
  private readonly txAt: (Ring | null)[] = new Array(MAX_PORTS).fill(null);
  private readonly idAt = new Int32Array(MAX_PORTS).fill(-1);
  private readonly rankAt = new Int32Array(MAX_PORTS).fill(-1);
  /** Ports with the same non-zero key share a region: buffers may be swapped between them. */
  private readonly memKey = new Int32Array(MAX_PORTS);
  private readonly maxLen = new Int32Array(MAX_PORTS);
  /** Bytes of virtio-net header in front of every frame of the port (0 or 10). */
  private readonly hdrAt = new Int32Array(MAX_PORTS);
  private readonly memKeys = new Map<string, number>();
  /** The slot in hand is part of a multi-slot packet (set by drain for one/copy/cross). */
  private multi = false;

  /** Every port of a list, ids 0..n-1 (tests, benchmarks, fixed topologies). */
  static of(ports: Port[], fdb: Fdb, lookup: Lookup, burst = 512, learn = true): SwitchCore {
    const core = new SwitchCore(fdb, lookup, burst, new Float64Array(counterBlock(Math.max(ports.length, 1))), learn);
    for (const [i, p] of ports.entries()) core.add(p, i);
    return core;
  }

  constructor(
    readonly fdb: Fdb,
    private readonly lookup: Lookup,
    private readonly burst = 512,
    ctr?: Float64Array,
    /** Learn source MACs (false: the lookup decides alone; nothing is written to the table). */
    private readonly learn = true,
  ) {
    this.ctr = ctr ?? new Float64Array(counterBlock(MAX_PORTS));
    this.maxPorts = Math.min(MAX_PORTS, (this.ctr.length - SW_CTR.stride) / PORT_CTR.stride);
  }

  /** Switch counters of this thread (allocates: for reports and tests). */
  counts(): SwitchCounters {
    return addCounters(SW_CTR, this.ctr, 0, zeroCounters(SW_CTR));
  }

  /** One port's counters on this thread (allocates: for reports and tests). */
  portCounts(id: number): PortCounters {
    return addCounters(PORT_CTR, this.ctr, SW_CTR.stride + slotOf(id) * PORT_CTR.stride, zeroCounters(PORT_CTR));
  }

  rank(id: number): number {
    const s = id & SLOT_MASK;
    return this.idAt[s] === id ? this.rankAt[s] : -1;
  }

  port(id: number): Port | null {
    const s = slotOf(id);
    return this.idAt[s] === id ? this.portAt[s] : null;
  }

  /** Put a port on the switch under `id` (layout.ts: its slot must be free). */
  add(port: Port, id: number): void {
    const s = slotOf(id);
    if (id < 0 || s >= this.maxPorts)
      throw new Error(`port id ${id}: slot ${s} is beyond this switch's ${this.maxPorts} ports`);
    if (this.idAt[s] !== -1) throw new Error(`port id ${id}: slot ${s} is taken`);
    if (port.hdrLen !== 0 && port.hdrLen !== VNET_HDR.size)
      throw new Error(
        `${port.name}: frames carry a ${port.hdrLen}-byte header; a switch port has none or a virtio-net one (10)`,
      );
    this.hdrAt[s] = port.hdrLen;
    let key = 0;
    if (port.zeroCopy) {
      key = this.memKeys.get(port.memId) ?? this.memKeys.size + 1;
      this.memKeys.set(port.memId, key);
    }
    this.memKey[s] = key;
    this.maxLen[s] = port.bufSize;
    this.portAt[s] = port;
    this.txAt[s] = port.txRings[0];
    const c = SW_CTR.stride + s * PORT_CTR.stride;
    this.ctr.fill(0, c, c + PORT_CTR.stride);
    this.idAt[s] = id;
    this.rankAt[s] = this.nports;
    this.ports[this.nports++] = id;
  }

  /** Take a port off the switch (between rounds); returns it for the caller to close, or null if unknown. */
  remove(id: number): Port | null {
    const s = slotOf(id);
    if (this.idAt[s] !== id) return null;
    const port = this.portAt[s];
    for (let k = this.rankAt[s]; k < this.nports - 1; k++) {
      this.ports[k] = this.ports[k + 1];
      this.rankAt[this.ports[k] & SLOT_MASK] = k;
    }
    this.nports--;
    this.idAt[s] = -1;
    this.rankAt[s] = -1;
    this.portAt[s] = null;
    this.txAt[s] = null;
    return port;
  }

  /**
   * Called with a port whose sync threw (its interface vanished, say) after the port was taken off
   * the switch; the others go on. Without a handler the error propagates.
   */
  onPortError: ((id: number, port: Port, e: Error) => void) | null = null;
  /** Told when a station is new or moved (u8[off..off+6) is its MAC): the kernel fast path follows. */
  onLearn: ((u8: Uint8Array, off: number, id: number) => void) | null = null;
  private readonly failed: number[] = [];

  /** Time spent in rounds that moved packets (the worker measures it), in ms. */
  busy(ms: number): void {
    this.ctr[SW_CTR.busyUs] += ms * 1000;
  }

  /** One pass over every port; returns the number of slots taken from rx rings. */
  round(): number {
    const n = this.nports,
      ctr = this.ctr;
    this.now = Math.floor(Date.now() / 1000);
    let taken = 0;
    for (let k = 0; k < n; k++) {
      const id = this.ports[k],
        s = id & SLOT_MASK,
        port = this.portAt[s]!;
      try {
        port.rxsync();
        for (const rx of port.rxRings) {
          const got = this.drain(s, id, rx);
          taken += got;
          ctr[SW_CTR.stride + s * PORT_CTR.stride + PORT_CTR.rx] += got;
        }
      } catch (e) {
        this.fail(id, e);
      }
    }
    // every port, not only those we wrote: a full tx ring must see its tail move again
    for (let k = 0; k < n; k++) {
      try {
        this.portAt[this.ports[k] & SLOT_MASK]!.txsync();
      } catch (e) {
        this.fail(this.ports[k], e);
      }
    }
    ctr[SW_CTR.rounds]++;
    if (this.failed.length) this.quarantine();
    return taken;
  }

  private fail(id: number, e: unknown): void {
    if (!this.onPortError) throw e;
    if (!this.failed.includes(id)) this.failed.push(id);
    this.lastError.set(id, e as Error);
  }
  private readonly lastError = new Map<number, Error>();

  private quarantine(): void {
    for (const id of this.failed.splice(0)) {
      const port = this.remove(id);
      const e = this.lastError.get(id)!;
      this.lastError.delete(id);
      if (port) this.onPortError!(id, port, e);
    }
  }

  /** Any tx ring still holding packets the other side has not taken (the worker then sleeps briefly, not forever). */
  txPending(): boolean {
    for (let k = 0; k < this.nports; k++) {
      const tx = this.txAt[this.ports[k] & SLOT_MASK]!;
      if (tx.space() !== tx.numSlots - 1) return true;
    }
    return false;
  }

  private drain(s: number, srcId: number, rx: Ring): number {
    const u8 = rx.u8,
      lookup = this.lookup,
      hdr = this.hdrAt[s],
      ctr = this.ctr;
    let i = rx.head,
      m = rx.space();
    if (m > this.burst) m = this.burst;
    let dest = 0,
      why = 0,
      bytes = 0,
      inPacket = false;
    for (let k = 0; k < m; k++) {
      const buf = rx.buf(i),
        len = rx.len(i),
        more = (rx.flags(i) & NS_MOREFRAG) !== 0;
      bytes += len - hdr;
      if (!inPacket) {
        if (len >= hdr + 14) {
          const eth = buf + hdr;
          if (this.learn && (u8[eth + 6] & 1) === 0 && this.fdb.learn(u8, eth + 6, srcId, this.now)) {
            ctr[this.fdb.moved ? SW_CTR.moved : SW_CTR.learned]++;
            if (this.onLearn) this.onLearn(u8, eth + 6, srcId);
          }
          dest = lookup(u8, eth, len - hdr, srcId, this);
          why = SW_CTR.dropLookup;
          // a station learned on a port that has left: unknown again, so flood (as VALE does)
          if (dest >= 0 && this.idAt[dest & SLOT_MASK] !== dest) dest = BROADCAST;
        } else {
          dest = DROP;
          why = SW_CTR.dropRunt;
        }
      }
      this.multi = more || inPacket;
      inPacket = more;
      if (dest >= 0) {
        const d = dest & SLOT_MASK;
        if (d === s) {
          ctr[SW_CTR.dropped]++;
          ctr[SW_CTR.dropSamePort]++;
        } else this.one(rx, i, s, d, len);
      } else if (dest === BROADCAST) {
        for (let q = 0; q < this.nports; q++) {
          const d = this.ports[q] & SLOT_MASK;
          if (d !== s) this.copy(rx, i, s, d, len);
        }
        ctr[SW_CTR.flooded]++;
      } else {
        ctr[SW_CTR.dropped]++;
        ctr[why]++;
      }
      i = i + 1 === rx.numSlots ? 0 : i + 1;
    }
    rx.advance(i);
    ctr[SW_CTR.stride + s * PORT_CTR.stride + PORT_CTR.rxBytes] += bytes;
    return m;
  }

  /**
   * Is there a free slot on port d's tx ring? Its tail moves only on txsync, so a ring that looks full
   * is synced once before the packet is given up (one extra sync per full ring, not per packet).
   */
  private room(d: number, tx: Ring): boolean {
    if (!tx.empty()) return true;
    try {
      this.portAt[d]!.txsync();
    } catch (e) {
      this.fail(this.idAt[d], e);
      return false;
    }
    return !tx.empty();
  }

  private one(rx: Ring, i: number, s: number, d: number, len: number): void {
    const tx = this.txAt[d]!,
      ctr = this.ctr,
      pc = SW_CTR.stride + d * PORT_CTR.stride;
    if (this.hdrAt[s] !== this.hdrAt[d]) {
      if (this.cross(rx, i, s, d, len)) ctr[SW_CTR.forwarded]++;
      return;
    }
    if (!this.admit(d, tx, len)) return;
    const j = tx.head,
      key = this.memKey[s];
    if (key !== 0 && key === this.memKey[d]) rx.swapTo(i, tx, j);
    else rx.copyTo(i, tx, j);
    tx.advance(j + 1 === tx.numSlots ? 0 : j + 1);
    ctr[pc + PORT_CTR.tx]++;
    ctr[pc + PORT_CTR.txBytes] += len - this.hdrAt[d];
    ctr[SW_CTR.forwarded]++;
  }

  /** Can port d take a slot of `len` bytes now? If not, the drop is counted with its reason. */
  private admit(d: number, tx: Ring, len: number): boolean {
    if (len > this.maxLen[d]) return this.dropAt(d, PORT_CTR.dropTooLong);
    if (!this.room(d, tx)) return this.dropAt(d, PORT_CTR.dropNoRoom);
    return true;
  }

  private copy(rx: Ring, i: number, s: number, d: number, len: number): void {
    const tx = this.txAt[d]!,
      ctr = this.ctr,
      pc = SW_CTR.stride + d * PORT_CTR.stride;
    if (this.hdrAt[s] !== this.hdrAt[d]) {
      this.cross(rx, i, s, d, len);
      return;
    }
    // a flood's copy that a port cannot take is a drop like a unicast one (switch and port)
    if (!this.admit(d, tx, len)) return;
    const j = tx.head;
    rx.copyTo(i, tx, j);
    tx.advance(j + 1 === tx.numSlots ? 0 : j + 1);
    ctr[pc + PORT_CTR.tx]++;
    ctr[pc + PORT_CTR.txBytes] += len - this.hdrAt[d];
  }

  /** A drop on port d, counted on the switch and the port with its reason (a PORT_CTR.drop* field;
   * default: an offload it cannot be given). */
  private dropAt(d: number, why: number = PORT_CTR.dropOffload): false {
    const pc = SW_CTR.stride + d * PORT_CTR.stride;
    this.ctr[SW_CTR.dropped]++;
    this.ctr[pc + PORT_CTR.dropped]++;
    this.ctr[pc + why]++;
    return false;
  }

  /** Take tx slot j of port d for a frame of `len` bytes just written there. */
  private sent(tx: Ring, j: number, d: number, len: number): void {
    tx.setLenFlags(j, len, 0);
    tx.advance(j + 1 === tx.numSlots ? 0 : j + 1);
    const pc = SW_CTR.stride + d * PORT_CTR.stride;
    this.ctr[pc + PORT_CTR.tx]++;
    this.ctr[pc + PORT_CTR.txBytes] += len - this.hdrAt[d];
  }

  /**
   * Between ports whose virtio-net headers differ. To a port with one: an empty header (nothing to
   * do) before the frame. To a port without: the frame, its partial checksum finished, or a TCP
   * super-frame cut into segments (a kernel container's TSO frame to an NF that takes frames of the
   * MTU). Returns whether anything went out. Multi-slot packets are not crossed (only their first
   * slot has a header to read or write): dropped, counted.
   */
  private cross(rx: Ring, i: number, s: number, d: number, len: number): boolean {
    const tx = this.txAt[d]!,
      u8 = rx.u8,
      buf = rx.buf(i),
      sh = this.hdrAt[s],
      dh = this.hdrAt[d];
    if (this.multi) return this.dropAt(d);
    if (sh === 0) {
      if (!this.admit(d, tx, len + dh)) return false;
      const j = tx.head,
        o = tx.buf(j);
      tx.u8.fill(0, o, o + dh);
      copySpan(u8, buf, tx.u8, o + dh, len);
      this.sent(tx, j, d, len + dh);
      return true;
    }
    const frame = buf + sh,
      flen = len - sh,
      gso = u8[buf + VNET_HDR.gso_type] & ~VIRTIO_NET.GSO_ECN;
    if (gso === VIRTIO_NET.GSO_NONE) {
      if (!this.admit(d, tx, flen)) return false;
      const j = tx.head,
        o = tx.buf(j);
      copySpan(u8, frame, tx.u8, o, flen);
      if (u8[buf + VNET_HDR.flags] & VIRTIO_NET.F_NEEDS_CSUM) {
        const start = u8[buf + VNET_HDR.csum_start] | (u8[buf + VNET_HDR.csum_start + 1] << 8),
          off = u8[buf + VNET_HDR.csum_offset] | (u8[buf + VNET_HDR.csum_offset + 1] << 8);
        if (start + off + 2 > flen) return this.dropAt(d);
        completeChecksum(tx.u8, o, flen, start, off);
      }
      this.sent(tx, j, d, flen);
      return true;
    }
    if (gso !== VIRTIO_NET.GSO_TCPV4 && gso !== VIRTIO_NET.GSO_TCPV6) return this.dropAt(d); // UDP GSO: not asked of veths
    const hlen = tcpHeadersLen(u8, frame, flen),
      mss = u8[buf + VNET_HDR.gso_size] | (u8[buf + VNET_HDR.gso_size + 1] << 8);
    if (hlen < 0 || mss === 0) return this.dropAt(d);
    const n = tcpSegmentCount(flen, hlen, mss);
    for (let k = 0; k < n; k++) {
      const plen = Math.min(mss, flen - hlen - k * mss);
      if (!this.admit(d, tx, hlen + plen)) return false;
      const j = tx.head,
        o = tx.buf(j);
      copySpan(u8, frame, tx.u8, o, hlen);
      copySpan(u8, frame + hlen + k * mss, tx.u8, o + hlen, plen);
      patchTcpSegment(tx.u8, o, hlen, n, k, mss, plen, o + hlen);
      this.sent(tx, j, d, hlen + plen);
    }
    return true;
  }
}

/** Bytes between regions at any offsets (a header's 10 bytes shift frames off their words). */
function copySpan(s8: Uint8Array, src: number, d8: Uint8Array, dst: number, len: number): void {
  if (dst + len > d8.length || src + len > s8.length) return; // a peer's bad index: nothing to copy
  let k = 0;
  for (; k + 8 <= len; k += 8) {
    d8[dst + k] = s8[src + k];
    d8[dst + k + 1] = s8[src + k + 1];
    d8[dst + k + 2] = s8[src + k + 2];
    d8[dst + k + 3] = s8[src + k + 3];
    d8[dst + k + 4] = s8[src + k + 4];
    d8[dst + k + 5] = s8[src + k + 5];
    d8[dst + k + 6] = s8[src + k + 6];
    d8[dst + k + 7] = s8[src + k + 7];
  }
  for (; k < len; k++) d8[dst + k] = s8[src + k];
}
