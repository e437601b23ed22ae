// Packet bytes against references built independently (a separate Python implementation of
// pkt-gen's initialize_packet and RFC 1071), and every emitted variant re-verified from scratch.
import { describe, expect, test } from "bun:test";
import { checksum, csumUpdate16, csumUpdate32, fold, sum16 } from "../src/packet/checksum.ts";
import { formatMac, parseMac } from "../src/packet/ethernet.ts";
import { formatIPv4, ipv4ChecksumOk, parseIPv4 } from "../src/packet/ipv4.ts";
import { formatIPv6, parseIPv6 } from "../src/packet/ipv6.ts";
import { parsePcap, pcapGlobalHeader, pcapRecordHeader } from "../src/packet/pcap.ts";
import { udpChecksumOk } from "../src/packet/udp.ts";
import { type AddrRange, UdpFlow } from "../src/packet/udpflow.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const r4 = (a: string, p = 1234, b = a, q = p): AddrRange => ({
  v6: false,
  start: parseIPv4(a),
  end: parseIPv4(b),
  port0: p,
  port1: q,
});

// python3: struct-packed Ethernet/IPv4/UDP, csum() = RFC 1071, payload = pkt-gen's text, last byte NUL
const REF_60 =
  "ffffffffffff00000000000008004510002e000040004011ae87c6120001c612000204d204d2001a9dac6e65746d617020706b742d67656e20444900";
const REF_100 =
  "02000000000202000000000108004510005600004000401126850a0000010a01000104d204d200426fec6e65746d617020706b742d67656e20444952454354207061796c6f61640a687474703a2f2f696e666f2e6965742e756e6970692e69742f7e6c00";

function flow(over: Partial<ConstructorParameters<typeof UdpFlow>[0]> = {}) {
  return new UdpFlow({
    v6: false,
    srcMac: new Uint8Array(6),
    dstMac: parseMac("ff:ff:ff:ff:ff:ff"),
    src: r4("198.18.0.1"),
    dst: r4("198.18.0.2"),
    size: 60,
    minSize: 0,
    randomSrc: false,
    randomDst: false,
    stampBytes: 0,
    vnetHdr: 0,
    seed: 7,
    ...over,
  });
}

describe("pkt-gen default frame", () => {
  test("60-byte template matches the reference byte for byte", () => {
    expect(hex(flow().frame)).toBe(REF_60);
  });
  test("100-byte template with MACs and 10.x addresses matches", () => {
    const f = flow({
      size: 100,
      src: r4("10.0.0.1"),
      dst: r4("10.1.0.1"),
      srcMac: parseMac("02:00:00:00:00:01"),
      dstMac: parseMac("02:00:00:00:00:02"),
    });
    expect(hex(f.frame)).toBe(REF_100);
  });
  test("emit() on a fixed flow reproduces the template's checksums", () => {
    const f = flow({ stampBytes: 4 });
    const buf = new Uint8Array(2048);
    f.fill(buf, 0);
    f.emit(buf, 0, 0xdeadbeef, 0, 0, 1); // a stamped sequence number, checksums recomputed around it
    expect(hex(buf.subarray(42, 46))).toBe("deadbeef");
    expect(ipv4ChecksumOk(buf, 14)).toBe(true);
    expect(udpChecksumOk(buf, 14, 34)).toBe(true);
  });
});

describe("per-packet variation keeps both checksums valid", () => {
  test("ranges advance port first, then address, and wrap (pkt-gen update_addresses)", () => {
    const f = flow({ src: r4("198.18.0.1", 100, "198.18.0.2", 101), dst: r4("198.18.1.1", 7) });
    const buf = new Uint8Array(2048);
    f.fill(buf, 0);
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      f.emit(buf, 0);
      seen.push(
        `${formatIPv4(((buf[26] << 24) | (buf[27] << 16) | (buf[28] << 8) | buf[29]) >>> 0)}:${(buf[34] << 8) | buf[35]}`,
      );
      expect(ipv4ChecksumOk(buf, 14)).toBe(true);
      expect(udpChecksumOk(buf, 14, 34)).toBe(true);
    }
    expect(seen).toEqual(["198.18.0.1:100", "198.18.0.1:101", "198.18.0.2:100", "198.18.0.2:101", "198.18.0.1:100"]);
  });

  test("random sizes stay in [min, max) and lengths/checksums follow", () => {
    const f = flow({ size: 1500, minSize: 64, randomSrc: true, randomDst: true, stampBytes: 4 });
    const buf = new Uint8Array(2048);
    f.fill(buf, 0);
    const sizes = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const len = f.emit(buf, 0, i * 2654435761, 0, 0, 1);
      expect(len).toBeGreaterThanOrEqual(64);
      expect(len).toBeLessThan(1500);
      sizes.add(len);
      expect((buf[16] << 8) | buf[17]).toBe(len - 14); // IP total length
      expect((buf[38] << 8) | buf[39]).toBe(len - 34); // UDP length
      expect(ipv4ChecksumOk(buf, 14)).toBe(true);
      expect(udpChecksumOk(buf, 14, 34)).toBe(true);
    }
    expect(sizes.size).toBeGreaterThan(500);
  });

  test("IPv6 flow: UDP checksum over the v6 pseudo-header verifies, addresses range in the low 32 bits", () => {
    const hi = parseIPv6("2001:db8::1");
    const src: AddrRange = { v6: true, start: 1, end: 3, hi6: hi, port0: 5000, port1: 5000 };
    const dst: AddrRange = { v6: true, start: 2, end: 2, hi6: parseIPv6("2001:db8::2"), port0: 6000, port1: 6000 };
    const f = flow({ v6: true, src, dst, size: 90, minSize: 70 });
    const buf = new Uint8Array(2048);
    f.fill(buf, 0);
    expect((buf[12] << 8) | buf[13]).toBe(0x86dd);
    for (let i = 0; i < 50; i++) {
      const len = f.emit(buf, 0);
      expect((buf[18] << 8) | buf[19]).toBe(len - 54); // payload length
      expect(udpChecksumOk(buf, 14, 54, true)).toBe(true);
    }
    expect(formatIPv6(buf, 22)).toMatch(/^2001:db8::[123]$/);
  });

  test("virtio-net header prefix shifts the frame and counts in the length", () => {
    const f = flow({ vnetHdr: 10 });
    expect(f.fixedLen).toBe(70);
    expect(hex(f.frame.subarray(10))).toBe(REF_60);
    expect(hex(f.frame.subarray(0, 10))).toBe("00".repeat(10));
  });

  test("too-small sizes are refused with the minimum", () => {
    expect(() => flow({ size: 40 })).toThrow(/needs 42/);
    expect(() =>
      flow({
        size: 60,
        stampBytes: 12,
        v6: true,
        src: { ...r4("1.1.1.1"), v6: true, hi6: new Uint8Array(16) },
        dst: { ...r4("1.1.1.1"), v6: true, hi6: new Uint8Array(16) },
      }),
    ).toThrow(/needs 74/);
  });
});

