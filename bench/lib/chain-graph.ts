// The chain of bench/nf-chain.ts as a graph for bun run nf: the tutorial's firewall, lb's hash onto
// two outputs, a counting sink on each. CHAIN_REGION names the shm region (pipe 0: pktgen in; pipes 1
// to 3: between the parts; the sinks never forward, but their output crosses back too); CHAIN_SPLIT=1 puts the sinks in a second part (bun run nf --processes:
// a second process), the pipes between them those of the input's region, so buffers are swapped.
import { CONSUMED, drop, type GraphSpec, lbHash, type Packet } from "../../src/index.ts";

const region = process.env.CHAIN_REGION ?? "chain";
function firewall(p: Packet): number {
  const l = p.layers;
  if (l.family !== 4 || l.l4 < 0 || (l.proto !== 6 && l.proto !== 17)) return drop(0);
  const toNet = p.field(l.l3 + 16, 4) >>> 8 === 0xc61201; // 198.18.1.0/24
  const port = p.field(l.l4 + 2, 2);
  return toNet && (port === 80 || port === 443) ? 0 : drop(1);
}
const lb = (p: Packet) => lbHash(p.u8, p.off) & 1;
const bytes = new Float64Array(2); // what the sinks count beyond the graph's own per-NF packets
const sink0 = (p: Packet) => {
  bytes[0] += p.len;
  return CONSUMED;
};
const sink1 = (p: Packet) => {
  bytes[1] += p.len;
  return CONSUMED;
};

export default {
  ports: { in: `shm:${region}{0@conf:pipes=4` },
  nfs: {
    fw: { nf: firewall, to: ["lb"], reasons: ["not IPv4 TCP/UDP", "acl"] },
    lb: { nf: lb, to: ["sink0", "sink1"] },
    sink0: { nf: sink0, to: ["in"] }, // (a sink forwards nothing: its output is never taken)
    sink1: { nf: sink1, to: ["in"] },
  },
  from: { in: "fw" },
  split:
    process.env.CHAIN_SPLIT === "1"
      ? [
          ["fw", "lb"],
          ["sink0", "sink1"],
        ]
      : [["fw", "lb", "sink0", "sink1"]],
  splitPipes: `shm:${region}{1`,
} satisfies GraphSpec;
