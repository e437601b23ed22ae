// Macro benchmark (issue 24): what a profile costs against pkt-gen's plain template path. Sender ->
// shm pipe -> a C receiver that only counts (bench/c/shmpipe.c), 60-byte frames, N packets; the
// senders, interleaved:
//   plain:   bun run pktgen -f tx (one template, only the length written per packet)
//   ranges:  bun run pktgen -f tx -s/-d ranges (pkt-gen's own varying fields, O(1) checksums)
//   template: bun run pktgen --profile, one stream with no field rules: the template, the 16-byte
//            signature and both checksums per packet, at an unreachable rate
//   profile: the same stream with two field rules (ip.src and udp.sport ranges)
// Metric: the receiver's Mpps; medians of RUNS runs; the aim is profile >= 0.9x plain, read two ways:
// against the profile's own template path (what the field engine costs) and against pkt-gen's.
//   bun bench/gen-profile.ts [RUNS=5] [PACKETS=10000000]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { buildC } from "./lib/cc.ts";
import { say } from "./lib/progress.ts";
import { median } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 5);
const N = String(process.argv[3] ?? 10_000_000);
const repo = `${import.meta.dir}/..`;
const shmpipe = buildC("shmpipe");
const dir = mkdtempSync(`${tmpdir()}/bunmap-genbench-`);
const profile = `${dir}/two.ts`,
  bare = `${dir}/bare.ts`;
const stream = (fields: string) =>
  `export default { streams: [{ name: "s", packet: { ip: { src: "198.18.0.1", dst: "198.18.1.1" }, udp: { sport: 1000, dport: 9 } },
  fields: ${fields}, rate: { pps: 1e9 } }] };\n`;
writeFileSync(
  profile,
  stream(`{ "ip.src": { range: ["198.18.0.1", "198.18.0.100"] }, "udp.sport": { range: [1000, 1063] } }`),
);
writeFileSync(bare, stream("{}"));
const SENDERS = {
  plain: "pktgen -f tx (the template as it is)",
  ranges: "pktgen -f tx with -s/-d ranges",
  template: "pktgen --profile, no field rules (template + signature)",
  profile: "pktgen --profile, two field rules + signature",
} as const;
type Sender = keyof typeof SENDERS;

async function once(s: Sender): Promise<number> {
  const r = `gb${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const rx = Bun.spawn([shmpipe, "rx", r, "0", "{", N], { stdout: "pipe", stderr: "ignore" });
  const reader = rx.stdout.getReader();
  let out = "";
  while (!out.includes("Receiving")) out += new TextDecoder().decode((await reader.read()).value);
  const pg = [process.execPath, `${repo}/src/app/pktgen/main.ts`];
  const cmd: Record<Sender, string[]> = {
    plain: [...pg, "-i", `shm:${r}}0`, "-f", "tx", "-n", N],
    ranges: [
      ...pg,
      "-i",
      `shm:${r}}0`,
      "-f",
      "tx",
      "-n",
      N,
      "-s",
      "198.18.0.1:1000-198.18.0.100:1063",
      "-d",
      "198.18.1.1:9",
    ],
    template: [...pg, "--profile", bare, "-f", "tx", "-i", `shm:${r}}0`, "-n", N],
    profile: [...pg, "--profile", profile, "-f", "tx", "-i", `shm:${r}}0`, "-n", N],
  };
  const tx = Bun.spawn(cmd[s], { stdout: "ignore", stderr: "ignore" });
  await tx.exited;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  const m = /Received (\d+) packets/.exec(out),
    sp = /Speed: ([\d.]+) Mpps/.exec(out);
  if (!m || !sp || m[1] !== N) throw new Error(`${s}: bad receiver output:\n${out}`);
  return Number(sp[1]);
}

try {
  const order = Object.keys(SENDERS) as Sender[];
  const res = Object.fromEntries(order.map((s) => [s, [] as number[]])) as Record<Sender, number[]>;
  for (let i = 0; i < RUNS; i++)
    for (const s of order) {
      res[s].push(await once(s));
      say(`run ${i + 1}/${RUNS} ${s}: ${res[s].at(-1)?.toFixed(2)} Mpps`);
    }
  console.log(`sender -> shm pipe -> C receiver, 60 B, ${N} packets, ${RUNS} runs`);
  console.log("| sender | median Mpps | runs | / plain | / template |");
  console.log("| --- | --- | --- | --- | --- |");
  const ratio = (s: Sender, to: Sender) => (median(res[s]) / median(res[to])).toFixed(2);
  for (const s of order)
    console.log(
      `| ${SENDERS[s]} | ${median(res[s]).toFixed(2)} | ${res[s].map((x) => x.toFixed(2)).join(", ")} | ${ratio(s, "plain")} | ${ratio(s, "template")} |`,
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
