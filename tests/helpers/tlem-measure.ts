// Measuring an emulated link from outside the emulator (used by tests/tlem.test.ts and bench/tlem.ts):
// the emulator between two shm pipes, this code sending on one and reading the other with its own
// clock. The loops allocate nothing (a collection would show as the emulator's lateness).
import { random } from "../../src/nf/replay.ts";
import { NfRunner } from "../../src/nf/runner.ts";
import { type LinkConfig, LinkEmulator, TLEM_REASONS } from "../../src/nf/tlem.ts";
import { openPort } from "../../src/port/open.ts";
import type { Port } from "../../src/port/port.ts";

let seq = 0;
export const NONE = { kind: "none" } as const;

/** An emulator between two pipes of one region, and the pipes' far ends. */
export function rig(cfg: [LinkConfig, LinkConfig]) {
  const r = `tl${process.pid}x${seq++}`;
  let emu: LinkEmulator | null = null;
  const runner = new NfRunner(
    { a: `shm:${r}{0@conf:pipes=2,slots=4096`, b: `shm:${r}{1` },
    (p) => (emu as LinkEmulator).process(p),
    { reasons: TLEM_REASONS, tick: () => (emu as LinkEmulator).tick(), backpressure: false },
  );
  emu = new LinkEmulator(runner, cfg, random(5));
  const ha = openPort(`shm:${r}}0`),
    hb = openPort(`shm:${r}}1`);
  return {
    runner,
    emu,
    ha,
    hb,
    close() {
      runner.close();
      ha.close();
      hb.close();
    },
  };
}

/** Put one frame of `len` bytes, `mark` at byte 20, on p. */
export function send(p: Port, len: number, mark: number): void {
  const tx = p.txRings[0],
    o = tx.buf(tx.head);
  tx.u8.fill(0, o, o + len);
  new DataView(tx.u8.buffer).setUint32(o + 20, mark);
  tx.setLenFlags(tx.head, len, 0);
  tx.advance(tx.next(tx.head));
  p.txsync();
}

/** Every frame on p's rx ring, released; `each(mark)` for each. */
export function drain(p: Port, each: (mark: number) => void): void {
  p.rxsync();
  const rx = p.rxRings[0],
    dv = new DataView(rx.u8.buffer);
  while (!rx.empty()) {
    each(dv.getUint32(rx.buf(rx.head) + 20));
    rx.advance(rx.next(rx.head));
  }
  p.rxsync();
}

/** n packets, 2000 a second, across a link of `ms` delay: each one's lateness (µs), the first
 * `warm` (code compiled as it runs) left out. */
export function measureDelay(ms: number, n: number, warm: number): number[] {
  const link: LinkConfig = { bps: 0, delay: { kind: "constant", s: ms / 1000 }, loss: NONE, queueBytes: 1e6 };
  const t = rig([link, link]);
  try {
    const sent = new Float64Array(n),
      late = new Float64Array(n);
    let next = performance.now(),
      got = 0,
      at = 0;
    const each = (m: number) => {
      late[m] = (at - sent[m] - ms) * 1000;
      got++;
    };
    for (let k = 0; k < n || got < n; ) {
      const now = performance.now();
      if (k < n && now >= next) {
        sent[k] = now;
        send(t.ha, 60, k++);
        next += 0.5;
      }
      t.runner.round();
      at = performance.now();
      drain(t.hb, each);
      if (at - sent[0] > 10_000) throw new Error(`only ${got} of ${n} packets crossed in 10 s`);
    }
    return [...late.subarray(warm)];
  } finally {
    t.close();
  }
}

/** n packets of `len` bytes at once into a link of `bps`: the rate they leave at, seen at the far end. */
export function measureRate(bps: number, n: number, len: number): number {
  const t = rig([
    { bps, delay: NONE, loss: NONE, queueBytes: n * len * 2 },
    { bps, delay: NONE, loss: NONE, queueBytes: n * len * 2 },
  ]);
  try {
    // from just before the first packet is offered: the link cannot have passed n packets sooner
    // than n * len * 8 / bps after it, whenever the receiver happened to look at the first one
    const t0 = performance.now();
    for (let k = 0; k < n; k += 100) {
      for (let j = 0; j < 100 && k + j < n; j++) send(t.ha, len, k + j);
      t.runner.round();
    }
    const when = new Float64Array(n);
    let got = 0,
      now = 0;
    const each = () => {
      when[got++] = now;
    };
    const deadline = performance.now() + 30_000;
    while (got < n && performance.now() < deadline) {
      t.runner.round();
      now = performance.now();
      drain(t.hb, each);
    }
    if (got < n) throw new Error(`only ${got} of ${n} packets crossed`);
    return (n * len * 8) / ((when[n - 1] - t0) / 1000);
  } finally {
    t.close();
  }
}
