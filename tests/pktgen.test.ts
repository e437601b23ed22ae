// bun run pktgen end to end over shm pipes between processes: counts, bytes, sequence checking
// (through a lossy forwarder run by the test), ping/pong RTT, rate limiting, threads, restarts,
// dumps, pcap templates, and one clear error line for bad input.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";

setDefaultTimeout(60_000);

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseArgs, UsageError } from "../src/app/pktgen/args.ts";
import { threadPortName, withConf, withSubsystem } from "../src/app/pktgen/portname.ts";
import { SeqCheck } from "../src/app/pktgen/rx.ts";
import { norm, rateLine, txOutput } from "../src/app/report.ts";
import { pcapGlobalHeader, pcapRecordHeader } from "../src/packet/pcap.ts";
import { openPort } from "../src/port/open.ts";
import { POLLIN } from "../src/ring/layout.ts";
import { PKTGEN, pktgen, started, summary } from "./helpers/pktgen.ts";

const tag = `pg${process.pid}`;
let seq = 0;
const region = (s: string) => `${tag}${s}${seq++}`;
const RATE_LINE =
  /^\d{3}\.\d{6} main_thread \[\d+\] [\d.]+ [KMGT]?pps \([\d.]+ [KMGT]?pkts [\d.]+ [KMGT]?bps in \d+ usec\) [\d.]+ avg_batch \d+ min_space$/m;

afterAll(() => {
  expect(readdirSync("/dev/shm").filter((f) => f.startsWith(`bunmap-${tag}`))).toEqual([]);
});

describe("flags", () => {
  test("defaults and pkt-gen's getopt forms", () => {
    const c = parseArgs([
      "-i",
      "shm:a{0",
      "-ftx",
      "-l",
      "128",
      "-l",
      "64",
      "-zZ",
      "-n1000",
      "-s",
      "198.18.0.1:10-198.18.0.4:12",
    ]);
    if (c === "help") throw new Error();
    expect([c.func, c.size, c.minSize, c.npackets, c.burst, c.options & (512 | 1024)]).toEqual([
      "tx",
      128,
      64,
      1000,
      512,
      1536,
    ]);
    expect([c.src.start, c.src.end, c.src.port0, c.src.port1]).toEqual([0xc6120001, 0xc6120004, 10, 12]);
    expect([c.dst.start, c.dst.port0]).toEqual([0x0a010001, 1234]);
    const p = parseArgs(["-i", "shm:a{0", "-f", "ping"]);
    expect(p !== "help" && p.burst).toBe(1);
    const r = parseArgs(["-i", "shm:a{0", "-f", "tx", "-R", "30000"]);
    expect(r !== "help" && r.burst).toBe(100); // burst cut to rate/300, as pkt-gen
    expect(parseArgs(["-h"])).toBe("help");
    const v6 = parseArgs(["-i", "shm:a{0", "-6", "-d", "[2001:2::5]:99-[2001:2::9]:99"]);
    if (v6 === "help") throw new Error();
    expect([v6.src.v6, v6.src.start, v6.dst.start, v6.dst.end, v6.dst.port0]).toEqual([true, 1, 5, 9, 99]); // default src 2001:2::1
  });
  test("bad values are refused, not read as 0", () => {
    for (const [args, re] of [
      [["-f", "tx"], /missing -i/],
      [["-i", "shm:a{0", "-n", "12x"], /-n 12x: not a whole number/],
      [["-i", "shm:a{0", "-l", "70000"], /out of range 16\.\.65536/],
      [["-i", "shm:a{0", "-l", "64", "-l", "128"], /minimum size 128/],
      [["-i", "shm:a{0", "-s", "198.18.0.9-198.18.0.1"], /below its start/],
      [["-i", "shm:a{0", "-s", "300.1.1.1"], /bad IPv4/],
      [["-i", "shm:a{0", "-H", "8"], /0, 10 or 12/],
      [["-i", "shm:a{0", "-f", "ping", "-6"], /IPv4 only/],
      [["-i", "shm:a{0", "-6", "-s", "[2001:2::1:99"], /\[addr\]:port/],
      [["-i", "shm:a{0", "-x"], /unknown option -x/],
      [["-i", "shm:a{0", "-b"], /needs a value/],
      [["-i", "shm:a{0", "-D", "1:2:3"], /bad MAC/],
      [["-i", "shm:a{0", "-o", "16"], /OPT_TS/],
      [["-i", "shm:a{0", "-o", "32"], /indirect/],
    ] as [string[], RegExp][]) {
      expect(() => parseArgs(args)).toThrow(UsageError);
      expect(() => parseArgs(args)).toThrow(re);
    }
  });
  test("-p: thread i opens ring i (shm, netmap) or queue q+i (xdp); -C becomes @conf", () => {
    const cfg = (ifname: string, threads: number) => ({
      ...(parseArgs(["-i", ifname, "-p", String(threads)]) as Exclude<ReturnType<typeof parseArgs>, "help">),
    });
    expect([0, 1].map((i) => threadPortName(cfg("shm:a{0@conf:rings=2", 2), i))).toEqual([
      "shm:a{0-0@conf:rings=2",
      "shm:a{0-1@conf:rings=2",
    ]);
    expect([0, 1].map((i) => threadPortName(cfg("netmap:eth0", 2), i))).toEqual(["netmap:eth0-0", "netmap:eth0-1"]);
    expect([0, 1].map((i) => threadPortName(cfg("xdp:eth0@2", 2), i))).toEqual(["xdp:eth0@2", "xdp:eth0@3"]);
    expect([0, 1].map((i) => threadPortName(cfg("xdp:eth0@conf:slots=512", 2), i))).toEqual([
      "xdp:eth0@0@conf:slots=512",
      "xdp:eth0@1@conf:slots=512",
    ]);
    expect(threadPortName(cfg("shm:a{0-1", 1), 0)).toBe("shm:a{0-1");
    expect(withConf("vale0:x", "1024,512,2")).toBe("vale0:x@conf:tx_slots=1024,rx_slots=512,tx_rings=2,rx_rings=2");
  });
  test("bad invocations print exactly one error line and exit non-zero", async () => {
    const cases = [
      ["-i", "nosuchif0"], // a bare name (packet:nosuchif0 here): never a real interface in a test
      ["-i", "shm:x{0", "-f", "nope"],
      ["-i", "shm:x{99", "-f", "tx"],
      ["-i", "netmap:eth0"],
      ["-q"],
    ];
    for (const args of cases) {
      const r = await pktgen(args).done;
      expect(r.code).not.toBe(0);
      const lines = r.err
        .trim()
        .split("\n")
        .filter((l) => !/^\d{3}\.\d{6} /.test(l) && !l.startsWith("pktgen: no /dev/netmap here"));
      expect(lines.length).toBe(1);
      expect(lines[0]).toMatch(/^pktgen: /);
    }
  });
});

