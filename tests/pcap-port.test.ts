// pcap: ports: pktgen writes a capture the independent parser reads back byte for byte; rxseq
// replays a txseq capture in order (and loops); frames larger than a buffer travel as NS_MOREFRAG.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { ipv4ChecksumOk } from "../src/packet/ipv4.ts";
import { parsePcap } from "../src/packet/pcap.ts";
import { udpChecksumOk } from "../src/packet/udp.ts";
import { openPort } from "../src/port/open.ts";
import { NS_MOREFRAG, POLLIN } from "../src/ring/layout.ts";
import { pktgen, summary } from "./helpers/pktgen.ts";

setDefaultTimeout(60_000);

const dir = mkdtempSync(`${tmpdir()}/bunmap-pcap-`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("pcap: ports", () => {
  test("pktgen tx writes a capture: every record the packet it sent, checksums valid", async () => {
    const r = await pktgen([
      "-i",
      `pcap:${dir}/a.pcap`,
      "-f",
      "tx",
      "-n",
      "1000",
      "-l",
      "100",
      "-s",
      "198.18.0.1:1000-198.18.0.1:1009",
    ]).done;
    expect(r.code).toBe(0);
    expect(summary(r.out, "Sent").pkts).toBe(1000);
    const p = parsePcap(readFileSync(`${dir}/a.pcap`));
    expect(p.records.length).toBe(1000);
    const ports = new Set<number>();
    for (const rec of p.records) {
      expect(rec.caplen).toBe(100);
      const f = p.data.subarray(rec.offset, rec.offset + rec.caplen);
      expect(ipv4ChecksumOk(f, 14)).toBe(true);
      expect(udpChecksumOk(f, 14, 34)).toBe(true);
      ports.add((f[34] << 8) | f[35]);
    }
    expect([...ports].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => 1000 + i));
  });

  test("rxseq replays a txseq capture in order; loop=2 replays it twice", async () => {
    await pktgen(["-i", `pcap:${dir}/seq.pcap`, "-f", "txseq", "-n", "5000"]).done;
    const r = await pktgen(["-i", `pcap:${dir}/seq.pcap`, "-f", "rxseq", "-W"]).done;
    expect(summary(r.out, "Received").pkts).toBe(5000);
    expect(r.out).toContain("Sequence errors: 0 gaps (0 packets missing), 0 out of order");
    const twice = await pktgen(["-i", `pcap:${dir}/seq.pcap@conf:loop=2`, "-f", "rx", "-W"]).done;
    expect(summary(twice.out, "Received").pkts).toBe(10000);
  });

  test("frames larger than a buffer: written from NS_MOREFRAG slots, read back as slots", async () => {
    const w = await pktgen(["-i", `pcap:${dir}/big.pcap`, "-f", "tx", "-n", "50", "-l", "3000", "-F", "2"]).done;
    expect(w.code).toBe(0);
    const p = parsePcap(readFileSync(`${dir}/big.pcap`));
    expect(p.records.map((x) => x.caplen)).toEqual(Array(50).fill(3000));
    const port = openPort(`pcap:${dir}/big.pcap`);
    expect(port.poll(POLLIN, 0)).toBe(POLLIN);
    const rx = port.rxRings[0];
    expect([
      rx.len(rx.head),
      rx.flags(rx.head) & NS_MOREFRAG,
      rx.len(rx.next(rx.head)),
      rx.flags(rx.next(rx.head)) & NS_MOREFRAG,
    ]).toEqual([2048, NS_MOREFRAG, 952, 0]);
    port.close();
  });

  test("bad files and options are one clear error", () => {
    expect(() => openPort(`pcap:${dir}/none.pcap@conf:mode=read`)).toThrow(/no such file/);
    writeFileSync(`${dir}/junk.pcap`, "not a capture at all, sorry");
    expect(() => openPort(`pcap:${dir}/junk.pcap`)).toThrow(/not a pcap file/);
    expect(() => openPort(`pcap:${dir}/x.pcap@conf:speed=9`)).toThrow(/'speed' is not one of/);
    expect(() => openPort(`pcap:${dir}/x.pcap@conf:mode=both`)).toThrow(/read or write/);
  });
  test("an existing file opens for reading; sending on it is an error, and the file is left as it was", () => {
    const f = `${dir}/kept.pcap`;
    const w = openPort(`pcap:${f}`);
    const tx = w.txRings[0];
    tx.u8.fill(7, tx.buf(tx.head), tx.buf(tx.head) + 60);
    tx.setLenFlags(tx.head, 60, 0);
    tx.advance(tx.next(tx.head));
    w.txsync();
    w.close();
    const before = readFileSync(f);
    const r = openPort(`pcap:${f}`); // exists: read mode
    const t = r.txRings[0];
    t.setLenFlags(t.head, 60, 0);
    t.advance(t.next(t.head));
    expect(() => r.txsync()).toThrow(
      `pcap:${f}: opened for reading (the file exists), so packets sent on it would be lost; to overwrite the file, open it with @conf:mode=write`,
    );
    r.close();
    expect(readFileSync(f)).toEqual(before);
  });
});
