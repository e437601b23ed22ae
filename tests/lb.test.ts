// netmap's lb on the runner (src/nf/lb.ts, src/nf/lb-hash.ts, bun run lb): its hash against values
// netmap's own pkt_hash.c computed (tests/fixtures/lb-hash.txt), its flags and pipe names, every
// group getting every packet in the flow's pipe (end to end over shm pipes), and the overflow queues.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseLbArgs, parsePipes, pipeNames } from "../src/app/lb/main.ts";
import { LoadBalancer } from "../src/nf/lb.ts";
import { lbHash } from "../src/nf/lb-hash.ts";
import { NfRunner } from "../src/nf/runner.ts";
import { openPort } from "../src/port/open.ts";
import { receiveFrames as receive, sendFrames as send } from "./helpers/frames-io.ts";

setDefaultTimeout(60_000);
const repo = `${import.meta.dir}/..`;
const fixture = readFileSync(`${import.meta.dir}/fixtures/lb-hash.txt`, "utf8")
  .split("\n")
  .filter((l) => l && !l.startsWith("#"))
  .map((l) => {
    const [hex, h] = l.split(" ");
    return { frame: Uint8Array.from(Buffer.from(hex, "hex")), hash: Number(h) };
  });

describe("lb's hash", () => {
  test("equals netmap's pkt_hdr_hash on every kind of frame it distinguishes", () => {
    expect(fixture.length).toBeGreaterThanOrEqual(20);
    for (const { frame, hash } of fixture) {
      const buf = new Uint8Array(4096); // lb reads past short frames into its buffer: zeros here, as there
      buf.set(frame);
      expect({ frame: Buffer.from(frame).toString("hex"), hash: lbHash(buf, 0) }).toEqual({
        frame: Buffer.from(frame).toString("hex"),
        hash,
      });
    }
  });
});

describe("bun run lb: flags and pipes", () => {
  test("-p [prefix:]npipes, numbering across groups of one name, shm regions sized at their first pipe", () => {
    expect(parsePipes("4")).toEqual({ prefix: null, pipes: 4 });
    expect(parsePipes("x:")).toEqual({ prefix: "x", pipes: 2 });
    expect(parsePipes("shm:out:3")).toEqual({ prefix: "shm:out", pipes: 3 });
    const args = parseLbArgs(["-i", "shm:in{0", "-p", "a:2", "-p", "b:1", "-p", "a:3"]);
    if (args === "help") throw new Error("help");
    expect(pipeNames(args, false)).toEqual([
      ["shm:a{0@conf:pipes=5", "shm:a{1"],
      ["shm:b{0@conf:pipes=1"],
      ["shm:a{2", "shm:a{3", "shm:a{4"],
    ]);
    expect(pipeNames(args, true)[1]).toEqual(["netmap:b{0"]); // lb's own: netmap pipes where there is netmap
    const dflt = parseLbArgs(["-i", "netmap:eth0"]);
    if (dflt === "help") throw new Error("help");
    expect(pipeNames(dflt, true)).toEqual([["netmap:eth0{0", "netmap:eth0{1"]]); // one group of two, the input's name
    for (const [argv, msg] of [
      [["-p", "2"], "missing interface name (-i)"],
      [["-i", "a", "-p", ":2"], "-p :2: missing prefix before ':'"],
      [["-i", "a", "-p", "x:0"], "-p x:0: invalid number of pipes '0' (must be 1..4096)"],
      [["-i", "a", "-s", "5"], "-s: syslog stats are not offered here"],
      [["-i", "a", "-i", "b"], "-i: the input port is given once"],
    ] as [string[], string][])
      expect(() => parseLbArgs(argv)).toThrow(msg);
  });

  test("end to end: each group gets every packet, in the pipe netmap's hash picks; the final count", async () => {
    const t = `lb${process.pid}`;
    const proc = Bun.spawn(
      [
        process.execPath,
        `${repo}/src/app/lb/main.ts`,
        ...["-i", `shm:${t}in{0`, "-p", `shm:${t}a:2`, "-p", `shm:${t}b:3`, "-w", "0"],
      ],
      { stdout: "pipe", stderr: "pipe", timeout: 60_000, killSignal: "SIGKILL" },
    );
    const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
    let err = "";
    while (!err.includes("Wait 0 secs")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`lb exited: ${err}`);
      err += new TextDecoder().decode(value);
    }
    const input = openPort(`shm:${t}in}0`);
    const a = [0, 1].map((k) => openPort(`shm:${t}a}${k}`)),
      b = [0, 1, 2].map((k) => openPort(`shm:${t}b}${k}`));
    try {
      send(
        input,
        fixture.map((f) => f.frame),
      );
      const got = { a: a.map(() => [] as Uint8Array[]), b: b.map(() => [] as Uint8Array[]) };
      for (let n = 0; n < 100 && got.a.flat().length + got.b.flat().length < 2 * fixture.length; n++) {
        await Bun.sleep(20);
        for (const [k, p] of a.entries()) got.a[k].push(...receive(p));
        for (const [k, p] of b.entries()) got.b[k].push(...receive(p));
      }
      // worked out from netmap's hash values: pipe = hash % pipes, the order kept within a pipe
      for (const [g, n] of [
        ["a", 2],
        ["b", 3],
      ] as const)
        for (let k = 0; k < n; k++)
          expect(got[g][k]).toEqual(fixture.filter((f) => f.hash % n === k).map((f) => f.frame));
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
      const out = await new Response(proc.stdout).text();
      expect(out).toContain(
        `${2 * fixture.length} packets forwarded.  0 packets dropped. Total ${2 * fixture.length}\n`,
      );
    } finally {
      for (const p of [input, ...a, ...b]) p.close();
      proc.kill("SIGKILL");
    }
  });
});

describe("overflow queues (-B)", () => {
  test("a full pipe queues in the extra buffers; a dry pool gives back the longest queue's oldest", () => {
    const t = `lbo${process.pid}`;
    let lb: LoadBalancer | null = null;
    const runner = new NfRunner(
      { in: `shm:${t}i{0`, out: `shm:${t}o{0@conf:slots=64` },
      (p) => (lb as LoadBalancer).process(p),
      { tick: () => (lb as LoadBalancer).tick(), backpressure: false },
    );
    lb = new LoadBalancer(runner, [[1]], 10);
    const input = openPort(`shm:${t}i}0`),
      out = openPort(`shm:${t}o}0`);
    try {
      const frames = Array.from({ length: 100 }, (_, k) =>
        fixture[k % fixture.length].frame.map((x, i) => (i === 0 ? k : x)),
      );
      for (let k = 0; k < 100; k += 20) {
        send(input, frames.slice(k, k + 20));
        runner.round();
      }
      // 63 fit the ring; then 10 queue; the 74th finds the pool dry: the 10 queued are dropped (lb's
      // revoke), and so on every 10: 30 dropped, 94..100 queued
      expect(lb.pipes[0]).toMatchObject({ packets: 63, drops: 30 });
      expect(lb.queued(0)).toBe(7);
      const first = receive(out);
      runner.round(); // room again: the queue drains
      const rest = receive(out);
      expect([...first, ...rest]).toEqual([...frames.slice(0, 63), ...frames.slice(93, 100)]);
      expect(lb.pipes[0].packets).toBe(70);
    } finally {
      runner.close();
      input.close();
      out.close();
    }
  });
});
