// One thread of the switch benchmark: the switch core for ring w of every port, and the hosts'
// ends of ring w driven in the same thread with pkt-gen's cheapest loops (template written once,
// then only len; the sink only counts), so the time measured is the switch's.

import { Fdb } from "../src/packet/fdb.ts";
import { openPort } from "../src/port/open.ts";
import { NS_BUF_CHANGED } from "../src/ring/layout.ts";
import { SwitchCore } from "../src/switch/core.ts";
import { learningLookup } from "../src/switch/lookup.ts";

declare const self: Worker;

self.onmessage = (ev: MessageEvent) => {
  const { name, nports, w, workers, ms, fdb } = ev.data as {
    name: string;
    nports: number;
    w: number;
    workers: number;
    ms: number;
    fdb: SharedArrayBuffer;
  };
  const r = workers > 1 ? `-${w}` : "";
  const conf = `@conf:pipes=${nports},rings=${workers},slots=1024`; // same on every open: whoever comes first creates
  const sw = Array.from({ length: nports }, (_, i) => openPort(`shm:${name}{${i}${r}${conf}`));
  const host = Array.from({ length: nports }, (_, i) => openPort(`shm:${name}}${i}${r}${conf}`));
  const core = SwitchCore.of(sw, Fdb.of(fdb, 300), learningLookup, 512);
  // host i sends to host (i+1) % n. The switch swaps buffers between rings, so a slot can come back
  // holding another host's buffer: like pkt-gen, rewrite the header whenever NS_BUF_CHANGED is set.
  const header = (i: number, u8: Uint8Array, b: number) => {
    u8[b] = 2;
    u8[b + 1] = 0;
    u8[b + 2] = 0;
    u8[b + 3] = 0;
    u8[b + 4] = w;
    u8[b + 5] = (i + 1) % nports;
    u8[b + 6] = 2;
    u8[b + 7] = 0;
    u8[b + 8] = 0;
    u8[b + 9] = 0;
    u8[b + 10] = w;
    u8[b + 11] = i;
    u8[b + 12] = 0x88;
    u8[b + 13] = 0xb5;
  };
  for (let i = 0; i < nports; i++) {
    const tx = host[i].txRings[0];
    for (let s = 0; s < tx.numSlots; s++) header(i, tx.u8, tx.buf(s));
  }
  const pump = () => {
    for (let i = 0; i < nports; i++) {
      const tx = host[i].txRings[0];
      host[i].txsync();
      let m = tx.space();
      if (m > 512) m = 512;
      const u32 = tx.u32,
        s0 = tx.s0,
        n = tx.numSlots;
      let h = tx.head;
      for (let k = 0; k < m; k++) {
        const wd = s0 + (h << 2);
        if ((u32[wd + 1] >>> 16) & NS_BUF_CHANGED) header(i, tx.u8, tx.bufAt(u32[wd]));
        u32[wd + 1] = 60;
        h = h + 1 === n ? 0 : h + 1;
      }
      tx.advance(h);
      host[i].txsync();
    }
  };
  let sunk = 0;
  const sink = () => {
    for (let i = 0; i < nports; i++) {
      const rx = host[i].rxRings[0];
      host[i].rxsync();
      sunk += rx.space();
      rx.advance(rx.tail);
      host[i].rxsync();
    }
  };
  // warm up and learn
  for (let k = 0; k < 200; k++) {
    pump();
    core.round();
    sink();
  }
  sunk = 0;
  const f0 = core.counts().forwarded,
    t0 = performance.now();
  while (performance.now() - t0 < ms) {
    pump();
    core.round();
    sink();
  }
  const dt = (performance.now() - t0) / 1000;
  for (const p of [...sw, ...host]) p.close(); // before answering: the main thread terminates us then
  self.postMessage({
    mpps: (core.counts().forwarded - f0) / dt / 1e6,
    sunk,
    flooded: core.counts().flooded,
    dropped: core.counts().dropped,
  });
};
