// bun run pktgen: netmap pkt-gen on bunmap ports. The main thread parses flags, starts one Worker
// per thread, prints the periodic rate line and the final summary; workers run the datapath.

import { existsSync } from "node:fs";
import { pktgenFamilies } from "../../metrics/families.ts";
import type { ListenAddr } from "../../metrics/listen.ts";
import { readerGone } from "../../os/stdio.ts";
import { PortError, parsePortName } from "../../port/open.ts";
import { type MetricsFlag, metricsAddr, startMetrics, takeMetricsFlag } from "../metrics-flag.ts";
import { D, PpsWindow, rateLine, txOutput } from "../report.ts";
import { type Config, isReceiver, isSender, OPT, parseArgs, USAGE, UsageError } from "./args.ts";
import { allCounters, C, CTL, makeShared, STRIDE } from "./ctx.ts";
import type { FromThread, ThreadInfo, ToThread } from "./messages.ts";
import { threadPortName, withSubsystem } from "./portname.ts";
import { profileMain } from "./profile.ts";

function fail(msg: string): never {
  process.stderr.write(`pktgen: ${msg}\n`);
  process.exit(1);
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--profile")) {
    // the scripted generator: every error is one line (a bad profile names its stream and the fix)
    try {
      return await profileMain(argv);
    } catch (e) {
      fail((e as Error).message.split("\n")[0]);
    }
  }
  let cfg: Config;
  // --metrics HOST:PORT [--metrics-public] beside pkt-gen's own flags (which go to its parser as they are)
  const metrics: MetricsFlag = { raw: "", public: false };
  let addr: ListenAddr | null = null;
  try {
    const own: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const used = takeMetricsFlag(argv, i, metrics);
      if (used) i += used - 1;
      else own.push(argv[i]);
    }
    addr = metricsAddr(metrics);
    const r = parseArgs(own);
    if (r === "help") {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    cfg = r;
    cfg.ifname = withSubsystem(cfg.ifname, existsSync("/dev/netmap"), (m) => process.stderr.write(`pktgen: ${m}\n`));
    if (cfg.threads > 1 && cfg.npackets && cfg.npackets < cfg.threads)
      throw new UsageError(`-n ${cfg.npackets} is fewer packets than -p ${cfg.threads} threads`);
    parsePortName(threadPortName(cfg, 0)); // a bad name fails here, before any thread starts
  } catch (e) {
    if (e instanceof UsageError || e instanceof PortError)
      fail(`${e.message}${e instanceof UsageError ? " (bun run pktgen -h for help)" : ""}`);
    fail((e as Error).message);
  }
  if (cfg.burst !== 0 && !argv.some((a) => a.startsWith("-b")))
    D("main", 2946, `using default burst size: ${cfg.burst}`);
  const ncpu = navigator.hardwareConcurrency;
  if (cfg.cpus > ncpu) fail(`${cfg.cpus} cpus is too high, have only ${ncpu} cpus`);
  if (cfg.cpus === 0) cfg.cpus = ncpu;
  D("main", 2954, `running on ${cfg.cpus} cpus (have ${ncpu})`);

  const sab = makeShared(cfg.threads);
  // --metrics: the threads' counters as they run (a port that cannot be had stops here, before any thread)
  const live = allCounters(sab, cfg.threads);
  let web: { stop(): Promise<void> } | null = null;
  try {
    web = startMetrics(
      addr,
      {
        sources: [
          () =>
            pktgenFamilies(
              cfg.func,
              Array.from({ length: cfg.threads }, (_, i) => ({
                packets: live[i * STRIDE + C.pkts],
                bytes: live[i * STRIDE + C.bytes],
                missing: live[i * STRIDE + C.missing],
                outOfOrder: live[i * STRIDE + C.ooo],
              })),
            ),
        ],
      },
      "pktgen",
    );
  } catch (e) {
    fail((e as Error).message);
  }
  // signals from the start: a ^C while the threads open their ports still lets them close (and a
  // shm region's creator remove its file)
  const ctl = new Int32Array(sab, 0, 16);
  let interrupts = 0;
  const onSignal = (sig: string) => () => {
    if (++interrupts > 1) process.exit(130);
    D("sigint_h", 552, sig === "SIGINT" ? "received control-C on thread 0x0" : `received ${sig}`);
    Atomics.store(ctl, CTL.cancel, 1); // threads stop, the final report is still printed
  };
  process.on("SIGINT", onSignal("SIGINT"));
  process.on("SIGTERM", onSignal("SIGTERM")); // docker stop, systemd
  // the reader of our output went away (`| head`): stop as pkt-gen does on SIGPIPE, quietly
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") return;
    interrupts++;
    Atomics.store(ctl, CTL.cancel, 1);
  });
  const workers: Worker[] = [];
  const infos: ThreadInfo[] = [];
  const doneMsgs: { error?: string }[] = [];
  const started = cfg.threads;
  try {
    await Promise.all(
      Array.from(
        { length: started },
        (_, idx) =>
          new Promise<void>((resolve, reject) => {
            const w = new Worker(new URL("./thread.ts", import.meta.url).href);
            workers.push(w);
            w.onmessage = (ev: MessageEvent<FromThread>) => {
              const m = ev.data;
              if (m.t === "error") reject(new Error(m.error));
              else if (m.t === "ready") {
                infos[idx] = m.info;
                resolve();
              } else doneMsgs[idx] = m;
            };
            w.onerror = (ev) => reject(new Error((ev as ErrorEvent).message ?? "worker failed"));
            w.postMessage({ t: "init", cfg, idx, sab } satisfies ToThread);
          }),
      ),
    );
  } catch (e) {
    for (const w of workers) w.terminate();
    fail((e as Error).message);
  }

  const first = infos[0];
  const queues = first.queues;
  if (cfg.verbose) {
    D("main", 3118, `mapped ${first.memsize >> 10}KB region`);
    for (const [dir, id, off, slots] of first.rings)
      D("main", 3123, `   ${dir}${id} at 0x${off.toString(16)} slots ${slots}`);
  }
  const verb = isSender(cfg.func) ? "Sending on" : isReceiver(cfg.func) ? "Receiving from" : "Working on";
  process.stdout.write(`${verb} ${cfg.ifname}: ${queues} queues, ${cfg.threads} threads and ${cfg.cpus} cpus.\n`);
  if (isSender(cfg.func)) {
    const srcMac = cfg.srcMac ?? first.mac;
    process.stdout.write(`${cfg.srcSpec} -> ${cfg.dstSpec} (${srcMac} -> ${cfg.dstMac})\n`);
  }
  if (cfg.options) {
    const o = cfg.options;
    D(
      "main",
      3150,
      `--- SPECIAL OPTIONS:${o & OPT.PREFETCH ? " prefetch" : ""}${o & OPT.ACCESS ? " access" : ""}${o & OPT.MEMCPY ? " memcpy" : ""}${o & OPT.COPY ? " copy" : ""}${o & OPT.RUBBISH ? " rubbish " : ""}`,
    );
  }
  if (isSender(cfg.func)) {
    const ns = cfg.rate ? Math.floor((1e9 * cfg.burst) / cfg.rate) : 0;
    D(
      "main",
      3181,
      `Sending ${cfg.burst} packets every  ${Math.floor(ns / 1e9)}.${String(ns % 1e9).padStart(9, "0")} s`,
    );
  }

  const backend = parsePortName(cfg.ifname).backend;
  const waitLink = cfg.waitLink ?? (backend === "vale" || backend === "shm" || backend === "pcap" ? 0 : 2); // no PHY to wait for
  D("start_threads", 2790, `Wait ${waitLink} secs for phy reset`);
  if (waitLink) await Bun.sleep(waitLink * 1000);
  D("start_threads", 2792, "Ready...");
  for (const w of workers) w.postMessage({ t: "go" } satisfies ToThread);

  // main_thread(): periodic report until every thread is done
  const ctr = allCounters(sab, cfg.threads);

  const win = new PpsWindow();
  let prev = { pkts: 0, bytes: 0, events: 0, t: performance.now() };
  for (;;) {
    const target = prev.t + cfg.reportMs;
    while (performance.now() < target && Atomics.load(ctl, CTL.done) < started)
      await Bun.sleep(Math.min(20, Math.max(1, target - performance.now())));
    const finished = Atomics.load(ctl, CTL.done) >= started;
    if (!finished && readerGone()) Atomics.store(ctl, CTL.cancel, 1); // `| head` is done: stop, as on SIGPIPE
    const t = performance.now();
    const usec = (t - prev.t) * 1000;
    if (usec < 10000 && !finished) continue;
    let pkts = 0,
      bytes = 0,
      events = 0,
      minSpace = 0;
    for (let i = 0; i < cfg.threads; i++) {
      const b = i * STRIDE;
      pkts += ctr[b + C.pkts];
      bytes += ctr[b + C.bytes];
      events += ctr[b + C.events];
      minSpace += ctr[b + C.minSpace];
      ctr[b + C.minSpace] = 99999;
    }
    if (usec >= 10000) {
      const dp = pkts - prev.pkts;
      const stats =
        cfg.options & OPT.PPS_STATS ? win.push(Math.floor((dp * 1e6 + usec / 2) / usec), cfg.normalize) : "";
      D(
        "main_thread",
        2704,
        rateLine(dp, bytes - prev.bytes, events - prev.events, usec, minSpace, cfg.normalize, cfg.framing, stats),
      );
    }
    prev = { pkts, bytes, events, t };
    if (finished) break;
  }
  // let the workers' final messages arrive, then collect
  for (let i = 0; i < 100 && doneMsgs.filter(Boolean).length < started; i++) await Bun.sleep(5);
  let tic = 0,
    toc = 0,
    pkts = 0,
    bytes = 0,
    events = 0,
    gaps = 0,
    missing = 0,
    ooo = 0,
    kdrops = 0;
  let errors = 0;
  for (let i = 0; i < cfg.threads; i++) {
    const b = i * STRIDE;
    pkts += ctr[b + C.pkts];
    bytes += ctr[b + C.bytes];
    events += ctr[b + C.events];
    gaps += ctr[b + C.gaps];
    missing += ctr[b + C.missing];
    ooo += ctr[b + C.ooo];
    kdrops += ctr[b + C.kernelDrops];
    if (ctr[b + C.tic] > tic) tic = ctr[b + C.tic];
    if (ctr[b + C.toc] > toc) toc = ctr[b + C.toc];
    if (!ctr[b + C.completed]) {
      errors++;
      D(
        "main_thread",
        2780,
        `ouch, thread ${i} exited with error${doneMsgs[i]?.error ? `: ${doneMsgs[i].error}` : ""}`,
      );
    }
  }
  for (const w of workers) w.terminate();
  const delta = Math.max(0, Math.floor((toc - tic) * 1000) / 1e6); // µs resolution, as timersub on timevals
  if (isSender(cfg.func))
    process.stdout.write(txOutput({ pkts, bytes, events }, delta, "Sent", cfg.normalize, cfg.framing));
  else if (isReceiver(cfg.func))
    process.stdout.write(txOutput({ pkts, bytes, events }, delta, "Received", cfg.normalize, cfg.framing));
  if (cfg.func === "rxseq")
    process.stdout.write(`Sequence errors: ${gaps} gaps (${missing} packets missing), ${ooo} out of order\n`);
  if (isReceiver(cfg.func) || cfg.func === "ping" || cfg.func === "pong")
    process.stdout.write(`Kernel drops: ${kdrops} packets (receive ring full)\n`);
  await web?.stop();
  if (errors) {
    const why = doneMsgs.find((m) => m?.error)?.error;
    if (why) process.stderr.write(`pktgen: ${why}\n`);
    return 1;
  }
  return 0;
}

process.exit(await main(process.argv.slice(2)));
