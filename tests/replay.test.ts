// netmap's nmreplay (src/nf/replay.ts, bun run replay): the schedule for each bandwidth, delay and
// loss against values worked out by hand, the flags, and a trace replayed into an shm pipe with its
// timing measured from the receiving side.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseReplayArgs } from "../src/app/replay/main.ts";
import { parseBandwidth, parseDelay, parseLoss, random, schedule } from "../src/nf/replay.ts";
import { pcapGlobalHeader, pcapRecordHeader } from "../src/packet/pcap.ts";
import { openPort } from "../src/port/open.ts";

setDefaultTimeout(60_000);
const repo = `${import.meta.dir}/..`;

describe("the schedule", () => {
  const len = [125, 125, 250, 125],
    ts = [10, 10.5, 10.75, 12];
  test("constant and ether bandwidth: each packet after the previous ones' transmission times", () => {
    // 125 B at 1 Mbit/s: 1 ms; 250 B: 2 ms
    expect([...schedule(len, ts, { kind: "constant", bps: 1e6 }).at]).toEqual([0, 0.001, 0.002, 0.004]);
    // + 24 bytes each: 149 B -> 1.192 ms, 274 B -> 2.192 ms
    const e = [...schedule(len, ts, { kind: "ether", bps: 1e6 }).at];
    expect(e.map((x) => Math.round(x * 1e6))).toEqual([0, 1192, 2384, 4576]);
  });
  test("real timing with a speed-up; delays never reorder; losses", () => {
    expect([...schedule(len, ts, { kind: "real", speedup: 2 }).at]).toEqual([0, 0.25, 0.375, 1]);
    expect([...schedule(len, ts, { kind: "real", speedup: 1 }, { kind: "constant", s: 0.005 }).at]).toEqual([
      0.005, 0.505, 0.755, 2.005,
    ]);
    const n = 20000,
      l = new Array(n).fill(1000),
      t = Array.from({ length: n }, (_, k) => k * 1e-3);
    const u = schedule(
      l,
      t,
      { kind: "real", speedup: 1 },
      { kind: "uniform", min: 0.001, max: 0.003 },
      undefined,
      random(7),
    ).at;
    for (let k = 1; k < n; k++) expect(u[k] >= u[k - 1]).toBe(true); // never reordered
    expect(Math.min(...u.map((x, k) => x - t[k]))).toBeGreaterThanOrEqual(0.001);
    const lossy = (loss: Parameters<typeof schedule>[4]) =>
      schedule(l, t, { kind: "real", speedup: 1 }, undefined, loss, random(11)).dropped / n;
    expect(lossy({ kind: "plr", p: 0 })).toBe(0);
    expect(lossy({ kind: "plr", p: 1 })).toBe(1);
    expect(Math.abs(lossy({ kind: "plr", p: 0.3 }) - 0.3)).toBeLessThan(0.02);
    // a bit error rate of 1e-4 over 8000 bits: 1 - (1 - 1e-4)^8000 = 0.5507
    expect(Math.abs(lossy({ kind: "ber", ber: 1e-4 }) - 0.5507)).toBeLessThan(0.02);
  });
  test("flags: nmreplay's -B -D -L grammar; one error line for a bad one", () => {
    expect(parseBandwidth("600k")).toEqual({ kind: "constant", bps: 600e3 });
    expect(parseBandwidth("ether,1G")).toEqual({ kind: "ether", bps: 1e9 });
    expect(parseBandwidth("real,4")).toEqual({ kind: "real", speedup: 4 });
    expect(parseDelay("5m")).toEqual({ kind: "constant", s: 0.005 });
    expect(parseDelay("exp,1m,3m")).toEqual({ kind: "exp", min: 0.001, avg: 0.003 });
    expect(parseLoss("ber,1e-6")).toEqual({ kind: "ber", ber: 1e-6 });
    for (const [argv, msg] of [
      [["-i", "shm:x{0"], "missing -f pcap-file"],
      [["-f", "a.pcap", "-i", "p", "-B", "fast"], "-B fast: expected a number"],
      [["-f", "a.pcap", "-i", "p", "-D", "uniform,3m,1m"], "-D uniform,3m,1m: dmin above dmax"],
      [["-f", "a.pcap", "-i", "p", "-L", "plr,2"], "-L plr,2: expected x, plr,x or ber,x with x from 0 to 1"],
      [["-f", "a.pcap", "-i", "p", "-C", "1"], "-C: CPU placement is not offered"],
    ] as [string[], string][])
      expect(() => parseReplayArgs(argv)).toThrow(msg);
  });
});

describe("bun run replay", () => {
  test("1000 packets at 600 kbit/s into an shm pipe: every byte, never faster than the rate at the receiver", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-replay-`);
    const region = `rp${process.pid}`;
    try {
      const frames = Array.from({ length: 1000 }, (_, k) =>
        Uint8Array.from({ length: 60 }, (_, b) => (b === 20 ? k & 255 : b === 21 ? k >> 8 : b)),
      );
      const parts: Uint8Array[] = [pcapGlobalHeader()];
      for (const f of frames) {
        const h = new Uint8Array(16);
        pcapRecordHeader(new DataView(h.buffer), 0, 0, 0, f.length, f.length);
        parts.push(h, f);
      }
      writeFileSync(`${dir}/t.pcap`, Buffer.concat(parts));
      const proc = Bun.spawn(
        [
          process.execPath,
          `${repo}/src/app/replay/main.ts`,
          "-f",
          `${dir}/t.pcap`,
          "-i",
          `shm:${region}{0`,
          "-B",
          "600k",
          "-w",
          "1",
        ],
        { stdout: "pipe", stderr: "pipe", timeout: 60_000, killSignal: "SIGKILL" },
      );
      while (!existsSync(`/dev/shm/bunmap-${region}`)) await Bun.sleep(5); // it opened the pipe: now its far end
      const rx = openPort(`shm:${region}}0`);
      const got: Uint8Array[] = [],
        when: number[] = [];
      try {
        const ring = rx.rxRings[0];
        const deadline = performance.now() + 20_000;
        while (got.length < 1000 && performance.now() < deadline) {
          rx.rxsync(); // spinning: the receiver's clock is the measure
          const now = performance.now();
          while (!ring.empty()) {
            got.push(ring.packet(ring.head).slice());
            when.push(now);
            ring.advance(ring.next(ring.head));
          }
        }
      } finally {
        rx.close();
      }
      const out = await new Response(proc.stdout).text();
      expect(await proc.exited).toBe(0);
      expect(got).toEqual(frames);
      // 60 B at 600 kbit/s: 0.8 ms each. Never faster than the rate: packets 0 and 900 are 720 ms
      // apart in the schedule, each estimated as the median, over a hundred packets, of arrival less
      // place in the schedule (1%: clock rounding). Medians, because a receiver that looked late at
      // the first packet (a loaded machine) made the link look fast. How late is the machine's.
      const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
      const first = med(when.slice(0, 100).map((t, k) => t - k * 0.8)); // when packet 0 was due
      const later = med(when.slice(900).map((t, k) => t - k * 0.8)); // when packet 900 was due
      const spread = later - first;
      expect(spread).toBeGreaterThan(0.99 * 720);
      expect(when[999] - when[0]).toBeLessThan(799.2 + 2000);
      expect(out).toMatch(/^Sent 1000 packets 60000 bytes in [\d.]+ seconds; 0 dropped by -L$/m);
      expect(out).toMatch(/^Timing error \(left - scheduled\): p50 [\d.]+ us, p99 [\d.]+ us, max [\d.]+ us$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
