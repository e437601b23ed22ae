// bun run router -i PORT [-i PORT] --ip ROUTER --client IP --server IP [-t seconds] [-T report_ms]
// One port: client, server and router share a segment (the Docker example). Two ports: port 1 faces
// the client, port 2 the server. The NF (src/nf/router.ts) rewrites in place, on the runner: the
// frame leaves by buffer swap when the ports allow it, by copy otherwise. Unknown neighbours are
// asked for by ARP, every 500 ms until they answer.

import { type NfConfig, ROUTER_DROPS, RouterNf } from "../../nf/router.ts";
import { formatCounters, NfRunner, reportFailure, runUntilDone } from "../../nf/runner.ts";
import { formatMac } from "../../packet/ethernet.ts";
import { formatIPv4, parseIPv4 } from "../../packet/ipv4.ts";
import { openPort } from "../../port/open.ts";
import type { Port } from "../../port/port.ts";
import { intArg, parseCli, runMain, UsageError } from "../cli.ts";
import { D } from "../report.ts";

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

/** The router's ports, opened (plain Ethernet: the NF reads it at the start of each buffer); null
 * after one error line, nothing left open. */
export function openRouterPorts(specs: string[]): Port[] | null {
  const ports: Port[] = [];
  try {
    for (const p of specs) ports.push(openPort(p));
    const v = ports.find((p) => p.hdrLen);
    if (v) throw new Error(`${v.name}: the router takes plain Ethernet frames; open the port without vnet=1`);
  } catch (e) {
    for (const p of ports) p.close();
    process.stderr.write(`router: ${(e as Error).message}\n`);
    return null;
  }
  return ports;
}

async function main(): Promise<number> {
  const args = parseCli("router", USAGE, parseRouterArgs);
  if (!args) return 0;
  const ports = openRouterPorts(args.ports);
  if (!ports) return 1;
  const nf = new RouterNf(args, ports[0].mac, ports.length);
  const runner = new NfRunner(Object.fromEntries(ports.map((p, k) => [k ? "server" : "client", p])), nf.process, {
    reasons: [...ROUTER_DROPS],
  });
  process.stdout.write(
    `router ${formatIPv4(args.routerIp)} (${formatMac(ports[0].mac)}): client ${formatIPv4(args.clientIp)} <-> server ${formatIPv4(args.serverIp)} on ${args.ports.join(", ")}\n`,
  );
  const words = new Uint32Array(16),
    frame = new Uint8Array(words.buffer);
  const askArp = () => {
    for (const ip of nf.unresolved()) {
      nf.arpRequest(frame, 0, ip);
      runner.emit(nf.sideOf(ip), frame, words, 0, 60); // a full ring: asked again in 500 ms
    }
  };
  askArp();
  const arp = setInterval(() => nf.unresolved().length && askArp(), 500);
  const report = setInterval(() => {
    const s = nf.stats;
    D(
      "router",
      1,
      `forwarded ${s.forwarded} arp answered ${s.arpAnswered} learned ${s.arpLearned} dropped ${s.dropped} waiting-for-arp ${s.noNeighbour}`,
    );
  }, args.reportMs);
  const { failed } = await runUntilDone(runner, args.seconds);
  clearInterval(arp);
  clearInterval(report);
  const s = nf.stats;
  process.stdout.write(
    `router: forwarded ${s.forwarded}, answered ${s.arpAnswered} ARP requests, dropped ${s.dropped}\n`,
  );
  process.stdout.write(formatCounters(runner.counters()));
  runner.close();
  return reportFailure("router", failed);
}

if (import.meta.main) await runMain("router", main);
