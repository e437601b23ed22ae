// Software offloads (src/packet/offload.ts): a TSO frame cut into segments must be what a NIC puts on
// the wire — each segment whole and checksummed, the payload intact in order, sequence numbers, IP
// ids and flags as TCP segmentation sets them; a partial checksum finished equals a full computation.
import { describe, expect, test } from "bun:test";
import { finish, fold, sum16 } from "../src/packet/checksum.ts";
import { IP4, IPPROTO_TCP, IPPROTO_UDP, put16, put32, writeIPv4 } from "../src/packet/ipv4.ts";
import { IP6 } from "../src/packet/ipv6.ts";
import { completeChecksum, tcpHeadersLen, tcpSegmentCount, writeTcpSegment } from "../src/packet/offload.ts";
import { TCP, TCP_CWR, TCP_FIN, TCP_PSH } from "../src/packet/tcp.ts";
import { udpChecksumOk, writeUdpHeader } from "../src/packet/udp.ts";

const TCP_OPTS = 12; // a timestamp option, as Linux sends
const THL = 20 + TCP_OPTS;

/** A TSO frame as a container's stack hands it over: headers once, a long payload, flags PSH|FIN|CWR. */
function tsoFrame(v6: boolean, payload: number, at = 64): { u8: Uint8Array; frame: number; len: number } {
  const l3 = v6 ? 40 : 20,
    len = 14 + l3 + THL + payload,
    u8 = new Uint8Array(at + len + 4096),
    f = at;
  u8.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, v6 ? 0x86 : 0x08, v6 ? 0xdd : 0x00], f);
  const ip = f + 14;
  if (v6) {
    u8[ip] = 0x60;
    put16(u8, ip + IP6.plen, THL + payload);
    u8[ip + IP6.next] = IPPROTO_TCP;
    u8[ip + IP6.hlim] = 64;
    for (let i = 0; i < 32; i++) u8[ip + IP6.src + i] = 0x20 + i;
  } else {
    writeIPv4(u8, ip, {
      src: 0xc6120001,
      dst: 0xc6120002,
      proto: IPPROTO_TCP,
      totalLen: 20 + THL + payload,
      id: 0xfffe,
    });
  }
  const t = ip + l3;
  put16(u8, t + TCP.sport, 40000);
  put16(u8, t + TCP.dport, 5001);
  put32(u8, t + TCP.seq, 0xfffff000); // wraps within the frame
  put32(u8, t + TCP.ack, 12345);
  u8[t + TCP.doff] = (THL / 4) << 4;
  u8[t + TCP.flags] = 0x10 | TCP_PSH | TCP_FIN | TCP_CWR;
  put16(u8, t + TCP.win, 500);
  u8.set([1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8], t + 20);
  for (let i = 0; i < payload; i++) u8[t + THL + i] = (i * 31 + 7) & 255;
  return { u8, frame: f, len };
}

/** Checksum of a TCP segment computed from scratch over a contiguous copy. */
function tcpSumOk(seg: Uint8Array, v6: boolean): boolean {
  const ip = 14,
    t = ip + (v6 ? 40 : 20),
    tcpLen = seg.length - t;
  const pseudo = v6 ? sum16(seg, ip + 8, 32, IPPROTO_TCP + tcpLen) : sum16(seg, ip + 12, 8, IPPROTO_TCP + tcpLen);
  return finish(sum16(seg, t, tcpLen, pseudo)) === 0;
}