describe("report format (pkt-gen compatible)", () => {
  test("norm and tx_output", () => {
    expect(norm(2053000, true)).toBe("2.053 M");
    expect(norm(999, true)).toBe("999.000 ");
    expect(norm(2053000, false)).toBe("2053000 ");
    expect(txOutput({ pkts: 1000, bytes: 60000, events: 10 }, 2, "Sent", true, 0)).toBe(
      "Sent 1000 packets 60000 bytes 10 events 60 bytes each in 2.00 seconds.\nSpeed: 500.000 pps Bandwidth: 240.000 Kbps (raw 240.000 Kbps). Average batch: 100.00 pkts\n",
    );
    expect(txOutput({ pkts: 1000, bytes: 60000, events: 10 }, 2, "Sent", true, 192)).toContain("(raw 336.000 Kbps)");
    expect(txOutput({ pkts: 0, bytes: 0, events: 0 }, 1, "Received", true, 0)).toBe("Received nothing.\n");
    expect(rateLine(2055000, 2055000 * 60, 51906, 1000994, 704, true, 0)).toBe(
      "2.053 Mpps (2.055 Mpkts 986.400 Mbps in 1000994 usec) 39.59 avg_batch 704 min_space",
    );
  });
  test("sequence checker: gaps, loss and reordering as pkt-gen's rxseq", () => {
    const c = new SeqCheck();
    for (const s of [5, 6, 7, 10, 11, 9, 12]) c.check(s);
    // 7 -> 10: gap (8, 9 missing); 9 while expecting 12: out of order, expect 10 next; 12: gap (10, 11)
    expect([c.gaps, c.missing, c.ooo]).toEqual([2, 4, 1]);
  });
});

