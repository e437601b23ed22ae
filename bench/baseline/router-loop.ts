// The router as it was before it ran on the NF runner (commit 81ad5bb): its own loop around
// RouterNf.handle (one change, below: it holds input back while an output is full). Kept for bench/nf-runner.ts, the "no slower" comparison; flags as bun run router.

import { parseCli, runMain } from "../../src/app/cli.ts";
import { D } from "../../src/app/report.ts";
import { openRouterPorts, parseRouterArgs, USAGE } from "../../src/app/router/main.ts";
import { canSwap } from "../../src/forward/move.ts";
import { RouterNf, Verdict } from "../../src/nf/router.ts";
import { ETH_HLEN, formatMac } from "../../src/packet/ethernet.ts";
import { formatIPv4, get32, IP4 } from "../../src/packet/ipv4.ts";
import { POLLIN } from "../../src/ring/layout.ts";
import type { Ring } from "../../src/ring/ring.ts";

/** Put one frame from rx slot i on `out`'s tx ring; false if it is full. */
function emit(rx: Ring, i: number, out: Ring, swap: boolean): boolean {
  if (out.empty()) return false;
  const j = out.head;
  if (swap) rx.swapTo(i, out, j);
  else rx.copyTo(i, out, j);
  out.advance(out.next(j));
  return true;
}

async function main(): Promise<number> {
  const args = parseCli("router", USAGE, parseRouterArgs);
  if (!args) return 0;
  const ports = openRouterPorts(args.ports);
  if (!ports) return 1;
  const nf = new RouterNf(args, ports[0].mac);
  const sideOf = (ip: number) => (ports.length === 2 && ip === args.serverIp ? 1 : 0);
  const swap = ports.map((a) => ports.map((b) => canSwap(a, b)));
  process.stdout.write(
    `router ${formatIPv4(args.routerIp)} (${formatMac(ports[0].mac)}): client ${formatIPv4(args.clientIp)} <-> server ${formatIPv4(args.serverIp)} on ${args.ports.join(", ")}\n`,
  );

  let stop = false;
  process.on("SIGINT", () => {
    stop = true;
  });
  process.on("SIGTERM", () => {
    stop = true;
  });
  const askArp = () => {
    for (const ip of nf.unresolved()) {
      const p = ports[sideOf(ip)],
        tx = p.txRings[0];
      p.txsync();
      if (tx.empty()) continue;
      const len = nf.arpRequest(tx.u8, tx.buf(tx.head), ip);
      tx.setLenFlags(tx.head, len, 0);
      tx.advance(tx.next(tx.head));
      p.txsync();
    }
  };
  askArp();
  let lastArp = performance.now(),
    lastReport = performance.now(),
    idle = 0;
  const end = args.seconds ? performance.now() + args.seconds * 1000 : Infinity;
  while (!stop && performance.now() < end) {
    const sliceEnd = performance.now() + 50;
    while (performance.now() < sliceEnd) {
      let moved = 0;
      for (let pi = 0; pi < ports.length; pi++) {
        const port = ports[pi];
        port.rxsync();
        for (const rx of port.rxRings) {
          // (one change from the loop as it was: take only as many as every output has room for. As
          // it was, a full output dropped frames the NF had already rewritten in place, and a sender
          // that reuses its buffers (pktgen) then sent them rewritten: 99% lost on shm pipes)
          let room = Number.POSITIVE_INFINITY;
          for (const p of ports) {
            if (p.txRings[0].space() === 0) p.txsync();
            room = Math.min(room, p.txRings[0].space());
          }
          while (!rx.empty() && room-- > 0) {
            const i = rx.head,
              buf = rx.buf(i);
            const v = nf.handle(rx.u8, buf, rx.len(i));
            if (v !== Verdict.Drop) {
              // forward to the side of the new destination; replies go back where they came from
              const dst = v === Verdict.Forward ? get32(rx.u8, buf + ETH_HLEN + IP4.dst) : 0; // the rewritten IPv4 destination
              const po = v === Verdict.Forward ? sideOf(dst) : pi;
              if (!emit(rx, i, ports[po].txRings[0], swap[pi][po])) nf.stats.dropped++;
            }
            rx.advance(rx.next(i));
            moved++;
          }
        }
      }
      for (const p of ports) {
        p.txsync();
        p.rxsync();
      }
      if (moved) {
        idle = 0;
        continue;
      }
      if (++idle > 64) ports[0].poll(POLLIN, 1);
    }
    const now = performance.now();
    if (nf.unresolved().length && now - lastArp > 500) {
      askArp();
      lastArp = now;
    }
    if (now - lastReport >= args.reportMs) {
      const s = nf.stats;
      D(
        "router",
        1,
        `forwarded ${s.forwarded} arp answered ${s.arpAnswered} learned ${s.arpLearned} dropped ${s.dropped} waiting-for-arp ${s.noNeighbour}`,
      );
      lastReport = now;
    }
    await Bun.sleep(0);
  }
  const s = nf.stats;
  process.stdout.write(
    `router: forwarded ${s.forwarded}, answered ${s.arpAnswered} ARP requests, dropped ${s.dropped}\n`,
  );
  for (const p of ports) p.close();
  return 0;
}

if (import.meta.main) await runMain("router", main);
