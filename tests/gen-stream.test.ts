// The generator's streams (src/gen): packets built from a description, fields varied by rules, sizes,
// the signature, and checksums right for every packet. Checked with a checksum written here from
// RFC 1071 (not the library's), field by field against values worked out by hand.
import { describe, expect, test } from "bun:test";
import { IMIX, list, random, range, seq } from "../src/gen/fields.ts";
import { sigSeq, sigStream, sigTime } from "../src/gen/signature.ts";
import { StreamError, type StreamSpec, StreamWriter } from "../src/gen/stream.ts";

/** RFC 1071 over the given byte arrays, concatenated (each of even length but the last). */
function rfc1071(...parts: number[][]): number {
  const b = parts.flat();
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) + (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}
const bytes = (u8: Uint8Array, a: number, n: number) => [...u8.subarray(a, a + n)];
const be16 = (u8: Uint8Array, o: number) => (u8[o] << 8) | u8[o + 1];
const be32 = (u8: Uint8Array, o: number) => ((u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3]) >>> 0;

/** Check an IPv4/IPv6 packet's IP header and transport checksums from scratch; returns the L4 offset. */
function checkSums(u8: Uint8Array, len: number, ip: number): number {
  const v6 = u8[ip] >> 4 === 6;
  const proto = v6 ? u8[ip + 6] : u8[ip + 9];
  const l4 = ip + (v6 ? 40 : (u8[ip] & 15) * 4);
  if (!v6) {
    expect(rfc1071(bytes(u8, ip, 20))).toBe(0);
    expect(be16(u8, ip + 2)).toBe(len - ip);
  } else expect(be16(u8, ip + 4)).toBe(len - ip - 40);
  const seg = bytes(u8, l4, len - l4);
  const pseudo = v6
    ? [...bytes(u8, ip + 8, 32), 0, 0, (len - l4) >> 8, (len - l4) & 255, 0, 0, 0, proto]
    : [...bytes(u8, ip + 12, 8), 0, proto, (len - l4) >> 8, (len - l4) & 255];
  if (proto === 1) expect(rfc1071(seg)).toBe(0);
  else expect(rfc1071(pseudo, seg)).toBe(0);
  if (proto === 17) expect(be16(u8, l4 + 4)).toBe(len - l4);
  return l4;
}

const base = {
  eth: { dst: "02:00:00:00:00:02", src: "02:00:00:00:00:01" },
  ip: { src: "198.18.0.1", dst: "198.18.1.1" },
};

