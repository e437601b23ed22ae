// netmap's dedup on the runner (src/nf/dedup.ts, bun run dedup): duplicates within the window and
// the FIFO are dropped and counted, everything else passes; packet by packet, then end to end.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { parseDedupArgs } from "../src/app/dedup/main.ts";
import { Dedup } from "../src/nf/dedup.ts";
import { drop, Packet } from "../src/nf/runner.ts";
import { openPort } from "../src/port/open.ts";
import { receiveFrames, sendFrames } from "./helpers/frames-io.ts";

setDefaultTimeout(60_000);
const repo = `${import.meta.dir}/..`;

/** A 60-byte frame with `tag` in byte 20 (and `len` bytes long). */
const frame = (tag: number, len = 60) => Uint8Array.from({ length: len }, (_, k) => (k === 20 ? tag : k & 255));

describe("Dedup, packet by packet", () => {
  const verdicts = (d: Dedup, seq: [Uint8Array, number][]) =>
    seq.map(([f, t]) => {
      const p = new Packet();
      p.reset(f, 0, f.length, 0, t);
      return d.process(p);
    });
  const OUT = 1,
    DUP = drop(0);

  test("the same bytes within the window are dropped; after it, or different, they pass", () => {
    const d = new Dedup(OUT, { fifo: 10, windowUs: 50 });
    expect(
      verdicts(d, [
        [frame(1), 0],
        [frame(1), 0.01],
        [frame(2), 0.02],
        [frame(1), 0.049],
        [frame(1), 0.2],
      ]),
    ).toEqual([
      OUT,
      DUP,
      OUT,
      DUP,
      OUT, // 0.2 ms after the last forwarded copy (at 0): outside the 50 µs window
    ]);
    // the same first bytes, another length: not a duplicate
    expect(
      verdicts(d, [
        [frame(7), 1],
        [frame(7, 61), 1],
      ]),
    ).toEqual([OUT, OUT]);
  });

  test("only the last FIFO packets are remembered", () => {
    const d = new Dedup(OUT, { fifo: 2, windowUs: 1_000_000 });
    expect(
      verdicts(d, [
        [frame(1), 0],
        [frame(2), 0],
        [frame(3), 0],
        [frame(1), 0],
        [frame(3), 0],
      ]),
    ).toEqual([
      OUT,
      OUT,
      OUT,
      OUT,
      DUP, // 1 fell out of a FIFO of two (2, 3); 3 is still in it
    ]);
  });
});

describe("bun run dedup", () => {
  test("flags: netmap's -i -i -W -F -w, one error line for a bad one", () => {
    expect(parseDedupArgs(["-i", "shm:a{0", "-i", "shm:b{0", "-W", "100", "-F", "64", "-w", "0"])).toMatchObject({
      input: "shm:a{0",
      output: "shm:b{0",
      windowUs: 100,
      fifo: 64,
      wait: 0,
    });
    for (const [argv, msg] of [
      [["-i", "shm:a{0"], "need two ports: -i IN -i OUT"],
      [["-i", "a", "-i", "b", "-W", "0"], "-W 0: expected a number 1..60000000"],
      [["-i", "a", "-i", "b", "-H"], "unknown option -H"],
    ] as [string[], string][])
      expect(() => parseDedupArgs(argv)).toThrow(msg);
  });

  test("end to end over shm pipes: duplicates dropped, the rest delivered byte for byte, counters on SIGINT", async () => {
    const r = `dd${process.pid}`;
    const proc = Bun.spawn(
      [process.execPath, `${repo}/src/app/dedup/main.ts`, "-i", `shm:${r}{0@conf:pipes=2`, "-i", `shm:${r}{1`],
      { stdout: "pipe", stderr: "pipe", timeout: 60_000, killSignal: "SIGKILL" },
    );
    const errReader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
    let err = "";
    // wait for "Ready to go" (after its 2 s link wait, netmap's default)
    while (!err.includes("Ready to go")) {
      const { value, done } = await errReader.read();
      if (done) throw new Error(`dedup exited: ${err}`);
      err += new TextDecoder().decode(value);
    }
    const host = openPort(`shm:${r}}0`),
      sink = openPort(`shm:${r}}1`);
    try {
      const sent = [frame(1), frame(1), frame(2), frame(1), frame(3)]; // within 50 µs of each other: one batch
      sendFrames(host, sent);
      const got: Uint8Array[] = [];
      for (let t = 0; t < 100 && got.length < 3; t++) {
        await Bun.sleep(20);
        got.push(...receiveFrames(sink));
      }
      expect(got).toEqual([frame(1), frame(2), frame(3)]);
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
      const out = await new Response(proc.stdout).text();
      expect(out).toContain(`shm:${r}{0@conf:pipes=2: received 5 packets 300 bytes, sent 0 packets 0 bytes`);
      expect(out).toContain(`shm:${r}{1: received 0 packets 0 bytes, sent 3 packets 180 bytes`);
      expect(out).toContain("nf: dropped 2 duplicate");
    } finally {
      host.close();
      sink.close();
      proc.kill("SIGKILL");
    }
  });
});

