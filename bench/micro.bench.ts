// Micro-benchmarks (mitata): the per-packet pieces of the hot paths, per batch of 512 where it applies.
import { bench, group, run, summary } from "mitata";
import { checksum } from "../src/packet/checksum.ts";
import { parseIPv4 } from "../src/packet/ipv4.ts";
import { UdpFlow } from "../src/packet/udpflow.ts";
import { openPort } from "../src/port/open.ts";
import { NS_BUF_CHANGED } from "../src/ring/layout.ts";

const name = `micro${process.pid}`;
const a = openPort(`shm:${name}{0`),
  b = openPort(`shm:${name}}0`);
const tx = a.txRings[0],
  rx = b.rxRings[0];
const range = (x: string, y: string) => ({
  v6: false,
  start: parseIPv4(x),
  end: parseIPv4(y),
  port0: 1000,
  port1: 1100,
});
const flowCfg = {
  v6: false,
  srcMac: new Uint8Array(6),
  dstMac: new Uint8Array(6).fill(255),
  src: range("198.18.0.1", "198.18.0.200"),
  dst: range("198.19.0.1", "198.19.0.1"),
  size: 60,
  minSize: 0,
  randomSrc: false,
  randomDst: false,
  stampBytes: 0,
  vnetHdr: 0,
};
const fixed = new UdpFlow(flowCfg);
const varying = new UdpFlow({ ...flowCfg, size: 1500, minSize: 64, stampBytes: 4 });
const buf = new Uint8Array(2048);
varying.fill(buf, 0);

function fill512(): number {
  const u32 = tx.u32,
    s0 = tx.s0,
    n = tx.numSlots;
  let head = tx.head;
  for (let k = 0; k < 512; k++) {
    const w = s0 + (head << 2);
    if ((u32[w + 1] >>> 16) & NS_BUF_CHANGED) fixed.fill(tx.u8, tx.bufAt(u32[w]));
    u32[w + 1] = 60;
    head = head + 1 === n ? 0 : head + 1;
  }
  tx.advance(head);
  return head;
}
function drain(): number {
  const u32 = rx.u32,
    s0 = rx.s0,
    n = rx.numSlots;
  let head = rx.head,
    bytes = 0;
  const m = rx.space();
  for (let k = 0; k < m; k++) {
    bytes += u32[s0 + (head << 2) + 1] & 0xffff;
    head = head + 1 === n ? 0 : head + 1;
  }
  rx.advance(head);
  return bytes;
}

summary(() => {
  group("ring, batch of 512 (one thread, no peer)", () => {
    bench("fill 512 tx slots + txsync + rxsync + drain", () => {
      fill512();
      a.txsync();
      b.rxsync();
      const r = drain();
      b.rxsync();
      a.txsync();
      return r;
    });
    bench("txsync + rxsync only", () => {
      a.txsync();
      b.rxsync();
    });
  });
  group("packet", () => {
    bench("UdpFlow.emit: range + random size + stamp (per packet)", () => varying.emit(buf, 0, 12345, 0, 0, 1));
    bench("checksum of 1500 bytes", () => checksum(buf, 0, 1500));
    bench("template copy, 60 B", () => fixed.fill(buf, 0));
  });
});
await run();
a.close();
b.close();
