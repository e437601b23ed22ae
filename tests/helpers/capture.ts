// Inside a container: watch IFACE for MS milliseconds through an AF_PACKET port and count what
// arrives: frames unicast to any of the MACs given (they belong to others), to this interface's own
// MAC, and the rest (broadcast, multicast, unknown). Prints one JSON line.
//   bun capture.ts IFACE MS MAC[,MAC...]
import { openPort } from "../../src/port/open.ts";
import { POLLIN } from "../../src/ring/layout.ts";

const [ifname, ms, macs] = process.argv.slice(2);
const others = new Set(macs.split(",").map((m) => m.toLowerCase()));
const port = openPort(`packet:${ifname}`);
const own = Array.from(port.mac, (b) => b.toString(16).padStart(2, "0")).join(":");
const c = { foreign: 0, own: 0, other: 0 };
process.stdout.write("capturing\n");
const end = performance.now() + Number(ms);
while (performance.now() < end) {
  if (!(port.poll(POLLIN, 50) & POLLIN)) continue;
  const rx = port.rxRings[0];
  for (let i = rx.head; i !== rx.tail; i = rx.next(i)) {
    const b = rx.buf(i);
    const dst = Array.from(rx.u8.subarray(b, b + 6), (x) => x.toString(16).padStart(2, "0")).join(":");
    if (dst === own) c.own++;
    else if (others.has(dst)) c.foreign++;
    else c.other++;
  }
  rx.advance(rx.tail);
}
port.close();
process.stdout.write(`${JSON.stringify(c)}\n`);
