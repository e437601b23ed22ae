// VXLAN on the wire: our encapsulation against frames Linux's vxlan device sent (captured with tcpdump
// on the underlay veth, tests/fixtures/linux-vxlan.pcap: an ARP broadcast and two ICMP echoes on VNI
// 42), decapsulation's refusals, the per-flow source port, and the vxlan: port's name checks.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { finish, fold, sum16 } from "../src/packet/checksum.ts";
import { IP4, IPPROTO_UDP } from "../src/packet/ipv4.ts";
import { parsePcap } from "../src/packet/pcap.ts";
import { UDP, udpChecksumOk } from "../src/packet/udp.ts";
import {
  decapsulate,
  encapsulate,
  flowSourcePort,
  SPORT_MAX,
  SPORT_MIN,
  setOuterId,
  VXLAN_HLEN,
  VXLAN_OVERHEAD,
  vxlanVni,
} from "../src/packet/vxlan.ts";
import { parsePortName } from "../src/port/name.ts";
import { vxlanConf } from "../src/port/vxlan.ts";
import { pktgen } from "./helpers/pktgen.ts";

const pcap = parsePcap(new Uint8Array(readFileSync(`${import.meta.dir}/fixtures/linux-vxlan.pcap`)));
const frames = pcap.records.map((r) => pcap.data.slice(r.offset, r.offset + r.caplen));
const be32 = (u8: Uint8Array, o: number) => ((u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3]) >>> 0;
const be16 = (u8: Uint8Array, o: number) => (u8[o] << 8) | u8[o + 1];
const IP = 14,
  UDPO = IP + 20;

