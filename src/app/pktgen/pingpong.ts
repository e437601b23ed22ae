// ping_body / pong_body: the client stamps a sequence number and a timestamp right after the UDP
// header (payload bytes 0..11, i.e. frame offsets 42/46/50 as pkt-gen) and measures the round trip;
// the server reflects: swap MACs and IPs (and ports), send back — by buffer swap when rx and tx
// share the region, by copy otherwise. Checksums stay valid (swaps do not change the sums).

import { swapMacs } from "../../packet/ethernet.ts";
import { get32, swapIPv4 } from "../../packet/ipv4.ts";
import { POLLIN, POLLOUT } from "../../ring/layout.ts";
import { C, type Ctx, cancelled, wallMs } from "./ctx.ts";
import { frameSource } from "./flowcfg.ts";

const now = () => Bun.nanoseconds();

/** RTT statistics with pkt-gen's power-of-two histogram. */
export class RttStats {
  count = 0;
  sum = 0;
  min = Infinity;
  max = 0;
  readonly buckets = new Float64Array(64);
  add(ns: number): void {
    this.count++;
    this.sum += ns;
    if (ns < this.min) this.min = ns;
    if (ns > this.max) this.max = ns;
    this.buckets[ns < 1 ? 0 : Math.min(63, Math.floor(Math.log2(ns)))]++;
  }
  reset(): void {
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
    this.buckets.fill(0);
  }
  /** "k: 2^kmin .. 2^kmax" line followed by the bucket counts (pkt-gen's format). */
  histogram(): string {
    let kmin = 0,
      kmax = 63;
    while (kmin < 64 && !this.buckets[kmin]) kmin++;
    while (kmax >= kmin && !this.buckets[kmax]) kmax--;
    if (kmin > kmax) return "k: (empty)";
    let s = "";
    for (let j = kmin; j <= kmax; j++) s += ` ${String(this.buckets[j]).padStart(5)}`;
    return `k: ${2 ** kmin} .. ${2 ** kmax}\n\t${s}`;
  }
}

export function pingBody(ctx: Ctx): void {
  const { cfg, port, ctr } = ctx;
  const src = frameSource(cfg, port.mac, 12, 1);
  const tx = port.txRings[0];
  const off = src.payOff;
  const n = cfg.npackets;
  const win = new RttStats(),
    total = new RttStats();
  let sent = 0,
    seq = 0,
    lastPrint = performance.now(),
    events = 0,
    bytes = 0;
  ctr[C.tic] = wallMs();
  while (!cancelled(ctx) && (n === 0 || sent < n)) {
    if ((port.poll(POLLOUT, 1000) & POLLOUT) === 0) {
      ctx.log("ping_body", 1150, "poll error: timeout waiting for tx space");
      continue;
    }
    let m = Math.min(cfg.burst, tx.space());
    if (n && m > n - sent) m = n - sent;
    for (let k = 0; k < m; k++) {
      const i = tx.head;
      const buf = tx.buf(i);
      src.fill(tx.u8, buf);
      const t = now();
      const len = src.emit(tx.u8, buf, seq++ >>> 0, Math.floor(t / 1e9), t % 1e9, 3);
      tx.setLenFlags(i, len, 0);
      tx.advance(tx.next(i));
      bytes += len;
    }
    port.txsync();
    sent += m;
    events++;
    // wait for the replies to this burst (1 s, as pkt-gen)
    let got = 0;
    const deadline = performance.now() + 1000;
    while (got < m && !cancelled(ctx) && performance.now() < deadline) {
      if ((port.poll(POLLIN, Math.max(1, deadline - performance.now())) & POLLIN) === 0) continue;
      for (const rx of port.rxRings) {
        while (!rx.empty()) {
          const i = rx.head,
            b = rx.buf(i);
          if (rx.len(i) >= off + 12) {
            const u8 = rx.u8;
            const sec = get32(u8, b + off + 4),
              nsec = get32(u8, b + off + 8);
            const rtt = now() - (sec * 1e9 + nsec);
            win.add(rtt);
            total.add(rtt);
            got++;
          }
          rx.advance(rx.next(i));
        }
      }
      port.rxsync();
    }
    ctr[C.pkts] = total.count;
    ctr[C.bytes] = bytes;
    ctr[C.events] = events;
    ctr[C.rttMin] = total.min;
    ctr[C.rttMax] = total.max;
    ctr[C.rttSum] = total.sum;
    ctr[C.rttCount] = total.count;
    if (performance.now() - lastPrint >= 1000) {
      if (win.count) {
        ctx.log(
          "ping_body",
          1206,
          `count ${win.count} RTT: min ${Math.round(win.min)} av ${Math.round(win.sum / win.count)} max ${Math.round(win.max)} ns`,
        );
        ctx.log("ping_body", 1219, win.histogram());
      }
      win.reset();
      lastPrint = performance.now();
    }
  }
  ctr[C.toc] = wallMs();
  if (sent > 0) {
    const av = total.count ? Math.round(total.sum / total.count) : 0;
    ctx.log(
      "ping_body",
      1241,
      `RTT over ${sent} packets: min ${total.count ? Math.round(total.min) : 0} av ${av} max ${Math.round(total.max)} ns (${total.count} replies, ${sent - total.count} lost)`,
    );
    if (total.count) ctx.log("ping_body", 1243, total.histogram());
  }
  ctr[C.kernelDrops] = port.rxDrops();
}

export function pongBody(ctx: Ctx): void {
  const { cfg, port, ctr } = ctx;
  const zeroCopy = port.zeroCopy; // swap buffers when the port allows it, copy otherwise
  const n = cfg.npackets;
  let replies = 0,
    bytes = 0,
    events = 0;
  ctr[C.tic] = wallMs();
  while (!cancelled(ctx) && (n === 0 || replies < n)) {
    if ((port.poll(POLLIN, 1000) & POLLIN) === 0) {
      if (!cfg.forever && replies > 0) break; // -W: traffic began and stopped for 1 s
      continue;
    }
    port.txsync();
    for (let r = 0; r < port.rxRings.length; r++) {
      const rx = port.rxRings[r];
      const tx = port.txRings[r % port.txRings.length];
      let m = Math.min(rx.space(), tx.space(), cfg.burst);
      if (n && m > n - replies) m = n - replies;
      for (let k = 0; k < m; k++) {
        const i = rx.head,
          j = tx.head;
        if (zeroCopy) rx.swapTo(i, tx, j);
        else rx.copyTo(i, tx, j);
        const b = tx.buf(j),
          u8 = tx.u8;
        swapMacs(u8, b);
        if (((u8[b + 12] << 8) | u8[b + 13]) === 0x0800) {
          swapIPv4(u8, b + 14);
          const l4 = b + 14 + (u8[b + 14] & 0xf) * 4;
          for (let x = 0; x < 2; x++) {
            const t = u8[l4 + x];
            u8[l4 + x] = u8[l4 + 2 + x];
            u8[l4 + 2 + x] = t;
          }
        }
        bytes += tx.len(j);
        rx.advance(rx.next(i));
        tx.advance(tx.next(j));
      }
      if (m) {
        replies += m;
        events++;
      }
    }
    port.txsync();
    port.rxsync();
    ctr[C.pkts] = replies;
    ctr[C.bytes] = bytes;
    ctr[C.events] = events;
  }
  ctr[C.toc] = wallMs();
  ctr[C.kernelDrops] = port.rxDrops();
}
