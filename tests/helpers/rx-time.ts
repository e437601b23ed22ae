// Child script for the kernel receive time: `send PORT` sends 5 frames 50 ms apart; `port PORT` and
// `runner PORT` wait until 5 frames are in the ring (they sleep first, so all five are taken in one
// batch), then print, per frame, how long before the batch it arrived (ms): from Port.rxTime, or
// from Packet.time under a runner with kernelTime.
import { NfRunner } from "../../src/nf/runner.ts";
import { openPort } from "../../src/port/open.ts";
import { POLLOUT } from "../../src/ring/layout.ts";

const [cmd, spec] = process.argv.slice(2);
const port = openPort(spec);
process.stdout.write("ready\n");
if (cmd === "send") {
  await Bun.sleep(200);
  const tx = port.txRings[0];
  for (let i = 0; i < 5; i++) {
    port.poll(POLLOUT, 1000);
    const b = tx.buf(tx.head);
    tx.u8.fill(0xff, b, b + 6);
    tx.u8.fill(0, b + 6, b + 60);
    tx.u8[b + 12] = 0x88;
    tx.u8[b + 13] = 0xb5; // local experimental ethertype: the stack ignores it
    tx.u8[b + 14] = i;
    tx.setLenFlags(tx.head, 60, 0);
    tx.advance(tx.next(tx.head));
    port.txsync();
    await Bun.sleep(50);
  }
  await Bun.sleep(100);
} else {
  const rx = port.rxRings[0];
  for (let t = 0; t < 500 && rx.space() < 5; t++) {
    await Bun.sleep(20);
    port.rxsync();
  }
  await Bun.sleep(300); // the frames wait in the ring: a batch time would be late for every one
  const ages: number[] = [];
  if (cmd === "port") {
    const now = performance.now();
    for (let i = rx.head, k = 0; k < 5; k++, i = rx.next(i)) ages.push(now - (port.rxTime?.(i) ?? Number.NaN));
  } else {
    const r = new NfRunner(
      { p: port },
      (p) => {
        ages.push(performance.now() - p.time);
        return -1;
      },
      { kernelTime: true },
    );
    r.round();
  }
  process.stdout.write(`${ages.map((a) => a.toFixed(3)).join(" ")}\n`);
}
port.close();
