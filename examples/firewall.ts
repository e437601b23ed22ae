import { drop, formatCounters, NfRunner, type Packet } from "bunmap";

// inside -> outside: TCP/UDP to 198.18.1.0/24, ports 80 and 443 only; outside -> inside: all (replies)
const PORTS = new Set([80, 443]);
function firewall(p: Packet): number {
  if (p.input === 1) return 0;
  const l = p.layers;
  if (l.family !== 4 || l.l4 < 0 || (l.proto !== 6 && l.proto !== 17)) return drop(0);
  const toNet = p.field(l.l3 + 16, 4) >>> 8 === 0xc61201;
  return toNet && PORTS.has(p.field(l.l4 + 2, 2)) ? 1 : drop(1);
}
const [inside = "shm:fw{0@conf:pipes=2", outside = "shm:fw{1"] = process.argv.slice(2);
const fw = new NfRunner({ inside, outside }, firewall, { reasons: ["not IPv4 TCP/UDP", "acl"] });
console.log("firewall: running");
process.stdout.write(formatCounters(await fw.run())); // until SIGINT or SIGTERM
fw.close();
