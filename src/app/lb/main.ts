// bun run lb -i PORT [-p [prefix:]npipes]... [-B nbufs] [-b batch] [-w secs] [-W] [-o secs]: netmap's
// lb on bunmap ports, as a network function on the runner (src/nf/lb.ts): each group of pipes gets
// every packet, within a group the pipe of the packet's flow (lb's own hash). Pipes are the master
// ends `PREFIX{K`; consumers open `PREFIX}K`. A prefix without a subsystem is netmap's (as lb) where
// /dev/netmap exists, else an shm: region of that name.
import { existsSync } from "node:fs";
import { LB_REASONS, LoadBalancer } from "../../nf/lb.ts";
import { NfRunner, reportFailure, runUntilDone } from "../../nf/runner.ts";
import { parsePortName } from "../../port/name.ts";
import { ArgvReader, intArg, parseCli, runMain, UsageError } from "../cli.ts";
import { withSubsystem } from "../pktgen/portname.ts";
import { D } from "../report.ts";

export interface LbArgs {
  input: string;
  groups: { prefix: string | null; pipes: number }[];
  extra: number;
  batch: number;
  wait: number;
  busy: boolean;
  stdoutEvery: number;
}

export const USAGE = `usage: lb [options]
where options are:
  -h              	view help text
  -i iface        	interface name (required)
  -p [prefix:]npipes	add a new group of output pipes
  -B nbufs        	number of extra buffers (default: 0)
  -b batch        	batch size (default: 2048)
  -w seconds        	wait for link up (default: 2)
  -W                    enable busy waiting. this will run your CPU at 100%
  -o seconds      	seconds between stdout stats messages (default: 0)
  (netmap's -s, syslog stats, is not offered: use -o)`;

const DEF_OUT_PIPES = 2;

/** -p [prefix:]npipes: the prefix may carry a subsystem (shm:name:4); the count is after the last ':'. */
export function parsePipes(spec: string): { prefix: string | null; pipes: number } {
  const at = spec.lastIndexOf(":");
  const prefix = at < 0 ? null : spec.slice(0, at);
  if (prefix === "") throw new UsageError(`-p ${spec}: missing prefix before ':'`);
  const n = at < 0 ? spec : spec.slice(at + 1);
  if (n === "") return { prefix, pipes: DEF_OUT_PIPES };
  if (!/^[0-9]+$/.test(n) || +n < 1 || +n > 4096)
    throw new UsageError(`-p ${spec}: invalid number of pipes '${n}' (must be 1..4096)`);
  if (prefix && !/^([a-z]+:)?[0-9A-Za-z_]{1,32}$/.test(prefix))
    throw new UsageError(`-p ${spec}: a prefix is a name of letters, digits and _ (with a subsystem: shm:name)`);
  return { prefix, pipes: +n };
}

