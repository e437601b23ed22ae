// A network function that is a host: it answers ARP for its address and ICMP echo (ping), on one
// port, in place. Inside a container on a vale network, its port is a zero-copy port into the
// network's switch: bun examples/responder.ts net:eth0 198.19.200.50 02:00:00:00:00:50
import { arp, checksum, drop, formatCounters, ipv4, NfRunner, type Packet } from "bunmap";

const [port = "net:eth0", ipText = "198.19.200.50", macText = "02:00:00:00:00:50"] = process.argv.slice(2);
const me = ipv4.parseIPv4(ipText);
const mac = Uint8Array.from(macText.split(":").map((h) => Number.parseInt(h, 16)));
const peer = new Uint8Array(6);

function respond(p: Packet): number {
  const u = p.u8,
    o = p.off;
  if (arp.isArp(u, o, p.len)) {
    if (arp.arpOp(u, o) !== arp.ARP_REQUEST || arp.arpTargetIp(u, o) !== me) return drop(0);
    peer.set(u.subarray(o + 6, o + 12)); // once per ARP request, not per packet of the datapath
    arp.writeArp(u, o, arp.ARP_REPLY, mac, me, peer, arp.arpSenderIp(u, o), peer);
    return 0;
  }
  const l = p.layers;
  if (l.family !== 4 || l.proto !== 1 || p.field(l.l3 + 16, 4) !== me || u[o + l.l4] !== 8) return drop(1);
  // echo request -> reply: swap MACs and addresses, type 0, checksums patched (RFC 1624)
  for (let k = 0; k < 6; k++) {
    const t = u[o + k];
    u[o + k] = u[o + 6 + k];
    u[o + 6 + k] = t;
  }
  ipv4.swapIPv4(u, o + l.l3);
  u[o + l.l4] = 0;
  const at = o + l.l4 + 2;
  ipv4.put16(u, at, checksum.csumUpdate16(ipv4.get16(u, at), 0x0800, 0x0000));
  return 0;
}

const nf = new NfRunner({ [port]: port }, respond, { reasons: ["ARP not for us", "not a ping for us"] });
console.log(`responder: ${ipText} (${macText}) on ${port}`);
process.stdout.write(formatCounters(await nf.run())); // until SIGINT or SIGTERM
nf.close();
