// netmap's tlem on the runner (src/nf/tlem.ts, bun run tlem): delay, rate, loss and queue limits of
// each emulated link, measured from outside the emulator (tests/helpers/tlem-measure.ts: this code
// sends on one pipe and reads the other with its own clock; this kernel has no netem to compare with).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { parseTlemArgs } from "../src/app/tlem/main.ts";
import type { LinkConfig } from "../src/nf/tlem.ts";
import { drain, measureDelay, measureRate, NONE, rig, send } from "./helpers/tlem-measure.ts";

setDefaultTimeout(60_000);
const q = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];

describe("an emulated link, measured from outside", () => {
  test("delay: 2 ms constant, each packet's own delay read at the receiver", () => {
    const late = measureDelay(2, 500, 100);
    console.log(`tlem lateness: p50 ${q(late, 0.5).toFixed(1)} us, p99 ${q(late, 0.99).toFixed(1)} us`);
    // never early (1 us: the clocks' rounding), on time as a rule; how late at worst depends on the
    // machine's load (bench/tlem.ts measures it: bench/RESULTS.md)
    expect(q(late, 0)).toBeGreaterThanOrEqual(-1);
    expect(q(late, 0.5)).toBeLessThan(2000);
    expect(q(late, 1)).toBeLessThan(50_000);
  });

  test("rate: 1000 packets of 1000 B at 10 Mbit/s leave 0.8 ms apart", () => {
    const rate = measureRate(10e6, 1000, 1000);
    console.log(`tlem rate: ${(rate / 1e6).toFixed(3)} Mbit/s for 10`);
    // never faster than the link (1%: clock rounding); how close under load is the machine's
    // (within 1% on a quiet one: bench/tlem.ts)
    expect(rate).toBeLessThan(1.01 * 10e6);
    expect(rate).toBeGreaterThan(0.5 * 10e6);
  });

  test("loss and the queue limit, counted by reason; the other direction is its own link", () => {
    const lossy: LinkConfig = { bps: 0, delay: NONE, loss: { kind: "plr", p: 0.2 }, queueBytes: 1e6 };
    const narrow: LinkConfig = { bps: 1e6, delay: NONE, loss: NONE, queueBytes: 10_000 };
    const t = rig([lossy, narrow]);
    try {
      for (let k = 0; k < 4000; k += 200) {
        for (let j = 0; j < 200; j++) send(t.ha, 60, k + j);
        t.runner.round();
        drain(t.hb, () => {});
      }
      // b -> a: 100 packets of 1000 B at once into a 10000-byte queue of a 1 Mbit/s link: 10 fit
      for (let j = 0; j < 100; j++) send(t.hb, 1000, j);
      t.runner.round();
      const c = t.runner.counters();
      expect(Math.abs(c.drops["lost (-L)"] / 4000 - 0.2)).toBeLessThan(0.02);
      expect(c.drops["queue full (-Q)"]).toBe(90);
      expect(t.emu.inFlight(1)).toBe(10);
    } finally {
      t.close();
    }
  });
});

describe("bun run tlem", () => {
  test("flags: each once for both ways, twice for each way", () => {
    const r = parseTlemArgs(["-i", "shm:a{0", "-i", "shm:b{0", "-D", "2m", "-D", "5m", "-B", "10M", "-L", "0.01"]);
    if (r === "help") throw new Error("help");
    expect(r.links[0]).toEqual({
      bps: 10e6,
      delay: { kind: "constant", s: 0.002 },
      loss: { kind: "plr", p: 0.01 },
      queueBytes: 50000,
    });
    expect(r.links[1].delay).toEqual({ kind: "constant", s: 0.005 });
    for (const [argv, msg] of [
      [["-i", "a"], "need two interfaces: -i ifa -i ifb"],
      [["-i", "a", "-i", "a"], "must specify two different interfaces a a"],
      [["-i", "a", "-i", "b", "-D", "1m", "-D", "1m", "-D", "1m"], "-D: at most twice"],
      [["-i", "a", "-i", "b", "-B", "real"], "-B real: a link has a rate"],
    ] as [string[], string][])
      expect(() => parseTlemArgs(argv)).toThrow(msg);
  });
});
