// Macro benchmark (issue 24): how closely a profile keeps its rate, second by second. One stream,
// 60-byte frames, over an shm pipe to a C receiver that only counts (bench/c/shmpipe.c). First the
// port's maximum for this profile (an unreachable rate for 2 s: what it achieved), then 10%, 50% and
// 80% of that for SECONDS each, constant pacing; the generator counts what left in each whole
// second; the figure is the worst second's distance from the target (aim: within 1%), and the
// packets' lateness against the schedule.
//   bun bench/gen-rate.ts [RUNS=3] [SECONDS=5]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { shmPath } from "../src/port/shm-region.ts";
import { buildC } from "./lib/cc.ts";
import { say } from "./lib/progress.ts";
import { median } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 3);
const SECONDS = Number(process.argv[3] ?? 5);
const repo = `${import.meta.dir}/..`;
const shmpipe = buildC("shmpipe");
const dir = mkdtempSync(`${tmpdir()}/bunmap-genrate-`);

async function run(pps: number, seconds: number, count = 0): Promise<{ pps: number; worst: number; p99: number }> {
  const file = `${dir}/p${pps}.ts`;
  writeFileSync(
    file,
    `export default { streams: [{ name: "s", packet: { ip: { src: "198.18.0.1", dst: "198.18.1.1" }, udp: { dport: 9 } }, rate: { pps: ${pps} } }] };\n`,
  );
  const r = `gr${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const rx = Bun.spawn([shmpipe, "rx", r, "0", "{", String(2 ** 40)], { stdout: "pipe", stderr: "ignore" });
  const reader = rx.stdout.getReader();
  let out = "";
  while (!out.includes("Receiving")) out += new TextDecoder().decode((await reader.read()).value);
  const g = Bun.spawn(
    [
      process.execPath,
      `${repo}/src/app/pktgen/main.ts`,
      "--profile",
      file,
      "-f",
      "tx",
      "-i",
      `shm:${r}}0`,
      ...(count ? ["-n", String(count)] : ["--seconds", String(seconds)]),
      "--json",
    ],
    { stdout: "pipe", stderr: "ignore" },
  );
  const res = JSON.parse((await new Response(g.stdout).text()).trim().split("\n").at(-1) as string);
  await g.exited;
  rx.kill(); // the counting receiver runs until told: its region is left behind, so remove it
  await rx.exited;
  rmSync(shmPath(r), { force: true });
  return { pps: res.pps, worst: res.worstSecondErrorPct, p99: Number(res.txLatenessUs.p99) };
}

try {
  const max = (await run(1e9, 0, 5_000_000)).pps; // 5 M packets as fast as they go
  say(`the port's maximum for this profile: ${(max / 1e6).toFixed(2)} Mpps`);
  const shares = [0.1, 0.5, 0.8];
  const worst: Record<number, number[]> = {},
    p99: Record<number, number[]> = {},
    got: Record<number, number[]> = {};
  for (let i = 0; i < RUNS; i++)
    for (const s of shares) {
      const x = await run(Math.round(max * s), SECONDS);
      (worst[s] ??= []).push(x.worst);
      (p99[s] ??= []).push(x.p99);
      (got[s] ??= []).push(x.pps);
      say(
        `run ${i + 1}/${RUNS} ${s * 100}%: ${x.pps.toFixed(0)} pps, worst second ${x.worst.toFixed(3)}% off, lateness p99 ${x.p99} us`,
      );
    }
  console.log(
    `one stream, 60 B, shm pipe -> C receiver; the maximum ${(max / 1e6).toFixed(2)} Mpps; ${SECONDS} s runs, ${RUNS} runs`,
  );
  console.log(
    "| target | achieved pps (median) | worst second off target, % (runs) | lateness p99, us (median) | aim |",
  );
  console.log("| --- | --- | --- | --- | --- |");
  for (const s of shares)
    console.log(
      `| ${s * 100}% (${Math.round(max * s)} pps) | ${median(got[s]).toFixed(0)} | ${worst[s].map((x) => x.toFixed(3)).join(", ")} | ${median(p99[s]).toFixed(1)} | within 1% |`,
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
