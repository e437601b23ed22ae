// shm pipe ports: names, data integrity with wraparound, ownership, cleanup, cross-process wakeup,
// SharedArrayBuffer regions between workers, and resuming after a restart.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";

setDefaultTimeout(60_000);

import { existsSync, readdirSync } from "node:fs";
import { openPort } from "../src/port/open.ts";
import type { Port } from "../src/port/port.ts";
import { createSharedRegion } from "../src/port/shm-region.ts";
import { POLLIN, POLLOUT } from "../src/ring/layout.ts";

const tag = `t${process.pid}`;
const uniq = (() => {
  let i = 0;
  return (s: string) => `${tag}${s}${i++}`;
})();
const BUN = process.execPath;
const child = (args: string[]) =>
  Bun.spawn([BUN, `${import.meta.dir}/helpers/shm-child.ts`, ...args], {
    timeout: 180_000,
    killSignal: "SIGKILL",
    stdout: "pipe",
    stderr: "pipe",
  });

afterAll(() => {
  const left = readdirSync("/dev/shm").filter((f) => f.startsWith(`bunmap-${tag}`));
  expect(left).toEqual([]); // every test closed its ports: no region file left behind
});

/** Send n packets of varying length, each filled with a pattern from its number; receive and check. */
function pump(a: Port, b: Port, n: number, maxBatch: number): number {
  const tx = a.txRings[0],
    rx = b.rxRings[0];
  let sent = 0,
    got = 0;
  const fill = (seq: number, u8: Uint8Array, off: number, len: number) => {
    for (let i = 0; i < len; i++) u8[off + i] = (seq * 31 + i) & 255;
  };
  while (got < n) {
    a.txsync();
    const m = Math.min(1 + ((sent * 7) % maxBatch), tx.space(), n - sent);
    for (let k = 0; k < m; k++, sent++) {
      const len = 60 + (sent % 1400);
      fill(sent, tx.u8, tx.buf(tx.head), len);
      tx.setLenFlags(tx.head, len, 0);
      tx.advance(tx.next(tx.head));
    }
    a.txsync();
    b.rxsync();
    const take = Math.min(rx.space(), 1 + ((got * 5) % maxBatch));
    for (let k = 0; k < take; k++, got++) {
      const i = rx.head,
        len = rx.len(i),
        off = rx.buf(i);
      if (len !== 60 + (got % 1400)) throw new Error(`packet ${got}: len ${len}`);
      for (let j = 0; j < len; j += 97)
        if (rx.u8[off + j] !== ((got * 31 + j) & 255)) throw new Error(`packet ${got}: byte ${j}`);
      rx.advance(rx.next(i));
    }
    b.rxsync();
  }
  return got;
}

