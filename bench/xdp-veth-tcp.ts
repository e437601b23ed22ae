// Why the xdp datapath cannot match Docker's bridge on TCP (issue 25): a veth with an XDP program on
// it, even one that passes every frame, takes frames one MTU at a time (the kernel turns GSO off
// on its peer, and frames cross as xdp_frames), while a plain veth, like a bridge's, carries 64 KiB
// GSO frames. TCP (bench/c/tcpx.c, 1 GB) between two namespaces over one veth pair, MTU 1500:
//   loopback  the tool alone: client and server on lo in one namespace (what tcpx can move here)
//   plain     nothing attached
//   xdp rx    XDP_PASS on the receiver's end (bench/xdp-pass.ts)
//   xdp both  XDP_PASS on both ends (what an AF_XDP port on each host end means for the path)
// Rounds interleaved; medians. Addresses 198.18.153.0/30 only.
//   bun bench/xdp-veth-tcp.ts [ROUNDS=5]   (root)
import { say } from "./lib/progress.ts";
import { median } from "./lib/stats.ts";
import { must, tcpxOnVeth } from "./lib/tcpx.ts";

const ROUNDS = Number(process.argv[2] ?? 5);
const tag = `xv${process.pid}`;
const SETUPS = { loopback: [], plain: [], "xdp rx": ["y"], "xdp both": ["x", "y"] } as const;
type Setup = keyof typeof SETUPS;

const once = (s: Setup): number =>
  tcpxOnVeth(tag, {
    loopback: s === "loopback",
    prepare: (ns) => {
      for (const side of SETUPS[s])
        must("ip", "netns", "exec", ns[side], process.execPath, `${import.meta.dir}/xdp-pass.ts`, "vt0");
    },
  });

const res = new Map<Setup, number[]>((Object.keys(SETUPS) as Setup[]).map((s) => [s, []]));
for (let r = 0; r < ROUNDS; r++)
  for (const s of (Object.keys(SETUPS) as Setup[]).sort(() => (r % 2 ? -1 : 1))) {
    res.get(s)?.push(once(s));
    say(`round ${r + 1}/${ROUNDS} ${s}: ${res.get(s)?.at(-1)} MB/s`);
  }
console.log(`TCP over one veth pair, tcpx 1 GB, MTU 1500; ${ROUNDS} rounds; ${new Date().toISOString()}`);
console.log("| veth | median MB/s | rounds | / plain |");
console.log("| --- | --- | --- | --- |");
const plain = median(res.get("plain") ?? []);
for (const [s, v] of res) console.log(`| ${s} | ${median(v)} | ${v.join(", ")} | ${(median(v) / plain).toFixed(2)} |`);
