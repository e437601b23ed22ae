// A bunmap app at one end of a netmap port (run inside a namespace by cnf-vale.ts): `tx PORT N` sends
// N frames of ethertype 0x88b5, each of its own length with bytes worked out from its number; `rx PORT
// N` takes frames until N of that ethertype came and checks every one byte for byte and in order.
import { openPort } from "../../src/port/open.ts";
import { POLLIN, POLLOUT } from "../../src/ring/layout.ts";

const [mode, name, nText] = process.argv.slice(2);
const N = Number(nText);
const lenOf = (seq: number) => 60 + ((seq * 37) % 1455);
const byteOf = (seq: number, k: number) => (seq * 7 + k) & 255;
const p = openPort(name);
console.log(`cnf-peer ${mode}: ready on ${name}`);
if (mode === "tx") {
  const tx = p.txRings[0];
  for (let seq = 0; seq < N; ) {
    if (!(p.poll(POLLOUT, 1000) & POLLOUT)) continue;
    while (seq < N && !tx.empty()) {
      const b = tx.buf(tx.head),
        u8 = tx.u8,
        len = lenOf(seq);
      u8.fill(0xff, b, b + 6);
      u8.set([2, 0, 0, 0, 0, 0x11], b + 6);
      u8[b + 12] = 0x88;
      u8[b + 13] = 0xb5;
      new DataView(u8.buffer).setUint32(b + 14, seq);
      for (let k = 18; k < len; k++) u8[b + k] = byteOf(seq, k);
      tx.setLenFlags(tx.head, len, 0);
      tx.advance(tx.next(tx.head));
      seq++;
    }
    p.txsync();
    Bun.sleepSync(2); // VALE drops what a slow receiver cannot take: a pace the guest keeps up with
  }
  p.poll(POLLOUT, 2000);
  console.log(`cnf-peer tx: sent ${N}`);
} else {
  const rx = p.rxRings[0];
  let got = 0,
    bad = 0,
    next = 0;
  const end = Date.now() + 120_000;
  while (got < N && Date.now() < end) {
    if (!(p.poll(POLLIN, 1000) & POLLIN)) continue;
    while (!rx.empty()) {
      const b = rx.buf(rx.head),
        u8 = rx.u8,
        len = rx.len(rx.head);
      if (u8[b + 12] === 0x88 && u8[b + 13] === 0xb5) {
        const seq = new DataView(u8.buffer).getUint32(b + 14);
        let ok = seq === next && len === lenOf(seq);
        for (let k = 18; ok && k < len; k++) ok = u8[b + k] === byteOf(seq, k);
        if (!ok) bad++;
        next = seq + 1;
        got++;
      }
      rx.advance(rx.next(rx.head));
    }
  }
  console.log(`cnf-peer rx: ${got} of ${N} frames, ${bad} not as sent`);
  if (got !== N || bad) process.exit(1);
}
p.close();
