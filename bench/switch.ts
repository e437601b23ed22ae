// Switch forwarding rate between shm ports, 1 and 2 workers (ring w of every port per worker),
// 60-byte frames, learned unicast (host i -> host i+1). Each worker thread also drives its hosts'
// rings with pkt-gen's cheapest loops, so the rate is per core, switch included.
//   bun bench/switch.ts [RUNS=3] [PORTS=4] [MS=2000]   (full: 5)

import { Fdb } from "../src/packet/fdb.ts";
import { say } from "./lib/progress.ts";
import { median } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 3),
  PORTS = Number(process.argv[3] ?? 4),
  MS = Number(process.argv[4] ?? 2000);

const anomalies = { flooded: 0, dropped: 0 };
async function once(workers: number, run: number): Promise<number> {
  const name = `swb${process.pid}w${workers}r${run}`;
  const fdb = new Fdb(16);
  const res = await Promise.all(
    Array.from(
      { length: workers },
      (_, w) =>
        new Promise<number>((resolve, reject) => {
          const wk = new Worker(new URL("./switch-worker.ts", import.meta.url).href);
          wk.onmessage = (e) => {
            anomalies.flooded += e.data.flooded;
            anomalies.dropped += e.data.dropped;
            resolve(e.data.mpps);
            wk.terminate();
          };
          wk.onerror = (e) => reject(new Error((e as ErrorEvent).message));
          wk.postMessage({ name, nports: PORTS, w, workers, ms: MS, fdb: fdb.sab });
        }),
    ),
  );
  return res.reduce((a, b) => a + b, 0);
}

const rows: [number, number[]][] = [
  [1, []],
  [2, []],
];
for (let i = 0; i < RUNS; i++)
  for (const [w, v] of rows) {
    v.push(await once(w, i));
    say(`run ${i + 1}/${RUNS}: ${w} worker(s): ${v.at(-1)!.toFixed(1)} Mpps`);
  }
console.log(
  `switch, ${PORTS} shm ports, 60 B, learned unicast, ${MS} ms per run, ${RUNS} runs, interleaved; ${new Date().toISOString()}`,
);
console.log("| workers | median Mpps forwarded | runs |");
console.log("| --- | --- | --- |");
for (const [w, v] of rows) console.log(`| ${w} | ${median(v).toFixed(1)} | ${v.map((x) => x.toFixed(1)).join(", ")} |`);
console.log(`(all runs: ${anomalies.flooded} packets flooded while learning, ${anomalies.dropped} dropped)`);
