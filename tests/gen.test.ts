// The generator's receiving side and command: the latency histogram against exact quantiles, the
// per-stream sequence accounting (loss, duplicates, reordering, 32-bit wrap) on sequences worked out
// by hand, and bun run pktgen --profile end to end through a device under test that drops a known
// share of one stream; bad profiles refused with one sentence before anything is sent.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { Histogram } from "../src/gen/histogram.ts";
import { StreamRx } from "../src/gen/receiver.ts";
import { sigSeq, sigStream } from "../src/gen/signature.ts";
import { drop, NfRunner } from "../src/nf/runner.ts";

setDefaultTimeout(60_000);
const repo = `${import.meta.dir}/..`;

describe("the latency histogram", () => {
  test("quantiles within 1/64 of the exact ones, from 1 ns to seconds; min, max and count exact", () => {
    const h = new Histogram();
    const values: number[] = [];
    let x = 1;
    for (let i = 0; i < 20000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648; // a fixed pseudo-random walk over 9 decades
      const v = 1 + (x % 1000) * 10 ** (i % 7);
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    for (const q of [0.01, 0.5, 0.9, 0.99, 0.999]) {
      const exact = values[Math.ceil(q * values.length) - 1];
      expect(Math.abs(h.quantile(q) - exact) / exact).toBeLessThanOrEqual(1 / 64);
    }
    expect([h.count, h.min, h.max]).toEqual([20000, values[0], values[values.length - 1]]);
    const b = h.buckets();
    expect(b.reduce((a, [, n]) => a + n, 0)).toBe(20000);
    for (let i = 1; i < b.length; i++) expect(b[i][0]).toBeGreaterThan(b[i - 1][0]);
    for (const v of [0, 1, 127, 128, 129, 255, 256, 1e6, 3e9, 5e12]) {
      const k = Histogram.bucket(v);
      expect(Histogram.lower(k)).toBeLessThanOrEqual(v);
      expect(v).toBeLessThan(Histogram.lower(k) + Histogram.width(k));
    }
    // record()'s integer path puts each value in the bucket whose bounds hold it, on both sides of 2^31
    for (const v of [128, 129.7, 1000.5, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 1e10]) {
      const one = new Histogram();
      one.record(v);
      const [[lower, n]] = one.buckets();
      const k = one.counts.findIndex((c) => c > 0);
      expect([n, lower <= v, v < lower + Histogram.width(k)]).toEqual([1, true, true]);
    }
  });
});

describe("a stream's sequence accounting", () => {
  test("loss, duplicates and reordering counted as worked out by hand", () => {
    const r = new StreamRx();
    for (const s of [0, 1, 2, 4, 3, 3, 5, 9, 7, 9]) r.take(s, 60, 1000);
    // 0 1 2 4 | 3 late (reordered) | 3 again (duplicate) | 5 9 | 7 late | 9 again (duplicate)
    expect([r.packets, r.duplicates, r.reordered, r.top, r.lost(), r.lost(12)]).toEqual([8, 2, 2, 9, 2, 4]);
  });
  test("sequence numbers wrap at 2^32 without a loss", () => {
    const r = new StreamRx();
    for (let s = 4294967290; s < 4294967296 + 6; s++) r.take(s % 4294967296, 60, 1);
    expect([r.packets, r.duplicates, r.reordered, r.top]).toEqual([12, 0, 0, 4294967296 + 5]);
  });
});

describe("pacing", () => {
  test("never faster than the rate, even where the gap is below a microsecond (1.23 Mpps)", async () => {
    const { compileProfile } = await import("../src/gen/profile.ts");
    const { Generator } = await import("../src/gen/generator.ts");
    const { openPort } = await import("../src/port/open.ts");
    const pps = 1230584,
      n = 200000;
    const streams = compileProfile(
      { streams: [{ name: "s", packet: { ip: { src: "198.18.0.1", dst: "198.18.1.1" }, udp: {} }, rate: { pps } }] },
      2048,
    );
    const tx = openPort(`shm:gp${process.pid}{0`),
      rx = openPort(`shm:gp${process.pid}}0`);
    try {
      const g = new Generator(streams, tx, rx, { count: n, drainMs: 0 });
      await g.run();
      // the last packet is due at (n - 1) / pps s after the first: it cannot have left sooner
      expect(g.tx[0].sent).toBe(n);
      expect(g.endMs - g.startMs).toBeGreaterThanOrEqual(((n - 1) / pps) * 1000);
      expect(g.rx?.streams[0].packets).toBe(n);
    } finally {
      tx.close();
      rx.close();
    }
  });
});

describe("bun run pktgen --profile", () => {
  const write = (dir: string, body: string) => {
    writeFileSync(
      `${dir}/p.ts`,
      `import { list, random, range } from "${repo}/src/index.ts";\nexport default ${body};\n`,
    );
    return `${dir}/p.ts`;
  };
  const pktgen = (args: string[]) =>
    Bun.spawn([process.execPath, `${repo}/src/app/pktgen/main.ts`, ...args], { stdout: "pipe", stderr: "pipe" });

  test("two streams through a device that drops every 10th packet of one: counts, loss and rates as set", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-gen-`);
    const r = `gn${process.pid}`;
    // the device under test: between the generator's tx pipe and its rx pipe, in this process
    const dut = new NfRunner({ a: `shm:${r}{0@conf:pipes=2`, b: `shm:${r}{1` }, (p) => {
      const at = 14 + 20 + 8; // both streams are IPv4/UDP: the signature follows
      return sigStream(p.u8, p.off + at) === 0 && sigSeq(p.u8, p.off + at) % 10 === 3 ? drop(0) : 1 - p.input;
    });
    const running = dut.run({ signals: false });
    try {
      const file = write(
        dir,
        `{ streams: [
          { name: "a", packet: { ip: { src: "198.18.0.1", dst: "198.18.1.1" }, udp: { dport: 9 } }, fields: { "ip.src": range("198.18.0.1", "198.18.0.50") }, rate: { pps: 4000 } },
          { name: "b", packet: { ip: { src: "198.18.0.2", dst: "198.18.1.2" }, udp: { dport: 9 } }, size: 300, fields: { "udp.sport": random(1000, 2000) }, rate: { share: 0.25 } },
        ], rate: { pps: 4000 } }`,
      );
      const t0 = performance.now();
      const p = pktgen([
        "--profile",
        file,
        "-f",
        "tx",
        "-i",
        `shm:${r}}0`,
        "--rx",
        `shm:${r}}1`,
        "-n",
        "2000",
        "--json",
      ]);
      const [out, err] = [await new Response(p.stdout).text(), await new Response(p.stderr).text()];
      expect({
        code: await p.exited,
        err: err
          .split("\n")
          .filter((l) => !l.startsWith("["))
          .join(""),
      }).toEqual({ code: 0, err: "" });
      const elapsed = (performance.now() - t0) / 1000;
      const lines = out
        .trim()
        .split("\n")
        .slice(1)
        .map((l) => JSON.parse(l));
      const [a, b] = lines;
      expect([a.stream, a.sent, a.rx.received, a.rx.lost, a.rx.duplicates, a.rx.reordered]).toEqual([
        "a",
        2000,
        1800,
        200,
        0,
        0,
      ]);
      expect(a.rx.lossPct).toBeCloseTo(10, 6);
      expect([b.stream, b.sent, b.bytes, b.rx.received, b.rx.lost]).toEqual(["b", 2000, 600000, 2000, 0]);
      expect(b.targetPps).toBe(1000); // a quarter of 4000
      // never faster than the rate: b's 2000 packets at 1000/s take at least 2 s
      expect(elapsed).toBeGreaterThan(1.9);
      expect(b.seconds).toBeGreaterThan(1.9);
      expect(a.rx.latencyUs.p50).toBeDefined();
      expect(Number(a.rx.latencyUs.min)).toBeGreaterThanOrEqual(0);
    } finally {
      dut.stop();
      await running;
      dut.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("-p 2: three streams on two threads, each on its own ring; all received, counted per stream", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-gen-`);
    const r = `gt${process.pid}`;
    try {
      const file = write(
        dir,
        `{ streams: ["x", "y", "z"].map((name, i) => ({ name, packet: { ip: { src: "198.18.0.1", dst: \`198.18.1.\${i + 1}\` }, udp: { dport: 9 } }, size: 60 + 10 * i, rate: { pps: 3000 } })) }`,
      );
      const p = pktgen([
        "--profile",
        file,
        "-f",
        "tx",
        "-i",
        `shm:${r}}0@conf:rings=2`,
        "-p",
        "2",
        "--rx",
        `shm:${r}{0`,
        "-n",
        "3000",
        "--json",
      ]);
      const [out, err] = [await new Response(p.stdout).text(), await new Response(p.stderr).text()];
      expect({
        code: await p.exited,
        err: err
          .split("\n")
          .filter((l) => !l.startsWith("["))
          .join(""),
      }).toEqual({ code: 0, err: "" });
      expect(out.split("\n")[0]).toContain("3 streams on");
      expect(out.split("\n")[0]).toContain("(2 threads)");
      const lines = out
        .trim()
        .split("\n")
        .slice(1)
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => [l.stream, l.sent, l.bytes, l.rx.received, l.rx.lost, l.rx.duplicates])).toEqual([
        ["x", 3000, 180000, 3000, 0, 0],
        ["y", 3000, 210000, 3000, 0, 0],
        ["z", 3000, 240000, 3000, 0, 0],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad profiles: one sentence naming the stream and the fix, nothing sent", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-gen-`);
    const r = `gb${process.pid}`;
    try {
      const ok = `packet: { ip: { src: "198.18.0.1", dst: "198.18.1.1" }, udp: {} }`;
      const cases: [string, RegExp][] = [
        ["{ streams: [", /^pktgen: .*p\.ts: .*\(fix the module, or check its path\)$/],
        [
          `{ streams: [{ name: "x", ${ok}, fields: { "udp.spot": range(1, 2) }, rate: { pps: 1 } }] }`,
          /^pktgen: stream 'x': fields: no field 'udp.spot' in this packet/,
        ],
        [
          `{ streams: [{ name: "y", ${ok}, rate: { pps: -5 } }] }`,
          /^pktgen: stream 'y': rate.pps: expected a number above 0, got -5$/,
        ],
        [
          `{ streams: [{ name: "z", ${ok}, rate: { share: 0.5 } }] }`,
          /^pktgen: stream 'z': rate.share needs the profile's total rate/,
        ],
        [
          `{ streams: [{ name: "w", ${ok}, rate: { pps: 10 }, each: () => { throw new Error("boom"); } }] }`,
          /^pktgen: stream 'w': its callback \(each\) threw on a trial packet: boom$/,
        ],
        [
          `{ streams: [{ name: "v", ${ok}, rate: { pps: 10 } }, { name: "v", ${ok}, rate: { pps: 10 } }] }`,
          /^pktgen: stream 'v': the name is taken/,
        ],
        [`{ streams: [] }`, /^pktgen: .*p\.ts: its default export must be \{ streams/],
      ];
      for (const [body, re] of cases) {
        const p = pktgen(["--profile", write(dir, body), "-f", "tx", "-i", `shm:${r}}0`, "-n", "10"]);
        const err = (await new Response(p.stderr).text()).trim();
        expect({ code: await p.exited, lines: err.split("\n").length }).toEqual({ code: 1, lines: 1 });
        expect(err).toMatch(re);
      }
      // nothing reached the pipe: its other end finds it empty
      const { openPort } = await import("../src/port/open.ts");
      const far = openPort(`shm:${r}{0`);
      far.rxsync();
      expect(far.rxRings[0].space()).toBe(0);
      far.close();
      const flags = pktgen([
        "--profile",
        write(dir, `{ streams: [{ name: "a", ${ok}, rate: { pps: 1 } }] }`),
        "-f",
        "tx",
        "-i",
        `shm:${r}}0`,
      ]);
      expect((await new Response(flags.stderr).text()).trim()).toBe(
        "pktgen: say how long: -n packets per stream or --seconds S",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
