// Run inside the receiver's namespace: attach the counting XDP_DROP to IFACE, print the count
// whenever a line arrives on stdin, detach on EOF. `bun bench/xdp-drop.ts IFACE`
import { attachDropCounter } from "../ffi/bpf.ts";

const ifname = process.argv[2];
const d = attachDropCounter(ifname);
process.stdout.write(`attached ${ifname}\n`);
for await (const _ of console) process.stdout.write(`${d.count()}\n`);
d.detach();
