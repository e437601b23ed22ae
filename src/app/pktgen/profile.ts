// bun run pktgen --profile FILE.ts: the scripted generator (src/gen) behind pkt-gen's command.
//   -f tx -i PORT [--rx PORT]   send the profile's streams (and, with --rx, receive them back through
//                               a device under test: loss, duplicates, reordering, latency per stream)
//   -f rx -i PORT               receive and count a profile's streams sent by another process
// -n packets per stream, --seconds S, -R total pps (for shares), -p threads (stream i on thread
// i mod N, each on ring i as pkt-gen's -p), --json, -w wait s, -b burst.
// A status line per stream each second (stderr), a summary per stream at the end (stdout).
import { Generator, type StreamTx } from "../../gen/generator.ts";
import type { Histogram } from "../../gen/histogram.ts";
import { type CompiledStream, checkLinkRate, compileProfile, loadProfile } from "../../gen/profile.ts";
import { drainPort, Receiver, type StreamRx } from "../../gen/receiver.ts";
import { profilePps, searchRate } from "../../gen/search.ts";
import { wallMs } from "../../gen/signature.ts";
import { runThreads } from "../../gen/threads.ts";
import type { Family } from "../../metrics/exposition.ts";
import { genFamilies } from "../../metrics/families.ts";
import { ifaceSpeedBps } from "../../port/iface.ts";
import { openPort, parsePortName } from "../../port/open.ts";
import type { Port } from "../../port/port.ts";
import { intArg, UsageError } from "../cli.ts";
import { type MetricsFlag, metricsAddr, startMetrics, takeMetricsFlag } from "../metrics-flag.ts";
import type { Config } from "./args.ts";
import { threadPortName } from "./portname.ts";

export const PROFILE_USAGE = `Usage: bun run pktgen --profile FILE.ts -f tx -i PORT [--rx PORT] [-n packets] [--seconds S] [-R pps] [-p threads] [-b burst] [-w wait] [--json] [--metrics HOST:PORT]
       bun run pktgen --profile FILE.ts -f rx -i PORT [-n packets] [--seconds S] [--json] [--metrics HOST:PORT]
       bun run pktgen --profile FILE.ts -f tx -i PORT --rx PORT --search ndr|pdr [--loss PCT] [--trial S] [--precision PCT]`;

export interface ProfileArgs {
  file: string;
  func: "tx" | "rx";
  port: string;
  rx: string;
  count: number;
  seconds: number;
  totalPps: number | undefined;
  burst: number;
  wait: number;
  json: boolean;
  metrics: MetricsFlag;
  /** Sending threads (-p): stream i on thread i mod N, each on its own ring. */
  threads: number;
  search: "" | "ndr" | "pdr";
  lossPct: number;
  trial: number;
  precision: number;
}

