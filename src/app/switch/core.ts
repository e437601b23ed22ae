// One thread's share of the switch: for every port, drain a burst from its rx ring(s), learn the
// source MAC, ask the lookup, put the packet on the destination's tx ring (buffer swap when both
// ports share memory, copy otherwise; floods copy). Multi-slot packets follow their first slot.
// One rxsync and one txsync per port per round; no allocation per packet.
import type { Port } from "../../port/port.ts";
import type { Ring } from "../../ring/ring.ts";
import { NS_MOREFRAG } from "../../ring/layout.ts";
import { canSwap } from "../forward.ts";
import { BROADCAST, type Lookup, type SwitchView } from "./lookup.ts";
import type { Fdb } from "./fdb.ts";

export interface SwitchCounters { forwarded: number; flooded: number; dropped: number }

export class SwitchCore implements SwitchView {
  readonly nports: number;
  now = Math.floor(Date.now() / 1000);
  readonly c: SwitchCounters = { forwarded: 0, flooded: 0, dropped: 0 };
  private readonly tx: Ring[];
  private readonly swap: Uint8Array; // swap[s * n + d]
  private readonly maxLen: Int32Array;

  /** Per port: [2*i] packets received, [2*i+1] packets sent (a view the owner may share). */
  readonly portCounters: Float64Array;

  constructor(readonly ports: Port[], readonly fdb: Fdb, private readonly lookup: Lookup, private readonly burst = 512, portCounters?: Float64Array) {
    this.portCounters = portCounters ?? new Float64Array(2 * ports.length);
    const n = (this.nports = ports.length);
    this.tx = ports.map((p) => p.txRings[0]);
    this.swap = new Uint8Array(n * n);
    for (let s = 0; s < n; s++) for (let d = 0; d < n; d++) this.swap[s * n + d] = canSwap(ports[s], ports[d]) ? 1 : 0;
    this.maxLen = Int32Array.from(ports, (p) => p.bufSize);
  }

  /** One pass over every port; returns the number of slots taken from rx rings. */
  round(): number {
    const n = this.nports;
    this.now = Math.floor(Date.now() / 1000);
    let taken = 0;
    for (let s = 0; s < n; s++) {
      const port = this.ports[s];
      port.rxsync();
      for (const rx of port.rxRings) {
        const k = this.drain(s, rx);
        taken += k;
        this.portCounters[2 * s] += k;
      }
    }
    // every port, not only those we wrote: a full tx ring must see its tail move again
    for (let d = 0; d < n; d++) this.ports[d].txsync();
    return taken;
  }

  private drain(s: number, rx: Ring): number {
    const n = this.nports, u8 = rx.u8, lookup = this.lookup;
    let i = rx.head, m = rx.space();
    if (m > this.burst) m = this.burst;
    let dest = 0, inPacket = false;
    for (let k = 0; k < m; k++) {
      const buf = rx.buf(i), len = rx.len(i), more = (rx.flags(i) & NS_MOREFRAG) !== 0;
      if (!inPacket) {
        if (len >= 14) {
          if ((u8[buf + 6] & 1) === 0) this.fdb.learn(u8, buf + 6, s, this.now);
          dest = lookup(u8, buf, len, s, this);
        } else dest = -2;
      }
      inPacket = more;
      if (dest >= 0) {
        if (dest === s || dest >= n) this.c.dropped++;
        else this.one(rx, i, s, dest, len);
      } else if (dest === BROADCAST) {
        for (let d = 0; d < n; d++) if (d !== s) this.copy(rx, i, d, len);
        this.c.flooded++;
      } else this.c.dropped++;
      i = i + 1 === rx.numSlots ? 0 : i + 1;
    }
    rx.advance(i);
    return m;
  }

  private one(rx: Ring, i: number, s: number, d: number, len: number): void {
    const tx = this.tx[d];
    if (tx.empty() || len > this.maxLen[d]) { this.c.dropped++; return; }
    const j = tx.head;
    if (this.swap[s * this.nports + d]) rx.swapTo(i, tx, j);
    else rx.copyTo(i, tx, j);
    tx.advance(j + 1 === tx.numSlots ? 0 : j + 1);
    this.portCounters[2 * d + 1]++;
    this.c.forwarded++;
  }

  private copy(rx: Ring, i: number, d: number, len: number): void {
    const tx = this.tx[d];
    if (tx.empty() || len > this.maxLen[d]) { this.c.dropped++; return; }
    const j = tx.head;
    rx.copyTo(i, tx, j);
    tx.advance(j + 1 === tx.numSlots ? 0 : j + 1);
    this.portCounters[2 * d + 1]++;
  }
}
