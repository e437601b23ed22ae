// Child script for port tests: `send PORT N` sends N frames (sizes 60..1514, bytes from the index)
// and `recv PORT N` receives N frames and prints a digest line per frame: "i len bad". On a port with
// virtio-net headers (vnet=1) each frame follows a header saying "no GSO, no checksum to do", and a
// received header that says otherwise counts as bad.
import { openPort } from "../../src/port/open.ts";
import { POLLIN, POLLOUT } from "../../src/ring/layout.ts";

const [cmd, spec, nArg] = process.argv.slice(2);
const n = Number(nArg);
const port = openPort(spec);
const size = (i: number) => 60 + ((i * 97) % 1455);
const h = port.hdrLen;
process.stdout.write("ready\n");
if (cmd === "send") {
  await Bun.sleep(200);
  const tx = port.txRings[0];
  let i = 0;
  while (i < n) {
    if (!(port.poll(POLLOUT, 1000) & POLLOUT)) continue;
    for (let burst = 0; burst < 32 && i < n && tx.space() > 0; burst++) {
      const b = tx.buf(tx.head) + h,
        len = size(i);
      tx.u8.fill(0, b - h, b); // virtio_net_hdr: flags 0, GSO_NONE
      tx.u8.fill(0xff, b, b + 6); // broadcast
      tx.u8[b + 12] = 0x88;
      tx.u8[b + 13] = 0xb5; // local experimental ethertype: the stack ignores it
      new DataView(tx.u8.buffer).setUint32(b + 14, i, false);
      for (let k = 18; k < len; k++) tx.u8[b + k] = (i + k) & 255;
      tx.setLenFlags(tx.head, h + len, 0);
      tx.advance(tx.next(tx.head));
      i++;
    }
    port.txsync();
    Bun.sleepSync(1); // pace: the receiver checks every byte in JS, and frames are not retransmitted
  }
  for (let t = 0; t < 200 && tx.space() < tx.numSlots - 1; t++) port.poll(POLLOUT, 10);
} else {
  const rx = port.rxRings[0];
  let got = 0;
  const lines: string[] = [];
  const deadline = Date.now() + 15000;
  while (got < n && Date.now() < deadline) {
    if (!(port.poll(POLLIN, 500) & POLLIN)) continue;
    while (!rx.empty()) {
      const b = rx.buf(rx.head) + h,
        len = rx.len(rx.head) - h,
        u8 = rx.u8;
      if (u8[b + 12] === 0x88 && u8[b + 13] === 0xb5) {
        const i = new DataView(u8.buffer).getUint32(b + 14, false);
        let bad = h && u8[b - h + 1] !== 0 ? 1 : 0; // gso_type must be NONE
        for (let k = 18; k < len; k++) if (u8[b + k] !== ((i + k) & 255)) bad++;
        lines.push(`${i} ${len} ${bad}`);
        got++;
      }
      rx.advance(rx.next(rx.head));
    }
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
port.close();
