// Run inside the netmap guest (tests/netmap/lb-compare.job.sh): netmap's own lb and bunmap's, each in
// turn on the same input (a netmap pipe), the same 222 frames (the hash fixture's kinds, then 200
// UDP flows), into netmap pipes lbo}0..2 read here. Both must put the same frames in the same pipes,
// in the same order, and that must be hash % 3 (the fixture's values come from netmap's pkt_hash.c).
// Prints "lb-compare: OK" and exits 0 only if every check holds.
import { readFileSync } from "node:fs";
import { lbHash } from "../../src/nf/lb-hash.ts";
import { openPort } from "../../src/port/open.ts";

const fail = (m: string): never => {
  console.error(`lb-compare: FAIL: ${m}`);
  process.exit(1);
};
const repo = `${import.meta.dir}/../..`;
const PIPES = 3;

const frames: Uint8Array[] = readFileSync(`${repo}/tests/fixtures/lb-hash.txt`, "utf8")
  .split("\n")
  .filter((l) => l && !l.startsWith("#"))
  .map((l) => Uint8Array.from(Buffer.from(l.split(" ")[0], "hex")));
for (let k = 0; k < 200; k++) {
  const f = new Uint8Array(64);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 50, 0, 0, 0, 0, 64, 17, 0, 0]);
  f.set([198, 18, k & 3, 1 + (k >> 2), 198, 18, 1, 2], 26); // 198.18.x.y -> 198.18.1.2
  f.set([0x10 + (k & 7), k & 255, 0, 53], 34); // ports
  f[63] = k;
  frames.push(f);
}

async function run(which: "netmap" | "bunmap"): Promise<string[][]> {
  const args = ["-i", "netmap:lbin}0", "-p", "lbo:3", "-w", "1"];
  const cmd =
    which === "netmap"
      ? [`${process.env.NETMAP_APPS}/lb/lb`, ...args]
      : [process.execPath, `${repo}/src/app/lb/main.ts`, ...args];
  const lb = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  // lb opens the input and the pipes' master ends, then waits a second: open ours after it is up
  await Bun.sleep(which === "netmap" ? 2000 : 20_000);
  if (lb.exitCode !== null) fail(`${which} lb exited: ${await new Response(lb.stderr).text()}`);
  const input = openPort("netmap:lbin{0");
  const pipes = Array.from({ length: PIPES }, (_, k) => openPort(`netmap:lbo}${k}`));
  const got: string[][] = pipes.map(() => []);
  try {
    await Bun.sleep(1500);
    const tx = input.txRings[0];
    for (let k = 0; k < frames.length; k++) {
      while (tx.empty()) {
        input.txsync();
        await Bun.sleep(10);
      }
      tx.u8.set(frames[k], tx.buf(tx.head));
      tx.setLenFlags(tx.head, frames[k].length, 0);
      tx.advance(tx.next(tx.head));
      if (k % 32 === 31) input.txsync();
    }
    input.txsync();
    const deadline = Date.now() + 60_000;
    while (got.flat().length < frames.length && Date.now() < deadline) {
      await Bun.sleep(50);
      for (const [k, p] of pipes.entries()) {
        p.rxsync();
        const rx = p.rxRings[0];
        while (!rx.empty()) {
          got[k].push(Buffer.from(rx.packet(rx.head)).toString("hex"));
          rx.advance(rx.next(rx.head));
        }
        p.rxsync();
      }
    }
  } finally {
    for (const p of [input, ...pipes]) p.close();
    lb.kill("SIGINT");
    await lb.exited;
  }
  console.log(`lb-compare: ${which} lb: ${got.map((g) => g.length).join(" + ")} frames`);
  return got;
}

const theirs = await run("netmap");
const ours = await run("bunmap");
const want: string[][] = Array.from({ length: PIPES }, () => []);
for (const f of frames) {
  const buf = new Uint8Array(4096);
  buf.set(f);
  want[lbHash(buf, 0) % PIPES].push(Buffer.from(f).toString("hex"));
}
for (let k = 0; k < PIPES; k++) {
  if (JSON.stringify(theirs[k]) !== JSON.stringify(want[k]))
    fail(`netmap's lb, pipe ${k}: ${theirs[k].length} frames, not the ${want[k].length} its hash picks`);
  if (JSON.stringify(ours[k]) !== JSON.stringify(theirs[k]))
    fail(`pipe ${k}: bunmap's lb gave ${ours[k].length} frames, netmap's ${theirs[k].length} (or another order)`);
}
console.log(`lb-compare: OK (${frames.length} frames, the same pipes and order as netmap's lb)`);
process.exit(0);