describe("VXLAN encapsulation against Linux's vxlan (captured frames)", () => {
  test("the fixture holds what it says: three VNI 42 frames, 198.18.100.2 -> .1", () => {
    expect(frames.length).toBe(3);
    for (const f of frames) {
      const inner = decapsulate(f, 0, f.length);
      expect(inner).toBe(VXLAN_OVERHEAD);
      expect(vxlanVni(f, inner - VXLAN_HLEN)).toBe(42);
    }
    expect(be16(frames[0], VXLAN_OVERHEAD + 12)).toBe(0x0806); // ARP
    expect(be16(frames[1], VXLAN_OVERHEAD + 12)).toBe(0x0800);
  });

  test("encapsulate writes Linux's outer headers byte for byte (the UDP checksum as a NIC would finish it)", () => {
    for (const f of frames) {
      const innerLen = f.length - VXLAN_OVERHEAD;
      const buf = new Uint8Array(f.length + 64);
      const inner = 64; // room in front for the outer headers
      buf.set(f.subarray(VXLAN_OVERHEAD), inner);
      const at = encapsulate(buf, inner, innerLen, {
        dstMac: f.subarray(0, 6),
        srcMac: f.subarray(6, 12),
        src: be32(f, IP + IP4.src),
        dst: be32(f, IP + IP4.dst),
        vni: 42,
        sport: be16(f, UDPO + UDP.sport), // Linux hashes the flow its own way; the port is the capture's
        id: be16(f, IP + IP4.id), // the kernel's per-destination counter
        udpCsum: true,
      });
      expect(at).toBe(inner - VXLAN_OVERHEAD);
      const ours = buf.subarray(at, at + f.length);
      const sum = UDPO + UDP.sum;
      // every byte but the UDP checksum is Linux's
      expect([...ours.subarray(0, sum), ...ours.subarray(sum + 2)]).toEqual([
        ...f.subarray(0, sum),
        ...f.subarray(sum + 2),
      ]);
      // Linux handed the frame to the veth with CHECKSUM_PARTIAL: the capture holds the pseudo-header
      // sum a NIC would complete; ours is the complete checksum, and it verifies
      const ulen = be16(f, UDPO + UDP.len);
      expect(be16(f, sum)).toBe(fold(sum16(f, IP + IP4.src, 8, IPPROTO_UDP + ulen)));
      expect(udpChecksumOk(ours, IP, UDPO)).toBe(true);
      // and without udpCsum the checksum is zero, as RFC 7348 recommends
      encapsulate(buf, inner, innerLen, {
        dstMac: f.subarray(0, 6),
        srcMac: f.subarray(6, 12),
        src: be32(f, IP + IP4.src),
        dst: be32(f, IP + IP4.dst),
        vni: 42,
      });
      expect(be16(ours, sum)).toBe(0);
      expect(udpChecksumOk(ours, IP, UDPO)).toBe(true);
    }
  });

  test("setOuterId keeps the IPv4 header checksum right", () => {
    const f = frames[1].slice();
    setOuterId(f, 0, 0xbeef);
    expect(be16(f, IP + IP4.id)).toBe(0xbeef);
    expect(finish(sum16(f, IP, 20))).toBe(0);
  });

  test("flowSourcePort: in the dynamic range, equal for one flow, spread over flows", () => {
    const a = flowSourcePort(frames[1], VXLAN_OVERHEAD, frames[1].length - VXLAN_OVERHEAD);
    expect(flowSourcePort(frames[2], VXLAN_OVERHEAD, frames[2].length - VXLAN_OVERHEAD)).toBe(a); // same echo flow
    const seen = new Set<number>();
    const f = frames[1].slice(VXLAN_OVERHEAD);
    for (let i = 0; i < 256; i++) {
      f[14 + IP4.src + 3] = i;
      const p = flowSourcePort(f, 0, f.length);
      expect(p).toBeGreaterThanOrEqual(SPORT_MIN);
      expect(p).toBeLessThanOrEqual(SPORT_MAX);
      seen.add(p);
    }
    expect(seen.size).toBeGreaterThan(200);
  });

  test("decapsulate refuses what is not a whole VXLAN frame for this port", () => {
    const f = frames[1];
    const tweak = (o: number, v: number) => {
      const g = f.slice();
      g[o] = v;
      return decapsulate(g, 0, g.length);
    };
    expect(decapsulate(f, 0, f.length, 8472)).toBe(-1); // another port
    expect(tweak(UDPO + 8, 0)).toBe(-1); // I flag clear
    expect(tweak(IP + IP4.off, 0x20)).toBe(-1); // more fragments
    expect(tweak(IP + IP4.proto, 6)).toBe(-1); // TCP
    expect(tweak(12, 0x86)).toBe(-1); // not IPv4
    expect(decapsulate(f, 0, VXLAN_OVERHEAD + 13)).toBe(-1); // no room for an inner Ethernet header
    expect(() => encapsulate(new Uint8Array(100), 10, 50, { dstMac: f, srcMac: f, src: 1, dst: 2, vni: 1 })).toThrow(
      /headroom/,
    );
  });
});

describe("vxlan: port names", () => {
  const conf = (s: string) => vxlanConf(parsePortName(s));
  test("defaults and keys", () => {
    const c = conf("vxlan:42@conf:remote=198.18.0.2+198.18.0.3,local=198.18.0.1,ttl=8,age=60");
    expect(c.vni).toBe(42);
    expect(c.remotes).toEqual([0xc6120002, 0xc6120003]);
    expect(c.local).toBe(0xc6120001);
    expect([c.dstport, c.ttl, c.age, c.learning, c.slots, c.bufSize]).toEqual([4789, 8, 60, true, 1024, 2048]);
    expect(conf("vxlan:16777215").vni).toBe(16777215);
  });
  test("bad names say what to fix", () => {
    const bad = (s: string, m: RegExp) => expect(() => conf(s)).toThrow(m);
    bad("vxlan:16777216", /VNI 16777216 is not a number 0\.\.16777215/);
    bad("vxlan:abc", /VNI|digits/);
    bad("vxlan:42@conf:remote=198.18.0.300", /remote=198.18.0.300 is not an IPv4 address/);
    bad("vxlan:42@conf:remote=239.1.1.1", /group=/);
    bad("vxlan:42@conf:group=198.18.0.1,dev=lo", /not a multicast address/);
    bad("vxlan:42@conf:group=239.1.1.1", /needs dev=/);
    bad("vxlan:42@conf:group=239.1.1.1,dev=lo,remote=198.18.0.2", /exclude each other/);
    bad("vxlan:42@conf:dstport=0", /dstport/);
    bad("vxlan:42@conf:colour=red", /colour/);
    bad("vxlan:42-1", /one ring/);
  });
});

