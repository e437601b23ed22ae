// The ring view against netmap's ABI: a ring laid out by hand with the documented offsets
// (struct netmap_ring header 256 B, slots of 16 B at +256, buf_ofs relative to the ring), then
// read and driven through Ring. Every offset and constant from the reference is checked.
import { describe, expect, test } from "bun:test";
import {
  NIF,
  NM_CACHE_ALIGN,
  NR_FORWARD,
  NR_TIMESTAMP,
  NS_BUF_CHANGED,
  NS_FORWARD,
  NS_INDIRECT,
  NS_MOREFRAG,
  NS_NO_LEARN,
  NS_PORT_MASK,
  NS_PORT_SHIFT,
  NS_REPORT,
  NS_TXMON,
  RING,
  SLOT,
} from "../src/ring/layout.ts";
import { copyBytes, Ring } from "../src/ring/ring.ts";

describe("netmap ABI constants (sys/net/netmap.h, x86_64 gcc)", () => {
  test("struct netmap_ring offsets", () => {
    expect(RING).toEqual({
      buf_ofs: 0,
      num_slots: 8,
      nr_buf_size: 12,
      ringid: 16,
      dir: 18,
      head: 20,
      cur: 24,
      tail: 28,
      flags: 32,
      ts: 40,
      offset_mask: 56,
      buf_align: 64,
      sem: 128,
      slot: 256,
      size: 256,
    });
  });
  test("struct netmap_slot and struct netmap_if offsets", () => {
    expect(SLOT).toEqual({ buf_idx: 0, len: 4, flags: 6, ptr: 8, size: 16 });
    expect(NIF).toEqual({
      ni_name: 0,
      ni_version: 16,
      ni_flags: 20,
      ni_tx_rings: 24,
      ni_rx_rings: 28,
      ni_bufs_head: 32,
      ni_host_tx_rings: 36,
      ni_host_rx_rings: 40,
      ni_spare1: 44,
      ring_ofs: 56,
    });
  });
  test("slot and ring flags", () => {
    expect([NS_BUF_CHANGED, NS_REPORT, NS_FORWARD, NS_NO_LEARN, NS_INDIRECT, NS_MOREFRAG, NS_TXMON]).toEqual([
      1, 2, 4, 8, 16, 32, 64,
    ]);
    expect([NS_PORT_SHIFT, NS_PORT_MASK, NR_TIMESTAMP, NR_FORWARD, NM_CACHE_ALIGN]).toEqual([8, 0xff00, 2, 4, 128]);
  });
});

/** A ring as the kernel would map it: header at `at`, slots after it, buffers at `at + bufOfs`. */
function handRing(slots = 8, bufSize = 2048, at = 512) {
  const bufOfs = 256 + slots * 16 + 256; // buffers after the slots, relative to the ring
  const mem = new ArrayBuffer(at + bufOfs + (slots + 4) * bufSize);
  const dv = new DataView(mem);
  dv.setBigInt64(at + 0, BigInt(bufOfs), true);
  dv.setUint32(at + 8, slots, true);
  dv.setUint32(at + 12, bufSize, true);
  dv.setUint16(at + 16, 3, true); // ringid
  dv.setUint16(at + 18, 1, true); // dir rx
  dv.setUint32(at + 20, 2, true); // head
  dv.setUint32(at + 24, 2, true); // cur
  dv.setUint32(at + 28, 6, true); // tail
  for (let i = 0; i < slots; i++) {
    const s = at + 256 + 16 * i;
    dv.setUint32(s + 0, i + 2, true); // buf_idx
    dv.setUint16(s + 4, 60 + i, true); // len
    dv.setUint16(s + 6, i === 3 ? NS_MOREFRAG : 0, true);
  }
  return { mem, dv, at, bufOfs, slots, bufSize };
}

