// Ports of one switch that differ in their virtio-net header (a kernel veth's port carries one, a
// container's shm port does not): the switch does what the header asks on the way to a port without
// one (a TSO frame cut into MTU segments, a partial checksum finished) and adds an empty header on
// the way to a port with one. Checked against checksums and payloads worked out here, from scratch.
import { afterEach, describe, expect, test } from "bun:test";
import { VIRTIO_NET, VNET_HDR } from "../ffi/tpacket.ts";
import { Fdb } from "../src/packet/fdb.ts";
import { openPort } from "../src/port/open.ts";
import type { Port } from "../src/port/port.ts";
import { createSharedRegion } from "../src/port/shm-region.ts";
import { NS_MOREFRAG } from "../src/ring/layout.ts";
import { SwitchCore } from "../src/switch/core.ts";
import { SW_CTR } from "../src/switch/layout.ts";

/** RFC 1071, written out here (not the code under test). */
function rfc1071(bytes: number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}
const be16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const be32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
/** Sum over a transport segment with its IPv4 pseudo header: 0 when its checksum is right. */
function l4Ok(f: Uint8Array, proto: number): boolean {
  const ihl = (f[14] & 0xf) * 4,
    l4 = 14 + ihl,
    l4len = be16(f, 16) - ihl;
  const pseudo = [...f.subarray(26, 34), 0, proto, l4len >> 8, l4len & 0xff];
  return rfc1071([...pseudo, ...f.subarray(l4, l4 + l4len)]) === 0;
}

/** Ethernet + IPv4 (20) + TCP (20) + payload, addresses in 198.18.0.0/15. */
function tcpFrame(payload: Uint8Array, seq: number): Uint8Array {
  const f = new Uint8Array(54 + payload.length);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
  f.set([0x45, 0, (40 + payload.length) >> 8, (40 + payload.length) & 0xff, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0], 14);
  f.set([198, 18, 0, 1, 198, 18, 0, 2], 26);
  f.set([0x9c, 0x40, 0x13, 0x89, seq >>> 24, (seq >> 16) & 0xff, (seq >> 8) & 0xff, seq & 0xff], 34);
  f.set([0, 0, 0, 0, 0x50, 0x19 /* FIN PSH ACK */, 0xff, 0xff], 42);
  f.set(payload, 54);
  const h = rfc1071([...f.subarray(14, 34)]);
  f[24] = h >> 8;
  f[25] = h & 0xff;
  return f;
}

const opened: Port[] = [];
afterEach(() => {
  for (const p of opened.splice(0)) p.close();
});

/** A switch of two ports: 0 with a virtio-net header (a veth's port, as the plugin opens them), 1
 * without (a shm port); everything from one goes to the other. Returns the far ends the test drives. */
function rig() {
  const region = createSharedRegion({ pipes: 2, bufSize: 8192, slots: 64 });
  const open = (n: string) => {
    const p = openPort(n, { region });
    opened.push(p);
    return p;
  };
  const inner = open("shm:v{0");
  const withHdr: Port = Object.assign(Object.create(inner), { hdrLen: VNET_HDR.size });
  const plain = open("shm:v{1");
  const far = [open("shm:v}0"), open("shm:v}1")];
  const core = SwitchCore.of([withHdr, plain], new Fdb(8), (_u8, _off, _len, src) => 1 - src);
  return { core, far };
}

/** Put frames (each [bytes, flags]) on a far end's tx ring. */
function send(p: Port, frames: [Uint8Array, number][]): void {
  const tx = p.txRings[0];
  for (const [b, flags] of frames) {
    const j = tx.head;
    tx.u8.set(b, tx.buf(j));
    tx.setLenFlags(j, b.length, flags);
    tx.advance(tx.next(j));
  }
  p.txsync();
}
function take(p: Port): Uint8Array[] {
  p.rxsync();
  const rx = p.rxRings[0],
    out: Uint8Array[] = [];
  for (let i = rx.head; i !== rx.tail; i = rx.next(i)) out.push(rx.packet(i).slice());
  rx.advance(rx.tail);
  p.rxsync();
  return out;
}