export function parseLbArgs(argv: string[]): LbArgs | "help" {
  const r: LbArgs = { input: "", groups: [], extra: 0, batch: 2048, wait: 2, busy: false, stdoutEvery: 0 };
  const args = new ArgvReader(argv);
  for (let a = args.next(); a !== undefined; a = args.next()) {
    const v = () => args.value();
    switch (a) {
      case "-h":
        return "help";
      case "-i":
        if (r.input) throw new UsageError("-i: the input port is given once");
        r.input = v();
        break;
      case "-p":
        r.groups.push(parsePipes(v()));
        break;
      case "-B":
        r.extra = intArg("-B", v(), 0, 1 << 20);
        break;
      case "-b":
        r.batch = intArg("-b", v(), 1, 65536);
        break;
      case "-w":
        r.wait = intArg("-w", v(), 0, 100);
        break;
      case "-W":
        r.busy = true;
        break;
      case "-o":
        r.stdoutEvery = intArg("-o", v(), 0, 86400);
        break;
      case "-s":
        throw new UsageError("-s: syslog stats are not offered here; -o prints the same JSON lines on stdout");
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  if (!r.input) throw new UsageError("missing interface name (-i)");
  if (!r.groups.length) r.groups.push({ prefix: null, pipes: DEF_OUT_PIPES });
  return r;
}

/** The pipes' port names, group by group: numbering goes on across groups of the same name, and an
 * shm region's first pipe declares how many it has. */
export function pipeNames(args: LbArgs, netmap: boolean): string[][] {
  const base = parsePortName(args.input).ifname.replace(/[^0-9A-Za-z_]/g, "_");
  const full = (p: string | null) => {
    const name = p ?? base;
    return name.includes(":") ? name : `${netmap ? "netmap:" : "shm:"}${name}`;
  };
  const total = new Map<string, number>(),
    next = new Map<string, number>();
  for (const g of args.groups) total.set(full(g.prefix), (total.get(full(g.prefix)) ?? 0) + g.pipes);
  return args.groups.map((g) => {
    const name = full(g.prefix);
    return Array.from({ length: g.pipes }, () => {
      const id = next.get(name) ?? 0;
      next.set(name, id + 1);
      const conf = name.startsWith("shm:") && id === 0 ? `@conf:pipes=${total.get(name)}` : "";
      return `${name}{${id}${conf}`;
    });
  });
}

async function main(): Promise<number> {
  const args = parseCli("lb", USAGE, parseLbArgs);
  if (!args) return 0;
  const netmap = existsSync("/dev/netmap");
  args.input = withSubsystem(args.input, netmap, (m) => D("main", 640, m));
  D("main", 634, `interface is ${args.input}`);
  let names: string[][];
  let runner: NfRunner;
  let lb: LoadBalancer;
  try {
    names = pipeNames(args, netmap);
    const ports: Record<string, string> = { [args.input]: args.input };
    for (const n of names.flat()) ports[n] = n;
    let nf: LoadBalancer | null = null;
    runner = new NfRunner(ports, (p) => (nf as LoadBalancer).process(p), {
      reasons: LB_REASONS,
      burst: args.batch,
      spinUs: args.busy ? Number.POSITIVE_INFINITY : 50,
      tick: () => (nf as LoadBalancer).tick(),
      backpressure: false, // lb queues (-B) or drops for a full pipe itself, as netmap's does
    });
    let t = 1;
    const groups = names.map((g) => g.map(() => t++));
    lb = nf = new LoadBalancer(runner, groups, args.extra);
  } catch (e) {
    process.stderr.write(`lb: ${(e as Error).message}\n`);
    return 1;
  }
  D("main", 741, `successfully opened ${args.input}`);
  for (const [k, n] of names.flat().entries()) D("main", 828, `successfully opened pipe #${k + 1} ${n}`);
  if (args.extra) D("main", 751, `obtained ${args.extra} extra buffers`);
  else D("main", 865, "*** overflow queues disabled ***");
  D("main", 880, `Wait ${args.wait} secs for link up...`);
  if (args.wait) await Bun.sleep(args.wait * 1000);
  const pipes = names.flat();
  let prev: { t: number; p: { packets: number; bytes: number; drops: number; dropBytes: number }[] } | null = null;
  const stats = () => {
    const now = performance.now(),
      ts = Date.now() / 1000;
    const usec = prev ? (now - prev.t) * 1000 : 0;
    const rate = (x: number) => (usec ? (x * 1e6) / usec : 0);
    let tot = { packets: 0, bytes: 0, drops: 0, dropBytes: 0 };
    const dt = { packets: 0, bytes: 0, drops: 0, dropBytes: 0 };
    for (const [k, c] of lb.pipes.entries()) {
      const p0 = prev?.p[k] ?? c;
      const d = {
        packets: c.packets - p0.packets,
        bytes: c.bytes - p0.bytes,
        drops: c.drops - p0.drops,
        dropBytes: c.dropBytes - p0.dropBytes,
      };
      for (const f of ["packets", "bytes", "drops", "dropBytes"] as const) dt[f] += d[f];
      tot = {
        packets: tot.packets + c.packets,
        bytes: tot.bytes + c.bytes,
        drops: tot.drops + c.drops,
        dropBytes: tot.dropBytes + c.dropBytes,
      };
      process.stdout.write(
        `{"ts":${ts.toFixed(6)},"interface":"${pipes[k]}","output_ring":${k},"packets_forwarded":${c.packets},"packets_dropped":${c.drops},"data_forward_rate_Mbps":${((rate(d.bytes) * 8) / 1024 / 1024).toFixed(4)},"data_drop_rate_Mbps":${((rate(d.dropBytes) * 8) / 1024 / 1024).toFixed(4)},"packet_forward_rate_kpps":${(rate(d.packets) / 1000).toFixed(4)},"packet_drop_rate_kpps":${(rate(d.drops) / 1000).toFixed(4)},"overflow_queue_size":${lb.queued(k)}}\n`,
      );
    }
    process.stdout.write(
      `{"ts":${ts.toFixed(6)},"interface":"${args.input}","output_ring":null,"packets_received":${lb.received},"packets_forwarded":${tot.packets},"packets_dropped":${tot.drops},"non_ip_packets":${lb.nonIp},"data_forward_rate_Mbps":${((rate(dt.bytes) * 8) / 1024 / 1024).toFixed(4)},"data_drop_rate_Mbps":${((rate(dt.dropBytes) * 8) / 1024 / 1024).toFixed(4)},"packet_forward_rate_kpps":${(rate(dt.packets) / 1000).toFixed(4)},"packet_drop_rate_kpps":${(rate(dt.drops) / 1000).toFixed(4)},"free_buffer_slots":${lb.freeBuffers}}\n`,
    );
    prev = { t: now, p: lb.pipes.map((c) => ({ ...c })) };
  };
  const timer = args.stdoutEvery ? setInterval(stats, args.stdoutEvery * 1000) : null;
  const { failed } = await runUntilDone(runner);
  if (timer) clearInterval(timer);
  runner.close();
  const fwd = lb.pipes.reduce((a, c) => a + c.packets, 0),
    dropped = lb.pipes.reduce((a, c) => a + c.drops, 0);
  process.stdout.write(`${fwd} packets forwarded.  ${dropped} packets dropped. Total ${fwd + dropped}\n`);
  return reportFailure("lb", failed);
}

if (import.meta.main) await runMain("lb", main);