describe("Ring over a hand-built netmap ring", () => {
  test("reads header fields at the documented offsets", () => {
    const h = handRing();
    const r = new Ring(h.mem, h.at);
    expect([r.numSlots, r.bufSize, r.ringid, r.dir, r.head, r.cur, r.tail]).toEqual([8, 2048, 3, 1, 2, 2, 6]);
    expect(r.bufBase).toBe(h.at + h.bufOfs);
    expect([r.bufIdx(5), r.len(5), r.flags(3)]).toEqual([7, 65, NS_MOREFRAG]);
    expect(r.buf(5)).toBe(h.at + h.bufOfs + 7 * 2048);
  });
  test("space, empty, next and advance follow nm_ring_* semantics, wrapping at num_slots", () => {
    const h = handRing();
    const r = new Ring(h.mem, h.at);
    expect(r.space()).toBe(4);
    expect(r.empty()).toBe(false);
    expect(r.next(7)).toBe(0);
    r.advance(6);
    expect(r.empty()).toBe(true);
    expect(h.dv.getUint32(h.at + 20, true)).toBe(6); // head written where the kernel reads it
    expect(h.dv.getUint32(h.at + 24, true)).toBe(6); // cur too
    r.tail = 1; // tail behind head: wrapped
    expect(r.space()).toBe(3);
  });
  test("badHead: head may only move forward from the last sync, up to tail, across the wrap", () => {
    const h = handRing(); // head 2, tail 6, 8 slots
    const r = new Ring(h.mem, h.at);
    expect(r.badHead(2)).toBeNull(); // not moved
    r.head = 6;
    expect(r.badHead(2)).toBeNull(); // up to tail
    r.head = 7;
    expect(r.badHead(2)).toBe("head 7 outside [2, 6] (num_slots 8)");
    r.head = 1;
    expect(r.badHead(2)).toMatch(/outside/); // backwards
    r.tail = 1;
    r.head = 0; // wrapped: last 6, tail 1
    expect(r.badHead(6)).toBeNull();
    r.head = 9;
    expect(r.badHead(6)).toMatch(/head 9 outside/);
  });
  test("setLenFlags writes len and flags at +4/+6 in one store", () => {
    const h = handRing();
    const r = new Ring(h.mem, h.at);
    r.setLenFlags(1, 1514, NS_MOREFRAG | NS_REPORT);
    expect(h.dv.getUint16(h.at + 256 + 16 + 4, true)).toBe(1514);
    expect(h.dv.getUint16(h.at + 256 + 16 + 6, true)).toBe(NS_MOREFRAG | NS_REPORT);
    expect(h.dv.getUint32(h.at + 256 + 16, true)).toBe(3); // buf_idx untouched
  });
  test("swapTo exchanges buffers as netmap bridge's rings_move (flags, MOREFRAG, len)", () => {
    // two rings in one region sharing one buffer pool, as two ports on one netmap allocator
    const mem = new ArrayBuffer(4096 + 32 * 2048);
    const dv = new DataView(mem);
    for (const [at, first] of [
      [0, 2],
      [1024, 20],
    ]) {
      dv.setBigInt64(at, BigInt(4096 - at), true);
      dv.setUint32(at + 8, 8, true);
      dv.setUint32(at + 12, 2048, true);
      for (let i = 0; i < 8; i++) dv.setUint32(at + 256 + 16 * i, first + i, true);
    }
    const rx = new Ring(mem, 0),
      tx = new Ring(mem, 1024);
    expect(rx.bufBase).toBe(tx.bufBase);
    rx.setLenFlags(3, 63, NS_MOREFRAG);
    tx.setLenFlags(0, 0, NS_REPORT);
    rx.swapTo(3, tx, 0);
    expect([tx.bufIdx(0), tx.len(0)]).toEqual([5, 63]);
    expect(tx.flags(0)).toBe(NS_REPORT | NS_BUF_CHANGED | NS_MOREFRAG);
    expect(rx.bufIdx(3)).toBe(20);
    expect(rx.flags(3) & NS_BUF_CHANGED).toBe(NS_BUF_CHANGED);
    rx.setLenFlags(4, 60, 0);
    rx.swapTo(4, tx, 0); // no MOREFRAG on the source: cleared on the destination
    expect(tx.flags(0) & NS_MOREFRAG).toBe(0);
    expect([tx.bufIdx(0), rx.bufIdx(4)]).toEqual([6, 5]);
  });
  test("copyTo / copyBytes copy exactly len bytes between regions, small and large", () => {
    const a = handRing(),
      b = handRing();
    const ra = new Ring(a.mem, a.at),
      rb = new Ring(b.mem, b.at);
    for (const len of [60, 61, 1514]) {
      const src = ra.buf(2);
      for (let i = 0; i < len; i++) ra.u8[src + i] = (i * 7 + len) & 255;
      ra.setLen(2, len);
      ra.copyTo(2, rb, 5);
      expect(rb.len(5)).toBe(len);
      expect(Buffer.from(rb.packet(5)).equals(Buffer.from(ra.packet(2)))).toBe(true);
    }
    const s = new Uint8Array(64).map((_, i) => i),
      d = new Uint8Array(64);
    copyBytes(s, new Uint32Array(s.buffer), 1, d, new Uint32Array(d.buffer), 3, 10); // unaligned: bulk path
    expect([...d.subarray(3, 13)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(d[13]).toBe(0);
    // one region: a native move, overlapping or not
    const m = new Uint8Array(4096).map((_, i) => i & 255),
      m32 = new Uint32Array(m.buffer);
    copyBytes(m, m32, 0, m, m32, 2048, 1500);
    expect(
      Buffer.from(m.subarray(2048, 3548)).equals(Buffer.from(Uint8Array.from({ length: 1500 }, (_, i) => i & 255))),
    ).toBe(true);
    // across regions, jumbo: the bulk path
    const big = new Uint8Array(9000).map((_, i) => (i * 7) & 255),
      out = new Uint8Array(9000);
    copyBytes(big, new Uint32Array(big.buffer), 0, out, new Uint32Array(out.buffer), 0, 9000);
    expect(Buffer.from(out).equals(Buffer.from(big))).toBe(true);
  });
  test("misaligned rings and rings with under 2 slots are refused", () => {
    const h = handRing();
    expect(() => new Ring(h.mem, h.at + 4)).toThrow(/misaligned/);
    h.dv.setUint32(h.at + 8, 1, true);
    expect(() => new Ring(h.mem, h.at)).toThrow(/num_slots/);
  });
});
