// Child process for shm tests: `open NAME` (open and hang), `send NAME N delayMs` (send N packets
// after a delay, sequence numbers in the first 4 bytes).
import { openPort } from "../../src/port/open.ts";
import { POLLOUT } from "../../src/ring/layout.ts";

const [cmd, name, nArg, delayArg] = process.argv.slice(2);
const port = openPort(name);
if (cmd === "open") {
  process.stdout.write("opened\n");
  setInterval(() => {}, 1000);
} else if (cmd === "send") {
  await Bun.sleep(Number(delayArg ?? 0));
  const tx = port.txRings[0];
  let sent = 0;
  const n = Number(nArg);
  while (sent < n) {
    port.poll(POLLOUT, 1000);
    while (sent < n && tx.space() > 0) {
      const i = tx.head;
      new DataView(tx.u8.buffer).setUint32(tx.buf(i), sent, false);
      tx.setLenFlags(i, 64, 0);
      tx.advance(tx.next(i));
      sent++;
    }
    port.txsync();
  }
  // wait until the reader has taken everything, then leave
  while (tx.space() < tx.numSlots - 1) {
    port.poll(POLLOUT, 100);
    Bun.sleepSync(1);
  }
  port.close();
}
