// src/packet/layers.ts: header offsets through VLAN tags, IPv4 options and IPv6 extension headers,
// fragments, and the symmetric flow hash; frames built byte by byte here, offsets worked out by hand.
import { describe, expect, test } from "bun:test";
import { flowHash, Layers } from "../src/packet/layers.ts";

/** A frame from parts: numbers are bytes, [n, width] a big-endian field, strings hex. */
function frame(...parts: (number | [number, number] | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else if (typeof p === "string") for (let i = 0; i < p.length; i += 2) out.push(parseInt(p.slice(i, i + 2), 16));
    else for (let k = p[1] - 1; k >= 0; k--) out.push((p[0] >>> (8 * k)) & 255);
  }
  return Uint8Array.from(out);
}
const MACS = "020000000002" + "020000000001";
const ipv4 = (proto: number, src: string, dst: string, ihlWords = 5, frag = 0) =>
  [
    [0x40 | ihlWords, 1],
    [0, 1],
    [20 + 8, 2],
    [1, 2],
    [frag, 2],
    [64, 1],
    [proto, 1],
    [0, 2],
    src,
    dst,
    "00".repeat((ihlWords - 5) * 4),
  ] as (number | [number, number] | string)[];
const ipv6 = (next: number, src: string, dst: string) =>
  [[0x60000000, 4], [8, 2], [next, 1], [64, 1], src, dst] as (number | [number, number] | string)[];
const ports = (sp: number, dp: number) => [[sp, 2], [dp, 2], "00000000"] as (number | [number, number] | string)[];
const A4 = "c6120001",
  B4 = "c6120002";
const A6 = `20010002${"0".repeat(23)}1`,
  B6 = `20010002${"0".repeat(23)}2`;

const at = (f: Uint8Array) => {
  const l = new Layers();
  const ok = l.locate(f, 0, f.length);
  return {
    ok,
    type: l.ethType,
    vlans: l.vlans,
    family: l.family,
    l3: l.l3,
    l4: l.l4,
    proto: l.proto,
    fragment: l.fragment,
  };
};

