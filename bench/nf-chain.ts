// Macro benchmark (issue 23): a chain of three NFs, firewall -> lb -> counting sinks, fed by pktgen
// over an shm pipe (60-byte UDP frames, 64 flows to 198.18.1.1:80, all passing the firewall), against
// the same chain in C over the same shm layout (bench/c/nfchain.c), in two shapes:
//   one: the chain in one thread (bunmap: bun run nf, the graph in one Worker; C: one process)
//   two: fw and lb in one process, the sinks in another, joined by shm pipes of the input's region
//        (bunmap: the same graph split, bun run nf --processes; C: nfchain fwlb + nfchain sink)
// and the feeder's own ceiling (pktgen -> a C receiver that only counts). The chains hold input back
// when full, so the sender's rate is the chain's: the metric is pktgen's Mpps, every packet checked
// to reach a sink. Medians of RUNS interleaved runs. This machine has 2 cores: shape two runs three
// busy processes on them.
//   bun bench/nf-chain.ts [RUNS=5] [PACKETS=20000000]
import { buildC } from "./lib/cc.ts";
import { say } from "./lib/progress.ts";
import { median } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 5);
const N = String(process.argv[3] ?? 20_000_000);
const repo = `${import.meta.dir}/..`;
const nfchain = buildC("nfchain"),
  shmpipe = buildC("shmpipe");
const FLOWS = ["-s", "198.18.0.1:1234-198.18.0.1:1297", "-d", "198.18.1.1:80"];

const CASES = {
  "ts-one": "bunmap: bun run nf, the chain in one Worker",
  "c-one": "C: the chain in one process",
  "ts-two": "bunmap: bun run nf --processes, fw+lb / sinks",
  "c-two": "C: fw+lb / sinks, two processes",
  feeder: "pktgen -> C receiver (the feeder's ceiling)",
} as const;
type Case = keyof typeof CASES;

async function waitFor(p: Bun.Subprocess<"ignore", "pipe", "ignore">, re: RegExp): Promise<() => Promise<string>> {
  const reader = p.stdout.getReader();
  let out = "";
  while (!re.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`exited before ${re}: ${out}`);
    out += new TextDecoder().decode(value);
  }
  return async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return out;
      out += new TextDecoder().decode(value);
    }
  };
}

async function once(c: Case): Promise<number> {
  const r = `chain${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const env = { ...process.env, CHAIN_REGION: r, CHAIN_SPLIT: c === "ts-two" ? "1" : "0" };
  const spawn = (cmd: string[]) => Bun.spawn(cmd, { stdout: "pipe", stderr: "ignore", env });
  const chain: { p: Bun.Subprocess<"ignore", "pipe", "ignore">; rest: () => Promise<string> }[] = [];
  const start = async (cmd: string[], re: RegExp) => {
    const p = spawn(cmd);
    chain.push({ p, rest: await waitFor(p, re) });
  };
  if (c === "ts-one" || c === "ts-two")
    await start(
      [process.execPath, `${repo}/src/app/nf/main.ts`, `${repo}/bench/lib/chain-graph.ts`, "--stats", "json"].concat(
        c === "ts-two" ? ["--processes"] : [],
      ),
      /running/,
    );
  else if (c === "c-one") await start([nfchain, "one", r, N], /running/);
  else if (c === "c-two") {
    await start([nfchain, "fwlb", r, N], /running/);
    await start([nfchain, "sink", r, N], /running/);
  } else await start([shmpipe, "rx", r, "0", "{", N], /Receiving/);
  const tx = Bun.spawn(
    [process.execPath, `${repo}/src/app/pktgen/main.ts`, "-i", `shm:${r}}0`, "-f", "tx", "-n", N, ...FLOWS],
    {
      stdout: "pipe",
      stderr: "ignore",
    },
  );
  const txOut = await new Response(tx.stdout).text();
  await tx.exited;
  if (c.startsWith("ts")) {
    await Bun.sleep(300); // what is in flight reaches the sinks
    chain[0].p.kill("SIGINT");
  }
  const outs = await Promise.all(chain.map((x) => x.rest()));
  await Promise.all(chain.map((x) => x.p.exited));
  // every packet sent reached a sink
  let sunk = 0;
  if (c.startsWith("ts"))
    for (const line of outs[0].split("\n")) {
      const j = line.startsWith("{") ? JSON.parse(line) : null;
      if (j?.nf === "sink0" || j?.nf === "sink1") sunk += j.packets;
    }
  else {
    const last = outs.at(-1) ?? "";
    sunk = Number(/Received (\d+) packets/.exec(last)?.[1] ?? -1);
  }
  if (sunk !== Number(N)) throw new Error(`${c}: ${sunk} of ${N} packets reached a sink:\n${outs.join("\n")}`);
  const s = /Speed: ([\d.]+) ([KMG]?)pps/.exec(txOut);
  if (!s) throw new Error(`bad sender output:\n${txOut}`);
  return Number(s[1]) * ({ "": 1e-6, K: 1e-3, M: 1, G: 1e3 } as Record<string, number>)[s[2]];
}

const order = (process.env.CASES?.split(",") ?? Object.keys(CASES)) as Case[];
const res = Object.fromEntries(order.map((c) => [c, [] as number[]])) as Record<Case, number[]>;
for (let i = 0; i < RUNS; i++)
  for (const c of order) {
    res[c].push(await once(c));
    say(`run ${i + 1}/${RUNS} ${c}: ${res[c].at(-1)?.toFixed(2)} Mpps`);
  }
console.log(
  `pktgen (64 UDP flows, 60 B) -> firewall -> lb -> 2 counting sinks over shm pipes, ${N} packets, ${RUNS} runs`,
);
console.log("| chain | median Mpps | runs | / C, same shape |");
console.log("| --- | --- | --- | --- |");
const peer: Record<Case, Case> = {
  "ts-one": "c-one",
  "c-one": "c-one",
  "ts-two": "c-two",
  "c-two": "c-two",
  feeder: "feeder",
};
for (const c of order)
  console.log(
    `| ${CASES[c]} | ${median(res[c]).toFixed(2)} | ${res[c].map((x) => x.toFixed(2)).join(", ")} | ${(median(res[c]) / median(res[peer[c]] ?? [Number.NaN])).toFixed(2)} |`,
  );