describe("switch ports with and without a virtio-net header", () => {
  test("a TSO frame to a port without a header: MTU segments, each checksummed, the payload whole and in order", () => {
    const { core, far } = rig();
    const payload = Uint8Array.from({ length: 2500 }, (_, i) => (i * 7 + 3) & 0xff);
    const frame = tcpFrame(payload, 1_000_000);
    const hdr = new Uint8Array(10);
    hdr[VNET_HDR.flags] = VIRTIO_NET.F_NEEDS_CSUM;
    hdr[VNET_HDR.gso_type] = VIRTIO_NET.GSO_TCPV4;
    hdr.set([54, 0], VNET_HDR.hdr_len);
    hdr.set([1000 & 0xff, 1000 >> 8], VNET_HDR.gso_size);
    hdr.set([34, 0], VNET_HDR.csum_start);
    hdr.set([16, 0], VNET_HDR.csum_offset);
    send(far[0], [[Uint8Array.from([...hdr, ...frame]), 0]]);
    core.round();
    const segs = take(far[1]);
    expect(segs.map((s) => s.length)).toEqual([1054, 1054, 554]);
    const joined: number[] = [];
    segs.forEach((s, k) => {
      expect(be16(s, 16)).toBe(s.length - 14); // IPv4 total length
      expect(rfc1071([...s.subarray(14, 34)])).toBe(0); // IPv4 header checksum
      expect(be32(s, 38)).toBe(1_000_000 + k * 1000); // sequence number
      expect(s[47] & 0x09).toBe(k === 2 ? 0x09 : 0); // FIN and PSH on the last segment only
      expect(l4Ok(s, 6)).toBe(true);
      joined.push(...s.subarray(54));
    });
    expect(Uint8Array.from(joined)).toEqual(payload);
    expect(core.portCounts(1).tx).toBe(3);
  });

  test("a partial UDP checksum is finished; a frame to a port with a header gets an empty one", () => {
    const { core, far } = rig();
    const data = Uint8Array.from({ length: 101 }, (_, i) => (i * 13) & 0xff);
    const f = new Uint8Array(42 + data.length);
    f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
    f.set([0x45, 0, (28 + data.length) >> 8, (28 + data.length) & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0], 14);
    f.set([198, 18, 0, 1, 198, 18, 0, 2], 26);
    f.set([0x30, 0x39, 0x13, 0x89, (8 + data.length) >> 8, (8 + data.length) & 0xff], 34);
    f.set(data, 42);
    // partial: the field holds the folded pseudo-header sum, as the sending kernel leaves it
    let ps = (198 << 8) + 18 + 1 + (198 << 8) + 18 + 2 + 17 + 8 + data.length;
    while (ps > 0xffff) ps = (ps & 0xffff) + (ps >>> 16);
    f[40] = ps >> 8;
    f[41] = ps & 0xff;
    expect(l4Ok(f, 17)).toBe(false);
    const hdr = new Uint8Array(10);
    hdr[VNET_HDR.flags] = VIRTIO_NET.F_NEEDS_CSUM;
    hdr.set([34, 0], VNET_HDR.csum_start);
    hdr.set([6, 0], VNET_HDR.csum_offset);
    send(far[0], [[Uint8Array.from([...hdr, ...f]), 0]]);
    core.round();
    const [got] = take(far[1]);
    expect(got.length).toBe(f.length);
    expect(l4Ok(got, 17)).toBe(true);
    expect(got.subarray(0, 40)).toEqual(f.subarray(0, 40));
    expect(got.subarray(42)).toEqual(f.subarray(42));

    // the other way: the header is added, empty, and the frame follows byte for byte
    send(far[1], [[f, 0]]);
    core.round();
    const [back] = take(far[0]);
    expect(back.length).toBe(10 + f.length);
    expect(back.subarray(0, 10)).toEqual(new Uint8Array(10));
    expect(back.subarray(10)).toEqual(f);
  });

  test("a multi-slot packet between them is dropped and counted, not sent with a header in its middle", () => {
    const { core, far } = rig();
    const part = tcpFrame(new Uint8Array(100), 1);
    send(far[1], [
      [part, NS_MOREFRAG],
      [new Uint8Array(100).fill(9), 0],
    ]);
    core.round();
    expect(take(far[0])).toEqual([]);
    expect(core.portCounts(0).dropped).toBe(2);
    expect(core.ctr[SW_CTR.dropped]).toBe(2);
  });
});
