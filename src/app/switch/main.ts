// bun run switch -i PORT [-i PORT ...] [-p workers] [-b burst] [--lookup file.ts] [--age s] [-T ms] [-t s]
// A VALE-style learning switch over any ports of any backend; the datapath runs in Workers (ring w
// of every port belongs to worker w), the main thread only reports.
import { parsePortName } from "../../port/open.ts";
import { Fdb } from "./fdb.ts";
import { D, norm } from "../pktgen/report.ts";

import { UsageError, intArg, parseCli } from "../cli.ts";

export interface SwitchArgs { ports: string[]; workers: number; burst: number; lookup: string | null; age: number; reportMs: number; seconds: number }

export const USAGE = `Usage: bun run switch -i PORT [-i PORT ...] [-p workers(1)] [-b burst(512)] [--lookup file.ts] [--age seconds(300)] [-T report_ms(1000)] [-t seconds]
  PORT may hold a range: 'shm:sw{[0-255]' is 256 ports. With -p N every port needs N rings (shm: @conf:rings=N).
  --lookup: a module whose default export is (u8, off, len, srcPort, sw) => port | -1 (broadcast) | -2 (drop).`;

/** Expand one [a-b] range in a port name. */
export function expandPorts(spec: string): string[] {
  const m = /\[(\d+)-(\d+)\]/.exec(spec);
  if (!m) return [spec];
  const a = Number(m[1]), b = Number(m[2]);
  if (b < a || b - a > 4095) throw new UsageError(`${spec}: range [${a}-${b}] must go up, at most 4096 ports`);
  return Array.from({ length: b - a + 1 }, (_, i) => spec.replace(m[0], String(a + i)));
}

export function parseSwitchArgs(argv: string[]): SwitchArgs | "help" {
  const r: SwitchArgs = { ports: [], workers: 1, burst: 512, lookup: null, age: 300, reportMs: 1000, seconds: 0 };
  const num = intArg;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "-h": case "--help": return "help";
      case "-i": if (argv[i + 1] === undefined) throw new UsageError("-i needs a port"); r.ports.push(...expandPorts(argv[++i])); break;
      case "-p": r.workers = num(a, argv[++i], 1, 64); break;
      case "-b": r.burst = num(a, argv[++i], 1, 8192); break;
      case "--age": r.age = num(a, argv[++i], 0, 86400); break;
      case "-T": r.reportMs = num(a, argv[++i], 10, 3_600_000); break;
      case "-t": r.seconds = num(a, argv[++i], 0, 86400); break;
      case "--lookup": if (!argv[i + 1]) throw new UsageError("--lookup needs a file"); r.lookup = argv[++i]; break;
      default: throw new UsageError(`unknown argument '${a}'`);
    }
  }
  if (r.ports.length < 2) throw new UsageError("a switch needs at least two ports (-i PORT -i PORT)");
  if (new Set(r.ports).size !== r.ports.length) throw new UsageError("the same port is given twice");
  for (const p of r.ports) parsePortName(p); // a bad name fails before anything opens
  return r;
}

async function main(): Promise<number> {
  const args = parseCli("switch", USAGE, parseSwitchArgs);
  if (!args) return 0;
  const fdb = new Fdb(16, args.age);
  const ctrSab = new SharedArrayBuffer(16 + args.workers * 32);
  const ctl = new Int32Array(ctrSab, 0, 4);
  const workers: Worker[] = [];
  const closed: Promise<void>[] = [];
  try {
    await Promise.all(Array.from({ length: args.workers }, (_, w) => new Promise<void>((resolve, reject) => {
      const wk = new Worker(new URL("./worker.ts", import.meta.url).href);
      workers.push(wk);
      let done!: () => void;
      closed.push(new Promise<void>((r) => { done = r; }));
      wk.onmessage = (ev) => {
        if (ev.data.ready) resolve();
        if (ev.data.error) { reject(new Error(ev.data.error)); done(); }
        if (ev.data.done) done();
      };
      wk.onerror = (ev) => reject(new Error((ev as ErrorEvent).message));
      wk.postMessage({ specs: args.ports, w, workers: args.workers, burst: args.burst, lookup: args.lookup, age: args.age, fdb: fdb.sab, ctr: ctrSab });
    })));
  } catch (e) {
    Atomics.store(ctl, 0, 1);
    await Promise.race([Promise.all(closed), Bun.sleep(2000)]);
    for (const w of workers) w.terminate();
    process.stderr.write(`switch: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`switch: ${args.ports.length} ports, ${args.workers} worker${args.workers > 1 ? "s" : ""}, lookup ${args.lookup ?? "learning (VALE)"}\n`);
  let stop = false;
  process.on("SIGINT", () => { stop = true; });
  process.on("SIGTERM", () => { stop = true; });
  const ctr = new Float64Array(ctrSab, 16, args.workers * 4);
  const sum = (k: number) => { let s = 0; for (let w = 0; w < args.workers; w++) s += ctr[w * 4 + k]; return s; };
  const end = args.seconds ? performance.now() + args.seconds * 1000 : Infinity;
  let last = performance.now(), pf = 0, pb = 0, pd = 0;
  while (!stop && performance.now() < end) {
    await Bun.sleep(Math.min(50, args.reportMs));
    const now = performance.now();
    if (now - last < args.reportMs) continue;
    const s = (now - last) / 1000, f = sum(0), b = sum(1), d = sum(2);
    D("switch", 1, `${norm((f - pf) / s, true)}pps forwarded ${norm((b - pb) / s, true)}pps flooded ${norm((d - pd) / s, true)}pps dropped, ${fdb.count(Math.floor(Date.now() / 1000))} fdb entries`);
    last = now; pf = f; pb = b; pd = d;
  }
  Atomics.store(ctl, 0, 1);
  await Promise.race([Promise.all(closed), Bun.sleep(3000)]);
  for (const w of workers) w.terminate();
  process.stdout.write(`switch: forwarded ${sum(0)} flooded ${sum(1)} dropped ${sum(2)}\n`);
  return 0;
}

if (import.meta.main) process.exit(await main());