describe("shm pipe", () => {
  test("carries bytes intact both ways across many ring wraps", () => {
    const name = uniq("data");
    const m = openPort(`shm:${name}{0@conf:slots=64`),
      s = openPort(`shm:${name}}0`);
    try {
      expect(m.memId).toBe(s.memId);
      expect(pump(m, s, 5000, 50)).toBe(5000);
      expect(pump(s, m, 3000, 63)).toBe(3000);
    } finally {
      m.close();
      s.close();
    }
    expect(existsSync(`/dev/shm/bunmap-${name}`)).toBe(false);
  });

  test("a full tx ring has no space until the reader releases, then tail moves", () => {
    const name = uniq("full");
    const m = openPort(`shm:${name}{0@conf:slots=16`),
      s = openPort(`shm:${name}}0`);
    try {
      const tx = m.txRings[0],
        rx = s.rxRings[0];
      expect(tx.space()).toBe(15); // netmap keeps one slot empty
      tx.advance(tx.tail);
      m.txsync();
      expect(tx.space()).toBe(0);
      expect(m.poll(POLLOUT, 0)).toBe(0);
      s.rxsync();
      expect(rx.space()).toBe(15);
      rx.advance((rx.head + 5) % 16);
      s.rxsync();
      m.txsync();
      expect(tx.space()).toBe(5);
      expect(m.poll(POLLOUT, 0)).toBe(POLLOUT);
    } finally {
      m.close();
      s.close();
    }
  });

  test("moving head past tail is refused with a clear message", () => {
    const name = uniq("head");
    const m = openPort(`shm:${name}{0@conf:slots=16`);
    try {
      const tx = m.txRings[0];
      tx.advance(15); // fill all 15 free slots: head may reach tail
      m.txsync();
      tx.advance(3); // but never move backwards (past tail, modulo the ring)
      expect(() => m.txsync()).toThrow(/head 3 outside/);
    } finally {
      m.close();
    }
  });

  test("each end opens once; closing frees it; config mismatches and bad pipes/rings are errors", () => {
    const name = uniq("own");
    const m = openPort(`shm:${name}{1@conf:pipes=2,rings=2`);
    try {
      expect(() => openPort(`shm:${name}{1`)).toThrow(/already open by pid \d+/);
      expect(() => openPort(`shm:${name}}1@conf:slots=512`)).toThrow(/does not match slots=512/);
      expect(() => openPort(`shm:${name}}2`)).toThrow(/pipe 2 does not exist.*0\.\.1/);
      expect(() => openPort(`shm:${name}}1-2`)).toThrow(/ring 2 does not exist/);
      const r1 = openPort(`shm:${name}}1-1`); // one ring of the slave end
      expect(r1.txRings.length).toBe(1);
      expect(r1.deviceRings).toBe(2);
      expect(() => openPort(`shm:${name}}1`)).toThrow(/ring 1 is already open/);
      r1.close();
      openPort(`shm:${name}}1`).close();
    } finally {
      m.close();
    }
    expect(existsSync(`/dev/shm/bunmap-${name}`)).toBe(false);
  });

  test("an end held by a killed process is taken over", async () => {
    const name = uniq("stale");
    const c = child(["open", `shm:${name}{0`]);
    const reader = c.stdout.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("opened");
    expect(() => openPort(`shm:${name}{0`)).toThrow(new RegExp(`already open by pid ${c.pid}`));
    c.kill(9);
    await c.exited;
    const m = openPort(`shm:${name}{0`);
    m.close();
    expect(existsSync(`/dev/shm/bunmap-${name}`)).toBe(false);
  });

  test("poll() sleeps until a packet from another process arrives, and times out when none does", async () => {
    const name = uniq("wake");
    const m = openPort(`shm:${name}{0`);
    try {
      let t = performance.now();
      expect(m.poll(POLLIN, 150)).toBe(0);
      expect(performance.now() - t).toBeGreaterThanOrEqual(140);
      const c = child(["send", `shm:${name}}0`, "3", "300"]);
      t = performance.now();
      // the child needs ~100 ms to start plus its 300 ms delay; the 10 s timeout must not be reached
      let got = 0;
      while (got < 3) {
        const rev = m.poll(POLLIN, 10_000);
        expect(rev).toBe(POLLIN);
        const rx = m.rxRings[0];
        while (!rx.empty()) {
          expect(new DataView(rx.u8.buffer).getUint32(rx.buf(rx.head), false)).toBe(got++);
          rx.advance(rx.next(rx.head));
        }
        m.rxsync();
      }
      expect(performance.now() - t).toBeLessThan(5000);
      expect(await c.exited).toBe(0);
    } finally {
      m.close();
    }
  });

  test("a SharedArrayBuffer region carries packets between workers", async () => {
    const sab = createSharedRegion({ pipes: 1, slots: 128 });
    const m = openPort("shm:w{0", { region: sab });
    const w = new Worker(`${import.meta.dir}/helpers/shm-worker.ts`);
    const done = new Promise<{ sent: number }>((res) => {
      w.onmessage = (e) => res(e.data);
    });
    w.postMessage({ sab, n: 20000 });
    const rx = m.rxRings[0];
    const dv = new DataView(sab);
    let got = 0;
    while (got < 20000) {
      if (!(m.poll(POLLIN, 5000) & POLLIN)) throw new Error(`stalled after ${got}`);
      while (!rx.empty()) {
        expect(dv.getUint32(rx.buf(rx.head), false)).toBe(got);
        expect(rx.len(rx.head)).toBe(60 + (got % 100));
        got++;
        rx.advance(rx.next(rx.head));
      }
    }
    expect((await done).sent).toBe(20000);
    m.close();
    w.terminate();
  });

  test("a reader that restarts resumes where the last one released: nothing lost, nothing repeated", () => {
    const name = uniq("resume");
    const tx = openPort(`shm:${name}}0`);
    const r1 = openPort(`shm:${name}{0`);
    const t = tx.txRings[0];
    for (let i = 0; i < 100; i++) {
      t.u8[t.buf(t.head)] = i;
      t.setLenFlags(t.head, 60, 0);
      t.advance(t.next(t.head));
    }
    tx.txsync();
    r1.rxsync();
    const a = r1.rxRings[0];
    const seen: number[] = [];
    for (let i = 0; i < 40; i++) {
      seen.push(a.u8[a.buf(a.head)]);
      a.advance(a.next(a.head));
    }
    r1.rxsync();
    // it moves past 10 more but goes away before releasing them: they must come again
    a.advance((a.head + 10) % a.numSlots);
    r1.close();
    const r2 = openPort(`shm:${name}{0`);
    r2.rxsync();
    const b = r2.rxRings[0];
    while (!b.empty()) {
      seen.push(b.u8[b.buf(b.head)]);
      b.advance(b.next(b.head));
    }
    r2.rxsync();
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
    r2.close();
    tx.close();
  });

  test("an invalid region file is reported, not mapped", () => {
    const name = uniq("junk");
    Bun.write(`/dev/shm/bunmap-${name}`, "not a region");
    const t = performance.now();
    expect(() => openPort(`shm:${name}{0`)).toThrow(/not a valid bunmap region/);
    expect(performance.now() - t).toBeGreaterThan(1500); // it waited for a creator first
    require("node:fs").unlinkSync(`/dev/shm/bunmap-${name}`);
  });
});
