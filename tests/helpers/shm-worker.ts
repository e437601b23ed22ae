// Worker for the SharedArrayBuffer region test: opens the slave end and sends N numbered packets.
import { openPort } from "../../src/port/open.ts";
import { POLLOUT } from "../../src/ring/layout.ts";

declare const self: Worker;
self.onmessage = (ev: MessageEvent) => {
  const { sab, n } = ev.data as { sab: SharedArrayBuffer; n: number };
  const port = openPort("shm:w}0", { region: sab });
  const tx = port.txRings[0];
  const dv = new DataView(port.mem as SharedArrayBuffer);
  let sent = 0;
  while (sent < n) {
    port.poll(POLLOUT, 1000);
    while (sent < n && tx.space() > 0) {
      dv.setUint32(tx.buf(tx.head), sent, false);
      tx.setLenFlags(tx.head, 60 + (sent % 100), 0);
      tx.advance(tx.next(tx.head));
      sent++;
    }
    port.txsync();
  }
  port.close();
  self.postMessage({ sent });
};