describe("TCP segmentation in software", () => {
  for (const v6 of [false, true])
    for (const mss of [1398, 1001])
      test(`IPv${v6 ? 6 : 4}, mss ${mss}: segments as a NIC would cut them`, () => {
        const payload = 5000;
        const { u8, frame, len } = tsoFrame(v6, payload);
        const hlen = tcpHeadersLen(u8, frame, len);
        expect(hlen).toBe(14 + (v6 ? 40 : 20) + THL);
        const n = tcpSegmentCount(len, hlen, mss);
        expect(n).toBe(Math.ceil(payload / mss));
        const out = frame + len + 64,
          got: number[] = [];
        for (let i = 0; i < n; i++) {
          const plen = writeTcpSegment(u8, frame, len, hlen, mss, i, out);
          expect(plen).toBe(Math.min(mss, payload - i * mss));
          const seg = new Uint8Array(hlen + plen);
          seg.set(u8.subarray(out, out + hlen));
          seg.set(u8.subarray(frame + hlen + i * mss, frame + hlen + i * mss + plen), hlen);
          const ip = 14,
            t = ip + (v6 ? 40 : 20);
          if (v6) expect((seg[ip + 4] << 8) | seg[ip + 5]).toBe(THL + plen);
          else {
            expect((seg[ip + 2] << 8) | seg[ip + 3]).toBe(20 + THL + plen);
            expect((seg[ip + IP4.id] << 8) | seg[ip + IP4.id + 1]).toBe((0xfffe + i) & 0xffff);
            expect(finish(sum16(seg, ip, 20))).toBe(0);
          }
          const seq = ((seg[t + 4] << 24) | (seg[t + 5] << 16) | (seg[t + 6] << 8) | seg[t + 7]) >>> 0;
          expect(seq).toBe((0xfffff000 + i * mss) >>> 0);
          const fl = seg[t + TCP.flags];
          expect(!!(fl & (TCP_FIN | TCP_PSH))).toBe(i === n - 1);
          expect(!!(fl & TCP_CWR)).toBe(i === 0);
          expect([...seg.subarray(t + 20, t + THL)]).toEqual([...u8.subarray(frame + hlen - TCP_OPTS, frame + hlen)]); // options kept
          expect(tcpSumOk(seg, v6)).toBe(true);
          got.push(...seg.subarray(hlen));
        }
        expect(got.length).toBe(payload);
        expect(got).toEqual([...u8.subarray(frame + hlen, frame + len)]);
      });

  test("frames it cannot segment are refused, not mangled", () => {
    const { u8, frame, len } = tsoFrame(false, 100);
    u8[frame + 14 + IP4.proto] = IPPROTO_UDP;
    expect(tcpHeadersLen(u8, frame, len)).toBe(-1);
    const v6 = tsoFrame(true, 100);
    v6.u8[v6.frame + 14 + IP6.next] = 0; // a hop-by-hop extension header
    expect(tcpHeadersLen(v6.u8, v6.frame, v6.len)).toBe(-1);
    const arp = tsoFrame(false, 100);
    arp.u8[arp.frame + 12] = 0x08;
    arp.u8[arp.frame + 13] = 0x06;
    expect(tcpHeadersLen(arp.u8, arp.frame, arp.len)).toBe(-1);
    expect(tcpHeadersLen(u8, frame, 40)).toBe(-1); // cut short
  });
});

describe("partial checksums finished in software", () => {
  test("TCP: the field seeded with the pseudo-header sum, as Linux leaves it, becomes the full checksum", () => {
    const { u8, frame, len } = tsoFrame(false, 777);
    const t = frame + 34,
      tcpLen = len - 34;
    put16(u8, t + TCP.sum, fold(sum16(u8, frame + 26, 8, IPPROTO_TCP + tcpLen)));
    completeChecksum(u8, frame, len, 34, TCP.sum);
    expect(tcpSumOk(u8.slice(frame, frame + len), false)).toBe(true);
  });
  test("UDP: a sum that comes out 0 is sent as 0xffff", () => {
    const u8 = new Uint8Array(14 + 20 + 8 + 2);
    writeIPv4(u8, 14, { src: 0xc6120001, dst: 0xc6120002, proto: IPPROTO_UDP, totalLen: 30 });
    writeUdpHeader(u8, 34, 1, 2, 10);
    put16(u8, 40, fold(sum16(u8, 26, 8, IPPROTO_UDP + 10))); // the pseudo-header sum, as Linux seeds it
    // a payload word that makes the whole sum 0xffff, so its complement is 0
    put16(u8, 42, 0xffff - fold(sum16(u8, 34, 8)));
    completeChecksum(u8, 0, u8.length, 34, 6);
    expect((u8[40] << 8) | u8[41]).toBe(0xffff);
    expect(udpChecksumOk(u8, 14, 34)).toBe(true);
  });
});
