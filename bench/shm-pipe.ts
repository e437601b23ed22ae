// Macro benchmark: pktgen tx -> rx over a shm pipe between two processes, against a C program
// running the same ring protocol (bench/c/shmpipe.c) in the same run. Median of RUNS runs each,
// interleaved so machine noise hits both alike. Metric: the receiver's Mpps.
//   bun bench/shm-pipe.ts [RUNS=3] [PACKETS=20000000]   (default: about a minute; full: 5 50000000;
//   steady state: 5 500000000 — shorter runs at 200-400 Mpps last about as long as the JIT's warm-up)
import { buildC } from "./lib/cc.ts";
import { say } from "./lib/progress.ts";
import { median } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 3);
const N = String(process.argv[3] ?? 20_000_000);
const here = import.meta.dir;
const cbin = buildC("shmpipe");
const pktgen = `${here}/../src/app/pktgen/main.ts`;

type Side = "bunmap" | "c";
const cmd = (side: Side, dir: "tx" | "rx", name: string, extra: string[]): string[] =>
  side === "c"
    ? [cbin, dir, name, "0", dir === "rx" ? "{" : "}", N]
    : [
        process.execPath,
        pktgen,
        "-i",
        `shm:${name}${dir === "rx" ? "{" : "}"}0`,
        "-f",
        dir === "rx" ? (extra.length ? "rxseq" : "rx") : extra.length ? "txseq" : "tx",
        "-n",
        N,
        ...extra,
      ];

async function once(tx: Side, rx: Side, extra: string[] = []): Promise<number> {
  const name = `bench${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const r = Bun.spawn(cmd(rx, "rx", name, extra), { stdout: "pipe", stderr: "ignore" });
  const reader = r.stdout.getReader();
  let out = "";
  while (!out.includes("Receiving from")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`receiver exited: ${out}`);
    out += new TextDecoder().decode(value);
  }
  const t = Bun.spawn(cmd(tx, "tx", name, extra), { stdout: "pipe", stderr: "ignore" });
  await t.exited;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  await r.exited;
  const m = /Received (\d+) packets .* in ([\d.]+) seconds/.exec(out);
  const s = /Speed: ([\d.]+) ([KMG]?)pps/.exec(out);
  if (!m || !s || m[1] !== N) throw new Error(`bad receiver output:\n${out}`);
  return Number(s[1]) * ({ "": 1e-6, K: 1e-3, M: 1, G: 1e3 } as Record<string, number>)[s[2]];
}

const pairs: [string, Side, Side, string[]][] = [
  ["bunmap tx -> bunmap rx", "bunmap", "bunmap", []],
  ["C tx -> C rx", "c", "c", []],
  ["C tx -> bunmap rx", "c", "bunmap", []],
  ["bunmap tx -> C rx", "bunmap", "c", []],
  [
    "bunmap txseq -> rxseq, 64..1500 B, src range",
    "bunmap",
    "bunmap",
    ["-l", "1500", "-l", "64", "-s", "198.18.0.1:1000-198.18.0.200:1100"],
  ],
];
const results = new Map<string, number[]>(pairs.map(([k]) => [k, []]));
for (let i = 0; i < RUNS; i++) {
  for (const [label, tx, rx, extra] of pairs) {
    const v = await once(tx, rx, extra);
    say(`run ${i + 1}/${RUNS}: ${label}: ${v.toFixed(1)} Mpps`);
    results.get(label)!.push(v);
  }
}
const cMed = median(results.get("C tx -> C rx")!);
console.log(
  `shm pipe, ${N} packets of 60 B (except where noted), ${RUNS} runs, receiver Mpps; ${new Date().toISOString()}`,
);
console.log("| pair | median Mpps | runs | vs C->C |");
console.log("| --- | --- | --- | --- |");
for (const [label] of pairs) {
  const v = results.get(label)!;
  console.log(
    `| ${label} | ${median(v).toFixed(1)} | ${v.map((x) => x.toFixed(1)).join(", ")} | ${(median(v) / cMed).toFixed(2)} |`,
  );
}
