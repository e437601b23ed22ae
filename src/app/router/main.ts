// bun run router -i PORT [-i PORT] --ip ROUTER --client IP --server IP [-t seconds] [-T report_ms]
// One port: client, server and router share a segment (the Docker example). Two ports: port 1 faces
// the client, port 2 the server. The NF (nf.ts) rewrites in place; the frame leaves by buffer swap
// when the ports allow it, by copy otherwise. Unknown neighbours are asked for by ARP.

import { canSwap } from "../../forward/move.ts";
import { ETH_HLEN, formatMac } from "../../packet/ethernet.ts";
import { formatIPv4, get32, IP4, parseIPv4 } from "../../packet/ipv4.ts";
import { openPort } from "../../port/open.ts";
import type { Port } from "../../port/port.ts";
import { POLLIN } from "../../ring/layout.ts";
import type { Ring } from "../../ring/ring.ts";
import { intArg, parseCli, runMain, UsageError } from "../cli.ts";
import { D } from "../report.ts";
import { type NfConfig, RouterNf, Verdict } from "./nf.ts";

export interface RouterArgs extends NfConfig {
  ports: string[];
  seconds: number;
  reportMs: number;
}

export const USAGE = `Usage: bun run router -i PORT [-i PORT] --ip ROUTER_IP --client CLIENT_IP --server SERVER_IP [-t seconds] [-T report_ms]
  one port: all three on one segment; two ports: the first faces the client, the second the server`;

export function parseRouterArgs(argv: string[]): RouterArgs | "help" {
  const r: Partial<RouterArgs> & { ports: string[] } = { ports: [], seconds: 0, reportMs: 1000 };
  const ip = (f: string, v: string | undefined) => {
    try {
      return parseIPv4(v ?? "");
    } catch {
      throw new UsageError(`${f} ${v ?? ""}: expected an IPv4 address`);
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i],
      v = argv[i + 1];
    switch (a) {
      case "-h":
      case "--help":
        return "help";
      case "-i":
        if (!v) throw new UsageError("-i needs a port");
        r.ports.push(v);
        i++;
        break;
      case "--ip":
        r.routerIp = ip(a, v);
        i++;
        break;
      case "--client":
        r.clientIp = ip(a, v);
        i++;
        break;
      case "--server":
        r.serverIp = ip(a, v);
        i++;
        break;
      case "-t":
        r.seconds = intArg(a, v, 0, 86400);
        i++;
        break;
      case "-T":
        r.reportMs = intArg(a, v, 10, 3_600_000);
        i++;
        break;
      default:
        throw new UsageError(`unknown argument '${a}'`);
    }
  }
  if (r.ports.length < 1 || r.ports.length > 2) throw new UsageError("give one or two ports (-i)");
  for (const k of ["routerIp", "clientIp", "serverIp"] as const)
    if (r[k] === undefined) throw new UsageError(`--${k === "routerIp" ? "ip" : k.replace("Ip", "")} is required`);
  if (new Set([r.routerIp, r.clientIp, r.serverIp]).size !== 3)
    throw new UsageError("router, client and server need three different addresses");
  return r as RouterArgs;
}

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
  const ports: Port[] = [];
  try {
    for (const p of args.ports) ports.push(openPort(p));
    // the NF reads Ethernet at the start of each buffer
    const v = ports.find((p) => p.hdrLen);
    if (v) throw new Error(`${v.name}: the router takes plain Ethernet frames; open the port without vnet=1`);
  } catch (e) {
    for (const p of ports) p.close();
    process.stderr.write(`router: ${(e as Error).message}\n`);
    return 1;
  }
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
          while (!rx.empty()) {
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