describe("header offsets", () => {
  test("IPv4 UDP; IPv4 with options behind a VLAN tag", () => {
    expect(at(frame(MACS, [0x0800, 2], ...ipv4(17, A4, B4), ...ports(1000, 53)))).toEqual({
      ok: true,
      type: 0x0800,
      vlans: 0,
      family: 4,
      l3: 14,
      l4: 34,
      proto: 17,
      fragment: false,
    });
    // 14 + 4 (tag) = 18; IHL 6 words = 24 bytes: TCP at 42
    expect(at(frame(MACS, [0x8100, 2], [0x0064, 2], [0x0800, 2], ...ipv4(6, A4, B4, 6), ...ports(1, 2)))).toEqual({
      ok: true,
      type: 0x0800,
      vlans: 1,
      family: 4,
      l3: 18,
      l4: 42,
      proto: 6,
      fragment: false,
    });
  });
  test("QinQ IPv6 with hop-by-hop (8 bytes) and destination options (16 bytes) before TCP", () => {
    const f = frame(
      MACS,
      [0x88a8, 2],
      [0x0010, 2],
      [0x8100, 2],
      [0x0020, 2],
      [0x86dd, 2],
      ...ipv6(0, A6, B6),
      [60, 1],
      [0, 1],
      "000000000000", // hop-by-hop: next dst-opts, 1 unit of 8 bytes
      [6, 1],
      [1, 1],
      "0000000000000000000000000000", // dst-opts: next TCP, 2 units
      ...ports(443, 5555),
    );
    // 14 + 8 (two tags) = 22; 22 + 40 + 8 + 16 = 86
    expect(at(f)).toEqual({ ok: true, type: 0x86dd, vlans: 2, family: 6, l3: 22, l4: 86, proto: 6, fragment: false });
  });
  test("fragments: the first has its transport header, the others none", () => {
    const first6 = frame(MACS, [0x86dd, 2], ...ipv6(44, A6, B6), [17, 1], 0, [0x0001, 2], [7, 4], ...ports(9, 10));
    expect(at(first6)).toMatchObject({ ok: true, l3: 14, l4: 62, proto: 17, fragment: true });
    const later6 = frame(MACS, [0x86dd, 2], ...ipv6(44, A6, B6), [17, 1], 0, [185 << 3, 2], [7, 4], "0011223344");
    expect(at(later6)).toMatchObject({ ok: false, l3: 14, l4: -1, proto: 17, fragment: true });
    const first4 = frame(MACS, [0x0800, 2], ...ipv4(17, A4, B4, 5, 0x2000), ...ports(9, 10)); // MF
    expect(at(first4)).toMatchObject({ ok: true, l4: 34, fragment: true });
    const later4 = frame(MACS, [0x0800, 2], ...ipv4(17, A4, B4, 5, 0x0020), ...ports(9, 10)); // offset 32 units
    expect(at(later4)).toMatchObject({ ok: false, l3: 14, l4: -1, proto: 17, fragment: true });
  });
  test("not IP, or cut short: no transport header, nothing read past the end", () => {
    expect(at(frame(MACS, [0x0806, 2], "0001080006040001"))).toMatchObject({
      ok: false,
      type: 0x0806,
      family: 0,
      l3: -1,
    });
    expect(at(frame(MACS, [0x0800, 2], "4500001c"))).toMatchObject({ ok: false, family: 0, l4: -1 });
    // IHL 15 words (60 bytes) in a 20-byte header; options filling the frame to its end, nothing after
    expect(at(frame(MACS, [0x0800, 2], `4f00001c0001000040060000${A4}${B4}`))).toMatchObject({ ok: false, l4: -1 });
    expect(at(frame(MACS, [0x0800, 2], ...ipv4(6, A4, B4, 15)))).toMatchObject({ ok: false, l3: 14, l4: -1 });
    expect(at(frame("0200"))).toMatchObject({ ok: false, type: 0 });
  });
});

describe("symmetric flow hash", () => {
  const hashOf = (f: Uint8Array) => {
    const l = new Layers();
    l.locate(f, 0, f.length);
    return flowHash(f, 0, l);
  };
  const udp4 = (s: string, d: string, sp: number, dp: number) =>
    frame(MACS, [0x0800, 2], ...ipv4(17, s, d), ...ports(sp, dp));
  test("both directions of a flow hash alike; another port, address or protocol does not", () => {
    expect(hashOf(udp4(A4, B4, 1000, 53))).toBe(hashOf(udp4(B4, A4, 53, 1000)));
    expect(hashOf(udp4(A4, A4, 1000, 53))).toBe(hashOf(udp4(A4, A4, 53, 1000))); // same address, ports decide
    expect(hashOf(udp4(A4, B4, 1001, 53))).not.toBe(hashOf(udp4(A4, B4, 1000, 53)));
    const v6 = (s: string, d: string, sp: number, dp: number) =>
      frame(MACS, [0x86dd, 2], ...ipv6(6, s, d), ...ports(sp, dp));
    expect(hashOf(v6(A6, B6, 443, 5555))).toBe(hashOf(v6(B6, A6, 5555, 443)));
    const arp = (m: string) => frame(m, [0x0806, 2], "0001");
    expect(hashOf(arp(MACS))).toBe(hashOf(arp("020000000001" + "020000000002")));
  });
  test("4096 flows spread over 8 buckets within 20% of even", () => {
    const buckets = new Array(8).fill(0);
    for (let i = 0; i < 4096; i++) buckets[hashOf(udp4(A4, B4, 1024 + i, 80)) % 8]++;
    for (const n of buckets) expect(Math.abs(n - 512)).toBeLessThan(0.2 * 512);
  });
});