export function parseProfileArgs(argv: string[]): ProfileArgs {
  const r: ProfileArgs = {
    file: "",
    func: "tx",
    port: "",
    rx: "",
    count: 0,
    seconds: 0,
    totalPps: undefined,
    burst: 256,
    wait: 0,
    json: false,
    metrics: { raw: "", public: false },
    threads: 1,
    search: "",
    lossPct: Number.NaN,
    trial: 2,
    precision: 1,
  };
  const pct = (flag: string, v: string, lo: number, hi: number) => {
    const n = Number(v);
    if (v === "" || !Number.isFinite(n) || n < lo || n > hi)
      throw new UsageError(`${flag} ${v}: expected a number ${lo}..${hi}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const used = takeMetricsFlag(argv, i, r.metrics);
    if (used) {
      i += used - 1;
      continue;
    }
    const a = argv[i],
      v = argv[i + 1];
    const need = () => {
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      i++;
      return v;
    };
    if (a === "--profile") r.file = need();
    else if (a === "-f") {
      const f = need();
      if (f !== "tx" && f !== "rx") throw new UsageError(`-f ${f}: with --profile, use -f tx or -f rx`);
      r.func = f;
    } else if (a === "-i") r.port = need();
    else if (a === "--rx") r.rx = need();
    else if (a === "-n") r.count = intArg("-n", need(), 0, 2 ** 48);
    else if (a === "--seconds") r.seconds = intArg("--seconds", need(), 0, 86400 * 365);
    else if (a === "-R") r.totalPps = intArg("-R", need(), 1, 1e9);
    else if (a === "-b") r.burst = intArg("-b", need(), 1, 8192);
    else if (a === "-w") r.wait = intArg("-w", need(), 0, 3600);
    else if (a === "--json") r.json = true;
    else if (a === "-p") r.threads = intArg("-p", need(), 1, 64);
    else if (a === "--search") {
      const m = need();
      if (m !== "ndr" && m !== "pdr")
        throw new UsageError(`--search ${m}: use ndr (no loss) or pdr (loss up to --loss)`);
      r.search = m;
    } else if (a === "--loss") r.lossPct = pct("--loss", need(), 0, 100);
    else if (a === "--trial") r.trial = pct("--trial", need(), 0.1, 3600);
    else if (a === "--precision") r.precision = pct("--precision", need(), 0.01, 50);
    else throw new UsageError(`${a}: not a flag of --profile mode (${PROFILE_USAGE.split("\n")[0].slice(7)})`);
  }
  if (!r.file) throw new UsageError("--profile needs a file");
  metricsAddr(r.metrics);
  if (!r.port) throw new UsageError("-i PORT is required");
  if (r.func === "rx" && r.rx) throw new UsageError("--rx is for -f tx (receive what was sent); -f rx receives on -i");
  if (r.search) {
    if (r.func !== "tx" || !r.rx) throw new UsageError("--search sends and receives: -f tx -i PORT --rx PORT");
    if (r.count || r.seconds) throw new UsageError("--search runs trials of --trial S each: drop -n and --seconds");
    if (r.search === "pdr" && Number.isNaN(r.lossPct))
      throw new UsageError("--search pdr needs --loss PCT (the loss a passing trial may have)");
    if (r.search === "ndr" && !Number.isNaN(r.lossPct) && r.lossPct !== 0)
      throw new UsageError("--search ndr allows no loss: drop --loss, or use pdr");
    if (Number.isNaN(r.lossPct)) r.lossPct = 0;
  } else if (r.func === "tx" && !r.count && !r.seconds)
    throw new UsageError("say how long: -n packets per stream or --seconds S");
  return r;
}

const us = (ns: number) => (Number.isFinite(ns) ? (ns / 1000).toFixed(1) : "-");
const latencyOf = (h: Histogram) => ({
  min: us(h.min),
  p50: us(h.quantile(0.5)),
  p99: us(h.quantile(0.99)),
  p999: us(h.quantile(0.999)),
  max: us(h.max),
});

/** One stream's received side, as text or a JSON object. */
function rxSummary(r: StreamRx, sent: number | undefined) {
  const lost = r.lost(sent);
  const base = sent ?? r.top + 1;
  return {
    received: r.packets,
    lost,
    lossPct: base > 0 ? (lost / base) * 100 : 0,
    duplicates: r.duplicates,
    reordered: r.reordered,
    latencyUs: latencyOf(r.latency),
  };
}

function rxText(name: string, s: ReturnType<typeof rxSummary>): string {
  const l = s.latencyUs;
  return `stream ${name}: received ${s.received}, lost ${s.lost} (${s.lossPct.toFixed(3)}%), ${s.duplicates} duplicates, ${s.reordered} reordered; latency us min ${l.min} p50 ${l.p50} p99 ${l.p99} p99.9 ${l.p999} max ${l.max}\n`;
}

/** What the streams have done so far, for --metrics: updated each second and at the end. */
const live: { names: string[]; sent: number[]; bytes: number[]; rx: Receiver | null } = {
  names: [],
  sent: [],
  bytes: [],
  rx: null,
};

function genSource(): Family[] {
  return genFamilies(
    live.names.map((stream, i) => {
      const r = live.rx?.streams[i];
      return {
        labels: { stream },
        ...(live.sent.length ? { txPackets: live.sent[i] ?? 0, txBytes: live.bytes[i] ?? 0 } : {}),
        ...(r
          ? {
              rx: {
                packets: r.packets,
                bytes: r.bytes,
                lost: r.lost(live.sent.length ? live.sent[i] : undefined),
                duplicates: r.duplicates,
                reordered: r.reordered,
                latency: r.latency,
              },
            }
          : {}),
      };
    }),
  );
}

export async function profileMain(argv: string[]): Promise<number> {
  const args = parseProfileArgs(argv);
  const profile = await loadProfile(args.file);
  const ports: Port[] = [];
  const web = startMetrics(metricsAddr(args.metrics), { sources: [genSource] }, "pktgen");
  try {
    const port = openPort(args.port);
    ports.push(port);
    const rxPort = args.rx ? openPort(args.rx) : null;
    if (rxPort) ports.push(rxPort);
    const streams = compileProfile(profile, port.bufSize - port.hdrLen, args.totalPps);
    const pn = parsePortName(args.port);
    if (args.func === "tx" && (pn.backend === "packet" || pn.backend === "xdp" || pn.backend === "netmap"))
      checkLinkRate(streams, ifaceSpeedBps(pn.ifname), args.port);
    if (port.hdrLen || rxPort?.hdrLen)
      throw new UsageError("--profile sends plain Ethernet frames: open the ports without vnet=1");
    if (args.wait) await Bun.sleep(args.wait * 1000);
    if (args.threads > 1 && (args.search || args.func === "rx"))
      throw new UsageError("-p N sends on N threads: for -f tx without --search");
    if (args.threads > 1) {
      // each thread opens its own ring: this thread's hold on the port ends here
      ports.splice(ports.indexOf(port), 1);
      port.close();
    }
    if (args.search && rxPort) return await search(args, streams, port, rxPort);
    return args.func === "tx" ? await send(args, streams, port, rxPort) : await receive(args, streams, port);
  } finally {
    for (const p of ports) p.close();
    await web?.stop();
  }
}

async function send(args: ProfileArgs, streams: CompiledStream[], port: Port, rxPort: Port | null): Promise<number> {
  process.stdout.write(
    `pktgen: ${args.file}: ${streams.length} streams on ${args.port}${args.threads > 1 ? ` (${args.threads} threads)` : ""}${rxPort ? `, back on ${args.rx}` : ""}\n`,
  );
  const t0 = wallMs();
  live.names = streams.map((c) => c.name);
  const status = (sent: number[], rx: Receiver | null, last: number[]) => {
    live.sent = sent;
    live.rx = rx;
    const t = Math.round((wallMs() - t0) / 1000);
    for (const [i, c] of streams.entries()) {
      const r = rx?.streams[i];
      process.stderr.write(
        `[${t}s] ${c.name}: ${sent[i] - (last[i] ?? 0)} pps sent${r ? `, ${r.packets} received, lost ${r.lost(sent[i])}, p99 ${us(r.latency.quantile(0.99))} us` : ""}\n`,
      );
    }
  };
  let gen: { startMs: number; endMs: number; tx: StreamTx[]; rx: Receiver | null };
  let stop: () => void;
  let running: Promise<void>;
  if (args.threads > 1) {
    const names = Array.from({ length: args.threads }, (_, i) =>
      threadPortName({ ifname: args.port, ringConf: null, threads: args.threads } as Config, i),
    );
    let last: number[] = [];
    const run = await runThreads(args.file, streams, names, rxPort, {
      count: args.count,
      seconds: args.seconds,
      totalPps: args.totalPps,
      burst: args.burst,
      onSecond: (sent, rx) => {
        status(sent, rx, last);
        last = [...sent];
      },
    });
    stop = run.stop;
    let result: typeof gen | null = null;
    running = run.done.then((r) => {
      result = r;
    });
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    await running;
    gen = result as unknown as typeof gen;
  } else {
    let last: number[] = [];
    const g = new Generator(streams, port, rxPort, {
      count: args.count,
      seconds: args.seconds,
      burst: args.burst,
      onSecond: (x) => {
        const sent = x.tx.map((s) => s.sent);
        live.bytes = x.tx.map((s) => s.bytes);
        status(sent, x.rx, last);
        last = sent;
      },
    });
    stop = () => g.stop();
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    await g.run();
    gen = g;
  }
  live.sent = gen.tx.map((s) => s.sent);
  live.bytes = gen.tx.map((s) => s.bytes);
  live.rx = gen.rx;
  const secs = (gen.endMs - gen.startMs) / 1000;
  for (const [i, s] of gen.tx.entries()) {
    const c = streams[i];
    const target = c.rate.pps ?? (c.rate.bps ? c.rate.bps / 8 / (s.bytes / Math.max(1, s.sent)) : 0);
    // the achieved rate second by second, whole seconds only, against the target (constant pacing)
    const whole = s.perSecond.slice(0, Math.floor(secs));
    const worst =
      whole.length && c.pattern === "constant"
        ? Math.max(...whole.map((n) => Math.abs(n - target) / target)) * 100
        : Number.NaN;
    const tx = {
      stream: s.name,
      sent: s.sent,
      bytes: s.bytes,
      seconds: secs,
      pps: s.sent / secs,
      targetPps: target,
      worstSecondErrorPct: worst,
      txLatenessUs: latencyOf(s.lateness),
    };
    const rx = gen.rx ? rxSummary(gen.rx.streams[i], s.sent) : null;
    if (args.json)
      process.stdout.write(
        `${JSON.stringify({ ...tx, ...(rx ? { rx, histogram: gen.rx?.streams[i].latency.buckets() } : {}) })}\n`,
      );
    else {
      const l = tx.txLatenessUs;
      process.stdout.write(
        `stream ${s.name}: sent ${s.sent} packets ${s.bytes} bytes in ${secs.toFixed(2)} s, ${tx.pps.toFixed(1)} pps (target ${target.toFixed(1)}${Number.isNaN(worst) ? "" : `, worst second ${worst.toFixed(2)}% off`}); left late by us p50 ${l.p50} p99 ${l.p99} max ${l.max}\n`,
      );
      if (rx) process.stdout.write(rxText(s.name, rx));
    }
  }
  if (gen.rx?.foreign) process.stdout.write(`${gen.rx.foreign} packets without a signature\n`);
  return 0;
}

async function receive(args: ProfileArgs, streams: CompiledStream[], port: Port): Promise<number> {
  const rx = new Receiver(streams.map((s) => s.writer.template.sigOff));
  live.names = streams.map((c) => c.name);
  live.rx = rx;
  process.stdout.write(`pktgen: ${args.file}: receiving ${streams.length} streams on ${args.port}\n`);
  let stop = false;
  const onSig = () => {
    stop = true;
  };
  process.on("SIGINT", onSig);
  process.on("SIGTERM", onSig);
  const end = args.seconds ? performance.now() + args.seconds * 1000 : Number.POSITIVE_INFINITY;
  while (!stop && performance.now() < end && !(args.count && rx.streams.every((s) => s.packets >= args.count))) {
    port.poll(1, 50); // POLLIN, 50 ms: signals and the end are seen
    drainPort(port, rx);
    await Bun.sleep(0);
  }
  for (const [i, s] of streams.entries()) {
    const sum = rxSummary(rx.streams[i], undefined);
    if (args.json)
      process.stdout.write(
        `${JSON.stringify({ stream: s.name, rx: sum, histogram: rx.streams[i].latency.buckets() })}\n`,
      );
    else process.stdout.write(rxText(s.name, sum));
  }
  if (rx.foreign) process.stdout.write(`${rx.foreign} packets without a signature\n`);
  return 0;
}

async function search(args: ProfileArgs, streams: CompiledStream[], port: Port, rxPort: Port): Promise<number> {
  const name = args.search.toUpperCase();
  process.stdout.write(
    `pktgen: ${args.file}: ${name} search on ${args.port} -> ${args.rx}, up to ${profilePps(streams).toFixed(1)} pps, trials of ${args.trial} s, loss <= ${args.lossPct}%, precision ${args.precision}%\n`,
  );
  let n = 0;
  const r = await searchRate(streams, port, rxPort, {
    lossPct: args.lossPct,
    trialSeconds: args.trial,
    precisionPct: args.precision,
    onTrial: (t) => {
      n++;
      if (args.json) process.stdout.write(`${JSON.stringify({ trial: n, ...t })}\n`);
      else
        process.stdout.write(
          `trial ${n}: ${(t.share * 100).toFixed(2)}% of the profile, ${t.offeredPps.toFixed(1)} pps: offered ${t.offered}, sent ${t.sent}, received ${t.received}, loss ${t.lossPct.toFixed(3)}% (${t.pass ? "pass" : "fail"}); latency us p50 ${t.p50Us.toFixed(1)} p99 ${t.p99Us.toFixed(1)}\n`,
        );
    },
  });
  if (args.json)
    process.stdout.write(`${JSON.stringify({ [args.search]: r.pps, share: r.share, trials: r.trials.length })}\n`);
  else
    process.stdout.write(
      `${name}: ${r.pps.toFixed(1)} pps (${(r.share * 100).toFixed(2)}% of the profile), loss <= ${args.lossPct}%\n`,
    );
  return 0;
}
