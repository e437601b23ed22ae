// Macro benchmark: what the NF runner costs against a hand-written loop on the same ports. pktgen tx
// -> a middle process -> pktgen rx, over two shm pipes of one region (so the middle swaps buffers,
// never copies), 60-byte frames. The middle is, in turn: bun run bridge (netmap's bridge: a loop of
// rings_move over the two ports, written by hand), and bun run nf with a one-NF graph that passes
// every packet on (the runner: a function call per packet). Medians of RUNS interleaved runs; the
// receiver's Mpps. Three busy processes share this machine's cores: the ratio is the figure.
//   bun bench/nf-runner.ts [RUNS=5] [PACKETS=20000000]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { say } from "./lib/progress.ts";
import { median } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 5);
const N = String(process.argv[3] ?? 20_000_000);
const repo = `${import.meta.dir}/..`;
const pktgen = `${repo}/src/app/pktgen/main.ts`;
const dir = mkdtempSync(`${tmpdir()}/bunmap-nfbench-`);

type Middle = "bridge" | "nf";
async function once(middle: Middle): Promise<number> {
  const r = `nfb${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const a = `shm:${r}{0@conf:pipes=2`,
    b = `shm:${r}{1`;
  writeFileSync(
    `${dir}/pass.ts`,
    `export default { ports: { a: "${a}", b: "${b}" }, nfs: { pass: { nf: () => 0, to: ["b"] } }, from: { a: "pass" } };\n`,
  );
  const mid = Bun.spawn(
    middle === "bridge"
      ? [process.execPath, `${repo}/src/app/bridge/main.ts`, "-i", a, "-i", b, "-w", "0"]
      : [process.execPath, `${repo}/src/app/nf/main.ts`, `${dir}/pass.ts`],
    { stdout: "pipe", stderr: "ignore" },
  );
  const mr = mid.stdout.getReader();
  let mo = "";
  while (!/zerocopy|running/.test(mo)) {
    const { value, done } = await mr.read();
    if (done) throw new Error(`${middle} exited: ${mo}`);
    mo += new TextDecoder().decode(value);
  }
  const rx = Bun.spawn([process.execPath, pktgen, "-i", `shm:${r}}1`, "-f", "rx", "-n", N], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const reader = rx.stdout.getReader();
  let out = "";
  while (!out.includes("Receiving from")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`receiver exited: ${out}`);
    out += new TextDecoder().decode(value);
  }
  const tx = Bun.spawn([process.execPath, pktgen, "-i", `shm:${r}}0`, "-f", "tx", "-n", N], {
    stdout: "ignore",
    stderr: "ignore",
  });
  await tx.exited;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  await rx.exited;
  mid.kill("SIGINT");
  await mid.exited;
  const m = /Received (\d+) packets/.exec(out);
  const s = /Speed: ([\d.]+) ([KMG]?)pps/.exec(out);
  if (!m || !s || m[1] !== N) throw new Error(`bad receiver output:\n${out}`);
  return Number(s[1]) * ({ "": 1e-6, K: 1e-3, M: 1, G: 1e3 } as Record<string, number>)[s[2]];
}

try {
  const res: Record<Middle, number[]> = { bridge: [], nf: [] };
  for (let i = 0; i < RUNS; i++)
    for (const m of ["bridge", "nf"] as Middle[]) {
      res[m].push(await once(m));
      say(`run ${i + 1}/${RUNS} ${m}: ${res[m].at(-1)?.toFixed(2)} Mpps`);
    }
  console.log(`pktgen tx -> middle -> pktgen rx over shm pipes (buffers swapped), 60 B, ${N} packets, ${RUNS} runs`);
  console.log("| middle | median Mpps | runs | / bridge |");
  console.log("| --- | --- | --- | --- |");
  for (const m of ["bridge", "nf"] as Middle[])
    console.log(
      `| ${m === "bridge" ? "bun run bridge (hand-written loop)" : "bun run nf, one pass-through NF (the runner)"} | ${median(res[m]).toFixed(2)} | ${res[m].map((x) => x.toFixed(2)).join(", ")} | ${(median(res[m]) / median(res.bridge)).toFixed(2)} |`,
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