describe("a stream's packets", () => {
  test("UDP over IPv4: ranges, random and lists per packet, sizes in turn, checksums right for each", () => {
    const w = new StreamWriter(
      {
        name: "udp",
        packet: { ...base, udp: { sport: 1000, dport: 53 } },
        size: { range: [60, 63] },
        fields: {
          "ip.src": range("198.18.0.1", "198.18.0.3"),
          "udp.sport": random(2000, 2009),
          "udp.dport": list(53, 5353),
          "ip.ttl": seq(254, 1),
        },
      },
      7,
    );
    const buf = new Uint8Array(4096);
    for (let k = 0; k < 12; k++) {
      const off = (k % 2) * 2048;
      if (k < 2) w.prime(buf, off);
      const len = w.write(buf, off, k, 1000 + k);
      expect(len).toBe(60 + (k % 4));
      const u8 = buf.subarray(off, off + 2048);
      const l4 = checkSums(u8, len, 14);
      expect(be32(u8, 26)).toBe(((198 << 24) | (18 << 16) | ((k % 3) + 1)) >>> 0);
      expect(be16(u8, l4)).toBeGreaterThanOrEqual(2000);
      expect(be16(u8, l4)).toBeLessThanOrEqual(2009);
      expect(be16(u8, l4 + 2)).toBe(k % 2 ? 5353 : 53);
      expect(u8[22]).toBe((254 + k) % 256); // a sequence wraps at the field's width
      const sig = l4 + 8;
      expect([sigStream(u8, sig), sigSeq(u8, sig), sigTime(u8, sig)]).toEqual([7, k, 1000 + k]);
    }
  });

  test("TCP over IPv6 with a VLAN tag, ICMP echo, and UDP inside VXLAN: every checksum from scratch", () => {
    const buf = new Uint8Array(2048);
    const v6: StreamSpec = {
      name: "tcp6",
      packet: { eth: base.eth, vlan: { id: 100 }, ip: { src: "2001:db8::1", dst: "2001:db8::2" }, tcp: { dport: 443 } },
      size: 200,
      fields: {
        "ip.src": range("2001:db8::1", "2001:db8::ff"),
        "vlan.id": range(100, 103),
        "tcp.seq": seq(4294967290, 3),
      },
    };
    const t = new StreamWriter(v6, 1);
    t.prime(buf, 0);
    for (let k = 0; k < 5; k++) {
      const len = t.write(buf, 0, k, 0);
      expect(len).toBe(200);
      expect([be16(buf, 12), be16(buf, 14) & 0xfff]).toEqual([0x8100, 100 + (k % 4)]);
      const l4 = checkSums(buf, len, 18);
      expect(buf[18 + 8 + 15]).toBe(1 + k); // the address's low bits
      expect(be32(buf, l4 + 4)).toBe((4294967290 + 3 * k) % 2 ** 32);
    }
    const icmp = new StreamWriter(
      { name: "ping", packet: { ...base, icmp: { id: 9 } }, fields: { "icmp.seq": seq(1) } },
      2,
    );
    icmp.prime(buf, 0);
    for (let k = 0; k < 3; k++) {
      const len = icmp.write(buf, 0, k, 0);
      const l4 = checkSums(buf, len, 14);
      expect([buf[l4], be16(buf, l4 + 4), be16(buf, l4 + 6)]).toEqual([8, 9, 1 + k]);
    }
    const vx = new StreamWriter(
      {
        name: "vxlan",
        packet: {
          ...base,
          vxlan: { vni: 42, inner: { ip: { src: "198.18.5.1", dst: "198.18.5.2" }, udp: { dport: 7 } } },
        },
        size: [
          [150, 2],
          [1514, 1],
        ],
        fields: { "inner.ip.src": range("198.18.5.1", "198.18.5.9"), "vxlan.vni": list(42, 43) },
      },
      3,
    );
    vx.prime(buf, 0);
    const sizes: number[] = [];
    for (let k = 0; k < 12; k++) {
      const len = vx.write(buf, 0, k, 0);
      sizes.push(len);
      expect(rfc1071(bytes(buf, 14, 20))).toBe(0); // the outer IPv4 header
      expect([be16(buf, 36), be16(buf, 38), be16(buf, 40)]).toEqual([4789, len - 34, 0]); // outer UDP: no checksum
      expect(be32(buf, 46) >>> 8).toBe(42 + (k % 2));
      checkSums(buf, len, 50 + 14); // the inner frame's own headers
    }
    expect(sizes).toEqual([150, 150, 1514, 150, 150, 1514, 150, 150, 1514, 150, 150, 1514]);
    const imix = new StreamWriter({ name: "imix", packet: { ...base, udp: {} }, size: "imix" }, 4);
    imix.prime(buf, 0);
    expect(Array.from({ length: 12 }, (_, k) => imix.write(buf, 0, k, 0))).toEqual(
      IMIX.flatMap(([s, w]) => Array(w).fill(s)),
    );
  });

  test("the generated patches write what the general path writes, byte for byte, over every kind of header and field", () => {
    // a callback that changes nothing sends a stream down the general path (whole sums, field by field)
    const general = (spec: StreamSpec, id: number) => new StreamWriter({ ...spec, each: () => {} }, id);
    const specs: StreamSpec[] = [
      {
        name: "udp4",
        packet: { ...base, udp: {} },
        size: { random: [60, 1500] },
        fields: {
          "eth.src": range("02:00:00:00:00:01", "02:00:00:00:01:00"),
          "ip.tos": list(0, 0x2e, 0xb8), // an odd place in its word
          "ip.ttl": seq(250, 3),
          "ip.id": random(0, 65535),
          "ip.src": range("198.18.0.1", "198.18.255.254", 257),
          "ip.dst": list("198.18.1.1", "255.255.255.254", "0.0.0.1"),
          "udp.sport": random(1, 65535),
          "udp.dport": seq(65530),
        },
      },
      {
        name: "tcp4",
        packet: { ...base, tcp: { flags: 2 } },
        size: "imix",
        fields: {
          "tcp.seq": seq(4294967000, 97),
          "tcp.ack": random(0, 4294967295),
          "tcp.flags": list(2, 0x10, 0x18), // odd place
          "tcp.win": range(1, 65535, 4099),
        },
      },
      {
        name: "tcp6",
        packet: { ...base, ip: { src: "2001:db8::1", dst: "2001:db8::2" }, tcp: {} },
        size: { range: [90, 120] },
        fields: { "ip.src": random("2001:db8::1", "2001:db8::ffff:ffff"), "ip.flow": seq(1, 7), "ip.ttl": seq(1) },
      },
      {
        name: "vlan",
        packet: { ...base, vlan: { id: 5, pcp: 3 }, udp: {} },
        fields: { "vlan.id": range(1, 4094, 7), "vlan.pcp": list(0, 7, 5), "udp.sport": seq(1) },
      },
      {
        name: "icmp",
        packet: { ...base, icmp: { id: 1 } },
        fields: { "icmp.id": random(0, 65535), "icmp.seq": seq(65000, 11) },
      },
      {
        name: "icmp6",
        packet: { ...base, ip: { src: "2001:db8::1", dst: "2001:db8::2" }, icmp: {} },
        size: 1200,
        fields: { "icmp.seq": seq(0), "ip.dst": range("2001:db8::1", "2001:db8::5") },
      },
      {
        name: "vxlan",
        packet: {
          ...base,
          vxlan: { vni: 1, inner: { ip: { src: "198.18.5.1", dst: "198.18.5.2" }, tcp: { dport: 7 } } },
        },
        size: [
          [200, 3],
          [1514, 1],
        ],
        fields: {
          "ip.src": range("198.18.0.1", "198.18.0.9"),
          "udp.sport": random(49152, 65535),
          "vxlan.vni": seq(16777214),
          "inner.eth.dst": list("02:00:00:00:00:09", "ff:ff:ff:ff:ff:ff"),
          "inner.ip.ttl": random(1, 255),
          "inner.tcp.sport": range(1000, 1003),
        },
      },
    ];
    const a = new Uint8Array(2048),
      b = new Uint8Array(2048);
    for (const [id, spec] of specs.entries()) {
      const fast = new StreamWriter(spec, id),
        slow = general(spec, id);
      expect((fast as unknown as { fast: unknown }).fast).not.toBeNull(); // every spec here takes the patches
      fast.prime(a, 0);
      slow.prime(b, 0);
      // packets in turn, then jumps (a restart, a thread's share, past 2^32) and in turn again
      const ks = [...Array(300).keys(), 5, 6, 7, 100000, 100001, 2 ** 32 + 1, 2 ** 32 + 2, 2 ** 40, 3, 4];
      for (const k of ks) {
        const len = fast.write(a, 0, k, 1.7e12 + k / 7);
        expect(slow.write(b, 0, k, 1.7e12 + k / 7)).toBe(len);
        if (Buffer.compare(a.subarray(0, len), b.subarray(0, len)) !== 0)
          throw new Error(`${spec.name}, packet ${k}: the patches differ from the general write`);
        const ip = spec.packet.vxlan ? 64 : spec.packet.vlan ? 18 : 14;
        checkSums(a, len, ip);
      }
    }
    // the rules' values at jumps, worked out here: a stepped range, a narrow sequence, a list
    const w = new StreamWriter(
      {
        name: "jumps",
        packet: { ...base, udp: {} },
        fields: { "udp.sport": range(1000, 1009, 3), "ip.ttl": seq(200, 7), "udp.dport": list(7, 8, 9) },
      },
      0,
    );
    w.prime(a, 0);
    for (const k of [0, 1, 2, 9, 10, 11, 12345, 12346, 2 ** 33 + 5, 2 ** 33 + 6]) {
      w.write(a, 0, k, 0);
      expect([be16(a, 34), a[22], be16(a, 36)]).toEqual([
        1000 + Number((BigInt(k) * 3n) % 10n),
        Number((200n + BigInt(k) * 7n) % 256n),
        [7, 8, 9][k % 3],
      ]);
    }
  });

  test("a callback may change any byte: the checksum follows", () => {
    const w = new StreamWriter(
      {
        name: "cb",
        packet: { ...base, udp: {} },
        size: 100,
        each: (u8, off, len, k) => {
          u8[off + len - 1] = k; // the payload's last byte
        },
      },
      0,
    );
    const buf = new Uint8Array(2048);
    w.prime(buf, 0);
    for (let k = 0; k < 3; k++) {
      const len = w.write(buf, 0, k, 0);
      expect(buf[len - 1]).toBe(k);
      checkSums(buf, len, 14);
    }
  });

  test("mistakes are one sentence naming the stream and the fix", () => {
    const bad: [StreamSpec, RegExp][] = [
      [
        { name: "a", packet: { ...base, udp: {} }, fields: { "ip.scr": range(1, 2) } },
        /^stream 'a': fields: no field 'ip.scr' in this packet \(it has .*ip\.src/,
      ],
      [
        { name: "b", packet: { ...base, udp: {} }, fields: { "udp.sport": range(1, 70000) } },
        /^stream 'b': fields.udp.sport: 70000 is not a value of this field \(0..65535\)/,
      ],
      [
        { name: "c", packet: { ...base, udp: {}, tcp: {} } },
        /^stream 'c': : give exactly one of udp, tcp, icmp, vxlan \(got udp, tcp\)/,
      ],
      [
        { name: "d", packet: { ...base, udp: {} }, size: 20 },
        /^stream 'd': size 20: expected a whole number of bytes 60..9000/,
      ],
      [
        { name: "e", packet: { eth: {}, ip: { src: "198.18.0.1", dst: "2001:db8::1" }, udp: {} } },
        /^stream 'e': ip: src and dst must both be IPv4 or both IPv6/,
      ],
      [
        { name: "f", packet: { ...base, udp: {} }, fields: { "ip.src": { between: 1 } as never } },
        /^stream 'f': fields.ip.src: expected range\(a, b\)/,
      ],
      [{ name: "g", packet: { ...base, udp: {} }, each: 5 as never }, /^stream 'g': each must be a function/],
      [
        { name: "h", packet: { ...base, udp: {} }, fields: 5 as never },
        /^stream 'h': fields: expected \{ "ip.src": range\(a, b\), ... \}$/,
      ],
      [{ name: "i", packet: { ...base, vlan: {} as never, udp: {} } }, /^stream 'i': vlan: expected \{ id: 0..4095/],
      [{ name: "j", packet: { ...base, vxlan: { inner: base } as never } }, /^stream 'j': vxlan: expected \{ vni:/],
      [
        { name: "k", packet: { ...base, udp: {} }, seed: "x" as never },
        /^stream 'k': seed: expected a whole number, got "x"$/,
      ],
      [
        { name: "l", packet: { eth: {}, ip: { src: 5, dst: "198.18.0.1" } as never, udp: {} } },
        /^stream 'l': ip: expected \{ src:/,
      ],
      [
        { name: "m", packet: { ...base, udp: { sport: "x" } as never } },
        /^stream 'm': udp.sport: expected a whole number 0..65535, got "x"$/,
      ],
    ];
    for (const [s, re] of bad) expect(() => new StreamWriter(s, 0)).toThrow(re);
    expect(() => new StreamWriter({ name: "a", packet: { ...base, udp: {} }, fields: { x: range(1, 2) } }, 0)).toThrow(
      StreamError,
    );
  });
});