describe("pktgen --vxlan", () => {
  test("frames in VXLAN: outer headers as given, inner UDP flow intact, sizes followed; rxseq reads them back", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-vxpk-`);
    try {
      const file = `${dir}/vx.pcap`;
      const tx = await pktgen([
        ...["-i", `pcap:${file}`, "-f", "txseq", "-n", "200", "-l", "300", "-l", "64"],
        ...["-D", "02:00:00:00:00:09", "-S", "02:00:00:00:00:08", "-d", "198.18.7.2:9000"],
        ...["--vxlan", "4242,198.18.0.1,198.18.0.2,02:00:00:00:01:01,02:00:00:00:01:02"],
      ]).done;
      expect(tx.code).toBe(0);
      const p = parsePcap(new Uint8Array(readFileSync(file)));
      expect(p.records.length).toBe(200);
      const sizes = new Set<number>();
      for (const r of p.records) {
        const f = p.data.subarray(r.offset, r.offset + r.caplen);
        const inner = decapsulate(f, 0, f.length);
        expect(inner).toBe(VXLAN_OVERHEAD);
        expect(vxlanVni(f, inner - VXLAN_HLEN)).toBe(4242);
        expect([...f.subarray(0, 12)]).toEqual([2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8]); // outer MACs: -D, -S
        expect([be32(f, IP + IP4.src), be32(f, IP + IP4.dst)]).toEqual([0xc6120001, 0xc6120002]);
        expect(be16(f, IP + IP4.len)).toBe(f.length - 14); // outer lengths follow the inner size
        expect(be16(f, UDPO + UDP.len)).toBe(f.length - 34);
        expect(finish(sum16(f, IP, 20))).toBe(0);
        expect([...f.subarray(inner, inner + 12)]).toEqual([2, 0, 0, 0, 1, 2, 2, 0, 0, 0, 1, 1]); // inner MACs
        expect(be32(f, inner + 14 + IP4.dst)).toBe(0xc6120702);
        expect(udpChecksumOk(f, inner + 14, inner + 34)).toBe(true); // the inner datagram verifies
        sizes.add(f.length - VXLAN_OVERHEAD);
      }
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(64);
      expect(Math.max(...sizes)).toBeLessThan(300);
      expect(sizes.size).toBeGreaterThan(20);
      const rx = await pktgen(["-i", `pcap:${file}`, "-f", "rxseq", "-W", "--vxlan", "4242,198.18.0.1,198.18.0.2"])
        .done;
      expect(rx.code).toBe(0);
      expect(rx.out).toMatch(/^Received 200 packets/m);
      expect(rx.out).toContain("Sequence errors: 0 gaps (0 packets missing), 0 out of order");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("bad --vxlan values say what to fix", async () => {
    for (const [v, m] of [
      ["42,198.18.0.1", /expected VNI,SRC_IP,DST_IP/],
      ["99999999,198.18.0.1,198.18.0.2", /VNI 99999999/],
      ["42,198.18.0.1,198.18.0.256", /198.18.0.256/],
      ["42,198.18.0.1,198.18.0.2,zz:00:00:00:00:01,02:00:00:00:00:02", /zz/],
    ] as const) {
      const r = await pktgen(["-i", "shm:vxbad{0", "-f", "tx", "--vxlan", v]).done;
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(m);
    }
    const pp = await pktgen(["-i", "shm:vxbad{0", "-f", "ping", "--vxlan", "1,198.18.0.1,198.18.0.2"]).done;
    expect(pp.err).toMatch(/--vxlan works with -f tx, txseq, rx and rxseq/);
  });
});