describe("checksum primitives", () => {
  test("RFC 1071 example and incremental updates agree with recomputation", () => {
    const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(checksum(b, 0, 8)).toBe(~0xddf2 & 0xffff); // RFC 1071 section 3 sums to 0xddf2
    const c0 = checksum(b, 0, 8);
    b[2] = 0x12;
    b[3] = 0x34;
    expect(csumUpdate16(c0, 0xf203, 0x1234)).toBe(checksum(b, 0, 8));
    const c1 = checksum(b, 0, 8);
    b.set([1, 2, 3, 4], 4);
    expect(csumUpdate32(c1, 0xf4f5f6f7, 0x01020304)).toBe(checksum(b, 0, 8));
  });
  test("odd lengths pad with a zero byte", () => {
    expect(checksum(Uint8Array.from([0xab]), 0, 1)).toBe(~0xab00 & 0xffff);
  });
});

describe("addresses", () => {
  test("IPv4, IPv6 and MAC round trips and errors", () => {
    expect(formatIPv4(parseIPv4("198.18.255.7"))).toBe("198.18.255.7");
    expect(() => parseIPv4("198.18.0")).toThrow(/bad IPv4/);
    expect(() => parseIPv4("1.2.3.256")).toThrow(/bad IPv4/);
    expect(formatIPv6(parseIPv6("2001:db8:0:0:0:0:0:1"))).toBe("2001:db8::1");
    expect(formatIPv6(parseIPv6("::"))).toBe("::");
    expect(formatIPv6(parseIPv6("fe80::1:2"))).toBe("fe80::1:2");
    expect(() => parseIPv6("1::2::3")).toThrow(/bad IPv6/);
    expect(() => parseIPv6("12345::")).toThrow(/bad IPv6/);
    expect(formatMac(parseMac("2:0:0:a:b:FF"))).toBe("02:00:00:0a:0b:ff");
    expect(() => parseMac("02:00:00:00:00")).toThrow(/bad MAC/);
  });
});

describe("pcap files", () => {
  test("write then parse gives back the records", () => {
    const pkt = flow().frame;
    const out = new Uint8Array(24 + 2 * (16 + pkt.length));
    out.set(pcapGlobalHeader());
    const dv = new DataView(out.buffer);
    let off = 24;
    for (const sec of [1, 2]) {
      pcapRecordHeader(dv, off, sec, 500, pkt.length, pkt.length);
      out.set(pkt, off + 16);
      off += 16 + pkt.length;
    }
    const p = parsePcap(out);
    expect(p.linktype).toBe(1);
    expect(p.records.map((r) => r.sec)).toEqual([1, 2]);
    expect(hex(out.subarray(p.records[1].offset, p.records[1].offset + p.records[1].caplen))).toBe(REF_60);
    expect(() => parsePcap(out.subarray(0, out.length - 3))).toThrow(/truncated/);
    expect(() => parsePcap(new Uint8Array(24))).toThrow(/not a pcap/);
  });
});

describe("checksum sums, wide path", () => {
  test("sum16 equals the byte-by-byte sum at every alignment and length", () => {
    const buf = new Uint8Array(4096 + 8);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 17) & 255;
    const slow = (u8: Uint8Array, off: number, len: number) => {
      let s = 0;
      for (let i = 0; i + 1 < len; i += 2) s += (u8[off + i] << 8) | u8[off + i + 1];
      if (len & 1) s += u8[off + len - 1] << 8;
      return s;
    };
    for (const off of [0, 1, 2, 3, 4, 6, 7])
      for (const len of [0, 1, 63, 64, 65, 66, 67, 100, 1399, 1400, 1401, 4000]) {
        expect(fold(sum16(buf, off, len, 5))).toBe(fold(slow(buf, off, len) + 5));
        // a view that starts inside its buffer
        const sub = buf.subarray(2);
        expect(fold(sum16(sub, off, len))).toBe(fold(slow(sub, off, len)));
      }
  });
});