const root = process.getuid?.() === 0 && spawnSync("ip", ["-V"], { timeout: 60_000 }).status === 0;
if (!root) console.warn("SKIP dedup with a vanishing interface: needs root (veths in a namespace of the test's own)");

describe.skipIf(!root)("bun run dedup when an interface goes away mid-flow", () => {
  test("its counters, then one line saying what stopped it, exit 1: no stack trace", async () => {
    const ns = `bmdd${process.pid}`;
    const sh = (...a: string[]) => spawnSync(a[0], a.slice(1), { encoding: "utf8", timeout: 60_000 });
    const inNs = (...a: string[]) => sh("ip", "netns", "exec", ns, ...a);
    try {
      expect(sh("ip", "netns", "add", ns).status).toBe(0);
      for (const v of ["v0", "v1"]) {
        expect(sh("ip", "-n", ns, "link", "add", v, "type", "veth", "peer", "name", `${v}p`).status).toBe(0);
        sh("ip", "-n", ns, "link", "set", v, "up");
        sh("ip", "-n", ns, "link", "set", `${v}p`, "up");
      }
      sh("ip", "-n", ns, "addr", "add", "198.18.77.1/24", "dev", "v0p");
      const proc = Bun.spawn(
        [
          "ip",
          "netns",
          "exec",
          ns,
          process.execPath,
          `${repo}/src/app/dedup/main.ts`,
          "-i",
          "packet:v0",
          "-i",
          "packet:v1",
          "-w",
          "0",
        ],
        { stdout: "pipe", stderr: "pipe", timeout: 60_000, killSignal: "SIGKILL" },
      );
      const errReader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
      let err = "";
      while (!err.includes("Ready to go")) {
        const { value, done } = await errReader.read();
        if (done) throw new Error(`dedup exited: ${err}`);
        err += new TextDecoder().decode(value);
      }
      sh("ip", "-n", ns, "link", "del", "v1"); // the output goes away; ARP from v0p keeps coming in
      inNs("ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.77.9");
      const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => -1)]);
      for (;;) {
        const { value, done } = await errReader.read();
        if (done) break;
        err += new TextDecoder().decode(value);
      }
      const out = await new Response(proc.stdout).text();
      expect(code).toBe(1);
      const lines = err.split("\n").filter((l) => l && !/^\d{3}\.\d{6} /.test(l)); // (pkt-gen-style D() lines aside)
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^dedup: stopped: packet:v1: sendto failed: /);
      expect(out).toMatch(/^packet:v0: received [1-9]\d* packets/m); // the counters came first
    } finally {
      sh("ip", "netns", "del", ns);
    }
  });
});
