// A traffic profile for bun run pktgen --profile: two streams, each a packet template, field rules
// and a rate. Addresses in 198.18.0.0/15 (benchmarking), sent only into the ports you name.
import { list, type Profile, random, range } from "bunmap";

export default {
  streams: [
    {
      name: "dns",
      packet: { ip: { src: "198.18.0.1", dst: "198.18.1.53" }, udp: { dport: 53 } },
      fields: { "ip.src": range("198.18.0.1", "198.18.0.254"), "udp.sport": random(1024, 65535) },
      rate: { pps: 20000 },
    },
    {
      name: "web",
      packet: { ip: { src: "198.18.0.2", dst: "198.18.1.80" }, tcp: { dport: 443 } },
      size: "imix",
      fields: { "tcp.sport": list(40000, 40001, 40002) },
      rate: { bps: 20e6 },
      pattern: "poisson",
    },
  ],
} satisfies Profile;
