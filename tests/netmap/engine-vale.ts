// Run inside the netmap guest (tests/netmap/engine-vale.job.sh): the switch engine over real VALE ports.
// h1 sits on VALE switch vale1 with the engine's port s1, h2 on vale2 with s2; the engine joins s1 and
// s2. Frames are sent one at a time, 30 ms apart, so the worker is asleep in epoll_wait on the netmap
// fds each time and must be woken by the kernel. Then s2 leaves (nothing reaches h2) and rejoins.
// Exits 0 and prints "engine-vale: OK" only if every check holds.
import { openPort } from "../../src/port/open.ts";
import type { Port } from "../../src/port/port.ts";
import { POLLIN } from "../../src/ring/layout.ts";
import { SwitchEngine } from "../../src/switch/engine.ts";

const fail = (m: string): never => {
  console.error(`engine-vale: FAIL: ${m}`);
  process.exit(1);
};
function send(p: Port, seq: number): void {
  const tx = p.txRings[0],
    b = tx.buf(tx.head),
    u8 = tx.u8;
  u8.fill(0xff, b, b + 6);
  u8.set([2, 0, 0, 0, 0, 1], b + 6);
  u8[b + 12] = 0x88;
  u8[b + 13] = 0xb5;
  new DataView(u8.buffer).setUint32(b + 14, seq);
  for (let k = 18; k < 60; k++) u8[b + k] = (seq + k) & 255;
  tx.setLenFlags(tx.head, 60, 0);
  tx.advance(tx.next(tx.head));
  p.txsync();
}
function take(p: Port, ms: number): number[] {
  const got: number[] = [];
  if (!(p.poll(POLLIN, ms) & POLLIN)) return got;
  for (const rx of p.rxRings) {
    while (!rx.empty()) {
      const b = rx.buf(rx.head),
        u8 = rx.u8,
        seq = new DataView(u8.buffer).getUint32(b + 14);
      if (rx.len(rx.head) !== 60) fail(`frame ${seq}: length ${rx.len(rx.head)}`);
      for (let k = 18; k < 60; k++) if (u8[b + k] !== ((seq + k) & 255)) fail(`frame ${seq}: byte ${k} differs`);
      got.push(seq);
      rx.advance(rx.next(rx.head));
    }
  }
  p.rxsync();
  return got;
}

const engine = new SwitchEngine({ workers: 1 });
const sw = await engine.createSwitch({ maxPorts: 4 });
await sw.addPort("vale1:s1");
let s2 = await sw.addPort("vale2:s2");
const h1 = openPort("vale1:h1"),
  h2 = openPort("vale2:h2");
if (h1.pollFd < 0 || h1.hdrLen !== 0 || h1.rxDrops() !== 0) fail("NetmapPort: pollFd, hdrLen or rxDrops wrong");
const got: number[] = [];
for (let i = 0; i < 20; i++) {
  await Bun.sleep(30); // the worker sleeps in epoll_wait
  send(h1, i);
  got.push(...take(h2, 3000));
}
if (got.join() !== Array.from({ length: 20 }, (_, i) => i).join()) fail(`h2 got [${got}] instead of 0..19`);
await sw.removePort(s2);
send(h1, 100);
const none = take(h2, 500);
if (none.length) fail(`after s2 left, h2 still got [${none}]`);
s2 = await sw.addPort("vale2:s2");
await Bun.sleep(30);
send(h1, 101);
const back = take(h2, 3000);
if (back.join() !== "101") fail(`after s2 rejoined, h2 got [${back}] instead of [101]`);
const st = sw.portStats(s2);
if (st.tx !== 1) fail(`s2's counters after rejoining: ${JSON.stringify(st)}`);
await engine.close();
h1.close();
h2.close();
console.log("engine-vale: OK (20 frames through a sleeping worker, leave and rejoin)");
process.exit(0);
