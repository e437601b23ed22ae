// Run inside a namespace: attach an XDP program that passes every frame (XDP_PASS, native mode) to
// IFACE and leave it there (netlink attachment outlives the process; it goes with the interface).
// What a veth costs the kernel stack once XDP is on it, whatever the program does (bench/xdp-veth-tcp.ts).
//   bun bench/xdp-pass.ts IFACE
import { asm, attachXdp } from "../ffi/bpf.ts";

const XDP_PASS = 2;
attachXdp(process.argv[2], Uint8Array.from([...asm.movImm(0, XDP_PASS), ...asm.exit()]));
process.stdout.write(`attached ${process.argv[2]}\n`);