describe("end to end over shm pipes", () => {
  test("tx -> rx: every packet counted, bytes match, periodic lines in pkt-gen format", async () => {
    const r = region("basic");
    const rx = pktgen(["-i", `shm:${r}{0`, "-f", "rx", "-n", "3000000", "-T", "300"]);
    await started(rx);
    const tx = await pktgen(["-i", `shm:${r}}0`, "-f", "tx", "-n", "3000000", "-T", "300"]).done;
    const rr = await rx.done;
    expect(tx.code).toBe(0);
    expect(rr.code).toBe(0);
    expect(tx.out).toContain(
      `Sending on shm:${r}}0: 1 queues, 1 threads and 1 cpus.\n10.0.0.1 -> 10.1.0.1 (00:00:00:00:00:00 -> ff:ff:ff:ff:ff:ff)`,
    );
    const s = summary(tx.out, "Sent"),
      g = summary(rr.out, "Received");
    expect(s.pkts).toBe(3000000);
    expect(g.pkts).toBe(3000000);
    expect(g.bytes).toBe(3000000 * 60);
    expect(s.size).toBe(60);
    expect(tx.err).toMatch(RATE_LINE);
  });

  test("tx's template survives buffers the reader swaps away: every frame received is the first, byte for byte", async () => {
    const r = region("swap");
    const reader = openPort(`shm:${r}{0`),
      spare = openPort(`shm:${r}{1`); // pipe 1's tx buffers: spares of the same region, never sent
    const ring = reader.rxRings[0],
      st = spare.txRings[0];
    const N = 30000;
    const tx = pktgen(["-i", `shm:${r}}0`, "-f", "tx", "-n", String(N)]);
    let got = 0,
      bad = 0,
      swapped = 0,
      j = 0,
      first: Uint8Array | null = null;
    const until = performance.now() + 60_000;
    try {
      while (got < N && performance.now() < until) {
        reader.poll(POLLIN, 100);
        let h = ring.head;
        for (let k = ring.space(); k > 0; k--) {
          const frame = ring.u8.subarray(ring.buf(h), ring.buf(h) + ring.len(h));
          if (!first) first = frame.slice();
          else if (Buffer.compare(frame, first) !== 0) bad++;
          if (got % 3 === 0) {
            // a garbage buffer goes to the sender's slot (NS_BUF_CHANGED): it must put the template back
            st.u8.fill(0xee, st.buf(j), st.buf(j) + st.bufSize);
            ring.swapTo(h, st, j);
            j = st.next(j);
            swapped++;
          }
          got++;
          h = ring.next(h);
        }
        ring.advance(h);
        reader.rxsync();
      }
      expect((await tx.done).code).toBe(0);
      expect([got, bad, first?.length]).toEqual([N, 0, 60]);
      expect(swapped).toBe(N / 3);
    } finally {
      reader.close();
      spare.close();
    }
  });

  test("txseq -> rxseq with ranges and random sizes: no gaps, nothing out of order", async () => {
    const r = region("seq");
    const rx = pktgen(["-i", `shm:${r}{0`, "-f", "rxseq", "-n", "500000"]);
    await started(rx);
    const tx = await pktgen([
      "-i",
      `shm:${r}}0`,
      "-f",
      "txseq",
      "-n",
      "500000",
      "-l",
      "1500",
      "-l",
      "64",
      "-s",
      "198.18.0.1:1000-198.18.0.200:1100",
      "-d",
      "198.19.0.1",
    ]).done;
    const rr = await rx.done;
    expect(summary(tx.out, "Sent").pkts).toBe(500000);
    expect(summary(rr.out, "Received").pkts).toBe(500000);
    expect(summary(tx.out, "Sent").bytes).toBe(summary(rr.out, "Received").bytes);
    expect(rr.out).toContain("Sequence errors: 0 gaps (0 packets missing), 0 out of order");
  });

  test("rxseq finds the drops and swaps a forwarder makes", async () => {
    const r = region("lossy");
    const rx = pktgen(["-i", `shm:${r}}1`, "-f", "rxseq", "-n", String(20000 - 20)]);
    const fwdIn = openPort(`shm:${r}{0`),
      fwdOut = openPort(`shm:${r}{1`);
    await started(rx);
    const tx = pktgen(["-i", `shm:${r}}0`, "-f", "txseq", "-n", "20000", "-b", "64"]);
    // forward seq by seq: drop every x999, swap the pair (x500, x501)
    const a = fwdIn.rxRings[0],
      b = fwdOut.txRings[0];
    const seqAt = (buf: number) => new DataView(a.u8.buffer).getUint32(buf + 42, false);
    let handled = 0,
      held = -1;
    const deadline = Date.now() + 20_000;
    while (handled < 20000 && Date.now() < deadline) {
      if (!(fwdIn.poll(POLLIN, 100) & POLLIN)) continue;
      fwdOut.txsync();
      while (!a.empty() && b.space() >= 2) {
        const i = a.head,
          s = seqAt(a.buf(i));
        if (s % 1000 === 999) {
          /* drop */
        } else if (s % 1000 === 500) {
          held = i;
          a.advance(a.next(i));
          handled++;
          continue;
        } else if (held >= 0) {
          a.swapTo(i, b, b.head);
          b.advance(b.next(b.head));
          a.swapTo(held, b, b.head);
          b.advance(b.next(b.head));
          held = -1;
          a.advance(a.next(i));
          handled++;
          continue;
        } else {
          a.swapTo(i, b, b.head);
          b.advance(b.next(b.head));
        }
        a.advance(a.next(i));
        handled++;
      }
      // a held slot must not be released before it is forwarded
      if (held < 0) fwdIn.rxsync();
      fwdOut.txsync();
    }
    const [t, rr] = [await tx.done, await rx.done];
    fwdIn.close();
    fwdOut.close();
    expect(summary(t.out, "Sent").pkts).toBe(20000);
    expect(summary(rr.out, "Received").pkts).toBe(19980);
    // per drop a gap of 1, except the last: seq 19999 is the final packet, nothing after it reveals it;
    // per swap: gap (1), out of order, gap (1)
    expect(rr.out).toContain("Sequence errors: 59 gaps (59 packets missing), 20 out of order");
    // the first problems are logged, then rate-limited to 2 lines a second (pkt-gen's RD(2, ...))
    expect(rr.err).toMatch(
      /rxseq_body \[\d+\] Sequence GAP: exp 500 found 501\n.* Sequence OUT OF ORDER: exp 502 found 500\n/,
    );
    expect(rr.err.match(/Sequence (GAP|OUT)/g)!.length).toBeLessThanOrEqual(
      2 * Math.ceil(summary(rr.out, "Received").secs + 1),
    );
  });

  test("ping/pong: RTT min <= avg <= max and a histogram over all replies", async () => {
    const r = region("ping");
    const pong = pktgen(["-i", `shm:${r}}0`, "-f", "pong", "-n", "3000"]);
    await started(pong);
    const ping = await pktgen(["-i", `shm:${r}{0`, "-f", "ping", "-n", "3000"]).done;
    expect((await pong.done).code).toBe(0);
    expect(ping.code).toBe(0);
    const m = /RTT over 3000 packets: min (\d+) av (\d+) max (\d+) ns \((\d+) replies, (\d+) lost\)/.exec(ping.err);
    expect(m).not.toBeNull();
    const [min, av, max, replies, lost] = m!.slice(1).map(Number);
    expect(min).toBeGreaterThan(0);
    expect(min).toBeLessThanOrEqual(av);
    expect(av).toBeLessThanOrEqual(max);
    expect([replies, lost]).toEqual([3000, 0]);
    const h = /k: (\d+) \.\. (\d+)\n\t([ \d]+)\n/.exec(ping.err.slice(ping.err.indexOf("RTT over")));
    expect(h).not.toBeNull();
    expect(
      h![3]
        .trim()
        .split(/\s+/)
        .map(Number)
        .reduce((a, b) => a + b, 0),
    ).toBe(3000);
    expect(Number(h![1])).toBeLessThanOrEqual(min);
  });

  test("-R 1000000 sends at 1 Mpps within 2%", async () => {
    const r = region("rate");
    const rx = pktgen(["-i", `shm:${r}{0`, "-f", "rx", "-n", "1500000"]);
    await started(rx);
    const tx = await pktgen(["-i", `shm:${r}}0`, "-f", "tx", "-n", "1500000", "-R", "1000000"]).done;
    await rx.done;
    const s = summary(tx.out, "Sent");
    const pps = s.pkts / s.secs;
    expect(Math.abs(pps - 1e6) / 1e6).toBeLessThan(0.02);
  });

  test("-p 2 over a two-ring pipe: one ring per thread, -n divided, all delivered", async () => {
    const r = region("mt");
    const rx = pktgen(["-i", `shm:${r}{0@conf:rings=2`, "-f", "rx", "-p", "2", "-n", "1000001"]);
    await started(rx);
    const tx = await pktgen(["-i", `shm:${r}}0`, "-f", "tx", "-p", "2", "-n", "1000001"]).done;
    const rr = await rx.done;
    expect(tx.out).toContain("2 queues, 2 threads");
    expect(summary(tx.out, "Sent").pkts).toBe(1000001);
    expect(summary(rr.out, "Received").pkts).toBe(1000001);
  });

  test("a receiver stopped mid-stream and restarted: the two together got every packet once", async () => {
    const r = region("restart");
    const rx1 = pktgen(["-i", `shm:${r}{0`, "-f", "rxseq"]);
    await started(rx1);
    const tx = pktgen(["-i", `shm:${r}}0`, "-f", "txseq", "-n", "300000", "-R", "200000"]);
    await Bun.sleep(700);
    rx1.proc.kill("SIGINT");
    const a = await rx1.done;
    const rx2 = pktgen(["-i", `shm:${r}{0`, "-f", "rxseq", "-W"]);
    const t = await tx.done;
    const b = await rx2.done;
    const n1 = summary(a.out, "Received").pkts,
      n2 = summary(b.out, "Received").pkts;
    expect(n1).toBeGreaterThan(0);
    expect(n2).toBeGreaterThan(0);
    expect(n1 + n2).toBe(300000);
    expect(summary(t.out, "Sent").pkts).toBe(300000);
    expect(a.out).toContain("0 gaps");
    expect(b.out).toContain("0 gaps");
  });

  test("-X dumps packets; -P sends the first packet of a pcap file verbatim", async () => {
    const r = region("pcap");
    const dir = mkdtempSync(`${tmpdir()}/bunmap-`);
    const frame = Uint8Array.from({ length: 64 }, (_, i) => (i * 3) & 255);
    const file = new Uint8Array(24 + 16 + 64);
    file.set(pcapGlobalHeader());
    pcapRecordHeader(new DataView(file.buffer), 24, 1, 0, 64, 64);
    file.set(frame, 40);
    writeFileSync(`${dir}/one.pcap`, file);
    const rx = pktgen(["-i", `shm:${r}{0`, "-f", "rx", "-n", "3", "-X"]);
    await started(rx);
    const tx = await pktgen(["-i", `shm:${r}}0`, "-f", "tx", "-n", "3", "-P", `${dir}/one.pcap`]).done;
    const rr = await rx.done;
    expect(tx.code).toBe(0);
    expect(rr.out).toMatch(/^ring 0x[0-9a-f]+ cur +0 \[buf +\d+ flags 0x0000 len +64\]$/m);
    expect(rr.out).toMatch(/^ring 0x[0-9a-f]+ cur +2 \[buf +\d+ flags 0x0002 len +64\]$/m); // NS_REPORT on a batch's last slot
    expect(rr.out).toContain("    0: 00 03 06 09 0c 0f 12 15 18 1b 1e 21 24 27 2a 2d ");
    expect(rr.out.match(/^ +48: /gm)?.length).toBe(3);
    const bad = await pktgen(["-i", `shm:${r}}0`, "-f", "tx", "-P", `${dir}/missing.pcap`]).done;
    expect(bad.err).toContain("no such file");
    rmSync(dir, { recursive: true, force: true });
  });

  test("-F: multi-slot packets (NS_MOREFRAG) arrive whole and in sequence", async () => {
    const r = region("frag");
    const rx = pktgen(["-i", `shm:${r}{0`, "-f", "rxseq", "-n", "20000"]);
    await started(rx);
    const tx = await pktgen(["-i", `shm:${r}}0`, "-f", "txseq", "-n", "20000", "-F", "3", "-l", "4000", "-l", "100"])
      .done;
    const rr = await rx.done;
    const s = summary(tx.out, "Sent"),
      g = summary(rr.out, "Received");
    expect([s.pkts, g.pkts]).toEqual([20000, 20000]);
    expect(g.bytes).toBe(s.bytes);
    expect(g.events).toBeLessThan(g.pkts); // batches, not one sync per packet
    expect(rr.out).toContain("Sequence errors: 0 gaps (0 packets missing), 0 out of order");
  });

  test("-a pins the datapath thread to that CPU, not the main thread", async () => {
    if (navigator.hardwareConcurrency < 2) return;
    const rx = pktgen(["-i", `shm:${region("pin")}{0`, "-f", "rx", "-a", "1", "-c", "2"]);
    await started(rx);
    const { readdirSync, readFileSync } = await import("node:fs");
    const tasks = readdirSync(`/proc/${rx.proc.pid}/task`).map((t) => ({
      comm: readFileSync(`/proc/${rx.proc.pid}/task/${t}/comm`, "utf8").trim(),
      cpus: /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${rx.proc.pid}/task/${t}/status`, "utf8"))?.[1],
    }));
    rx.proc.kill("SIGINT");
    await rx.done;
    // threads the worker starts later (its JIT) inherit the mask, as on any Linux thread
    expect(tasks.find((t) => t.comm === "Worker")?.cpus).toBe("1");
    expect(tasks.find((t) => t.comm === "bun")?.cpus).not.toBe("1");
  });

  test("-W (as pkt-gen): the receiver waits for traffic without limit, then ends a second after it stops", async () => {
    const r = region("idle");
    const rx = pktgen(["-i", `shm:${r}{0`, "-f", "rx", "-W"]);
    await started(rx);
    await Bun.sleep(2500); // longer than -W's second: still waiting for the first packet
    expect(rx.proc.exitCode).toBeNull();
    const tx = await pktgen(["-i", `shm:${r}}0`, "-f", "tx", "-n", "1000"]).done;
    const t = performance.now();
    const rr = await rx.done;
    expect(rr.code).toBe(0);
    expect(summary(tx.out, "Sent").pkts).toBe(1000);
    expect(summary(rr.out, "Received").pkts).toBe(1000);
    expect(rr.out).toContain("Kernel drops: 0 packets");
    expect(performance.now() - t).toBeLessThan(4000);
  });
});

describe("what pkt-gen users type, and what they meet", () => {
  test("a bare interface name is netmap:IF where /dev/netmap exists, else packet:IF, said once", () => {
    const notes: string[] = [];
    const note = (m: string) => notes.push(m);
    expect(withSubsystem("eth0", true, note)).toBe("netmap:eth0");
    expect(withSubsystem("eth0-1", true, note)).toBe("netmap:eth0-1");
    expect(notes).toEqual([]);
    expect(withSubsystem("eth0", false, note)).toBe("packet:eth0");
    expect(withSubsystem("eth0@conf:rx_slots=512", false, note)).toBe("packet:eth0@conf:rx_slots=512");
    for (const named of ["shm:a{0", "vale0:x", "xdp:eth0@1", "pcap:/tmp/f@conf:mode=write"])
      expect(withSubsystem(named, false, note)).toBe(named);
    expect(notes).toEqual([
      "no /dev/netmap here: -i eth0 opens packet:eth0 (AF_PACKET on the same interface)",
      "no /dev/netmap here: -i eth0@conf:rx_slots=512 opens packet:eth0@conf:rx_slots=512 (AF_PACKET on the same interface)",
    ]);
  });

  test("a vxlan port with no other end is refused at open; nothing is reported sent", async () => {
    const r = await pktgen(["-i", "vxlan:42", "-f", "tx", "-n", "1000"]).done;
    expect(r.code).toBe(1);
    expect(r.out).not.toContain("Sent 1000");
    expect(r.err).toContain(
      "vxlan:42: a vxlan port needs its other end: @conf:remote=A[+B...] or @conf:group=G,dev=IF",
    );
  });

  test("rx stops when the reader of its output goes away (| head), as pkt-gen on SIGPIPE", async () => {
    const t0 = Date.now();
    const sh = Bun.spawn(
      ["sh", "-c", `"${process.execPath}" "${PKTGEN}" -i "shm:${region("ep")}{0" -f rx | head -c 1 >/dev/null`],
      { stdout: "pipe", stderr: "pipe", timeout: 30_000, killSignal: "SIGKILL" },
    );
    expect(await sh.exited).toBe(0); // the shell waits for pktgen: it ended by itself
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});
