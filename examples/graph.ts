// A graph for `bun run nf examples/graph.ts`: the tutorial's firewall, then dedup, between two shm
// pipes (inside: shm:g{0, outside: shm:g{1; their far ends shm:g}0 and shm:g}1); replies come straight
// back. Each NF is { nf, to, reasons }; `from` says where each port's packets enter.
import { DEDUP_REASONS, Dedup, drop, type GraphSpec, type Packet } from "bunmap";

const PORTS = new Set([80, 443]);
function firewall(p: Packet): number {
  const l = p.layers;
  if (l.family !== 4 || l.l4 < 0 || (l.proto !== 6 && l.proto !== 17)) return drop(0);
  const toNet = p.field(l.l3 + 16, 4) >>> 8 === 0xc61201; // 198.18.1.0/24
  return toNet && PORTS.has(p.field(l.l4 + 2, 2)) ? 0 : drop(1);
}
const dedup = new Dedup(0, { fifo: 64, windowUs: 1000 });

export default {
  ports: { inside: "shm:g{0@conf:pipes=2", outside: "shm:g{1" },
  nfs: {
    fw: { nf: firewall, to: ["dedup"], reasons: ["not IPv4 TCP/UDP", "acl"] },
    dedup: { nf: dedup.process, to: ["outside"], reasons: DEDUP_REASONS },
  },
  from: { inside: "fw", outside: "inside" },
} satisfies GraphSpec;
