// The generator against things with known answers, on veths in namespaces the test makes
// (198.18.0.0/15 inside the frames only): the NDR of a port shaped by tc's tbf to 10 Mbit/s (12500
// frames of 100 B a second); delay and loss through the link emulator (tlem, 1 ms,
// 5% loss) as the generator measures them, against the same taken from tcpdump captures on both
// sides of the emulator. Timing aims that load can spoil are printed; the assertions leave room.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { compileProfile } from "../src/gen/profile.ts";
import { parsePcap } from "../src/packet/pcap.ts";
import { destroyPair, inNs, makePair, type Pair, privilegedUnavailable } from "./helpers/netns.ts";
import { type Captured, capturedBy, startCapture, u32At } from "./helpers/tcpdump.ts";

setDefaultTimeout(180_000);
const repo = `${import.meta.dir}/..`;
const why = privilegedUnavailable();
const noTc = why ?? (Bun.spawnSync(["tc", "-V"]).exitCode === 0 ? null : "tc (iproute2) is not installed");
const noDump = why ?? (Bun.spawnSync(["tcpdump", "--version"]).exitCode === 0 ? null : "tcpdump is not installed");
if (noTc) console.warn(`SKIP gen NDR test: ${noTc}`);
if (noDump) console.warn(`SKIP gen tlem test: ${noDump}`);
const pairs: Pair[] = [];
const dir = mkdtempSync(`${tmpdir()}/bunmap-gennet-`);
afterAll(() => {
  for (const p of pairs) destroyPair(p);
  rmSync(dir, { recursive: true, force: true });
});
const sh = (cmd: string[]) => {
  const r = Bun.spawnSync(cmd, { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString().trim()}`);
};
const profile = (name: string, body: string) => {
  writeFileSync(`${dir}/${name}.ts`, `export default ${body};\n`);
  return `${dir}/${name}.ts`;
};

describe.skipIf(!!noTc)("the throughput search", () => {
  test("NDR of a veth shaped by tbf to 10 Mbit/s: 12500 frames of 100 B a second (aim 2%: printed; never above it)", async () => {
    const p = makePair(`gn${process.pid % 10000}`);
    pairs.push(p);
    sh(["ip", "-n", p.b, "link", "set", p.ifB, "netns", p.a]); // both ends in one namespace
    sh(["ip", "-n", p.a, "link", "set", p.ifB, "up"]);
    sh([
      "ip",
      "netns",
      "exec",
      p.a,
      "tc",
      "qdisc",
      "add",
      "dev",
      p.ifA,
      "root",
      "tbf",
      "rate",
      "10mbit",
      "burst",
      "3kb",
      "latency",
      "5ms",
    ]);
    const file = profile(
      "ndr",
      `{ streams: [{ name: "a", packet: { ip: { src: "198.18.0.1", dst: "198.18.1.1" }, udp: { dport: 9 } }, size: 100, rate: { pps: 20000 } }] }`,
    );
    const g = inNs(p.a, [
      `${repo}/src/app/pktgen/main.ts`,
      "--profile",
      file,
      "-f",
      "tx",
      "-i",
      `packet:${p.ifA}@conf:qdisc_bypass=0,tx_slots=64`, // through the qdisc, a short ring before it
      "--rx",
      `packet:${p.ifB}`,
      "--search",
      "ndr",
      "--trial",
      "2",
      "--precision",
      "1",
      "--json",
    ]);
    const out = await new Response(g.stdout).text();
    expect({ code: await g.exited, err: await new Response(g.stderr).text() }).toEqual({ code: 0, err: "" });
    const last = JSON.parse(out.trim().split("\n").at(-1) as string);
    console.log(
      `NDR through tbf 10 Mbit/s, 100 B frames: ${last.ndr.toFixed(1)} pps (12500 set: ${(((last.ndr - 12500) / 12500) * 100).toFixed(2)}%)`,
    );
    // never above what the shaper passes (its buffers may add 1%); below it, how far is the machine's
    // (a stall of the sending thread overflows the shaper's queue in a trial): the aim, 2%, is met on
    // a quiet machine (-1.9% and 0% measured), -5.6% seen with a CI run beside it: printed, bounded loosely
    expect(last.ndr).toBeLessThanOrEqual(12500 * 1.03);
    expect(last.ndr).toBeGreaterThan(12500 * 0.7);
    const trials = out
      .trim()
      .split("\n")
      .filter((l) => l.startsWith('{"trial"'))
      .map((l) => JSON.parse(l));
    expect(trials.length).toBeGreaterThan(3);
    for (const t of trials) expect(t.pass).toBe(t.lossPct === 0); // NDR: a trial passes only without loss
  });
});

describe.skipIf(!!noDump)("delay and loss through the link emulator", () => {
  test("the generator's p50 latency (aim 20 us; asserted 100) and its loss (0.5 points) against tcpdump's on both sides", async () => {
    // G --(a0|a1)-- T (tlem) --(b1|b0)-- G: the generator sends on a0 and receives on b0
    const p1 = makePair(`gt${process.pid % 10000}x`),
      p2 = makePair(`gt${process.pid % 10000}y`);
    pairs.push(p1, p2);
    const [G, T] = [p1.a, p1.b];
    sh(["ip", "-n", p2.a, "link", "set", p2.ifA, "netns", T]);
    sh(["ip", "-n", T, "link", "set", p2.ifA, "up"]);
    sh(["ip", "-n", p2.b, "link", "set", p2.ifB, "netns", G]);
    sh(["ip", "-n", G, "link", "set", p2.ifB, "up"]);
    const ca = await startCapture(T, p1.ifB, "in", `${dir}/a.pcap`, "udp", 80),
      cb = await startCapture(G, p2.ifB, "in", `${dir}/b.pcap`, "udp", 80);
    const tl = inNs(T, [
      `${repo}/src/app/tlem/main.ts`,
      "-i",
      `packet:${p1.ifB}`,
      "-i",
      `packet:${p2.ifA}`,
      "-D",
      "1m",
      "-L",
      "0.05",
      "--seed",
      "7",
      "-w",
      "0",
    ]);
    const r = tl.stderr.getReader();
    let s = "";
    while (!s.includes("Ready")) s += new TextDecoder().decode((await r.read()).value);
    r.releaseLock();
    const file = profile(
      "tlem",
      `{ streams: [{ name: "a", packet: { ip: { src: "198.18.0.1", dst: "198.18.1.1" }, udp: { dport: 9 } }, size: 200, rate: { pps: 1000 } }] }`,
    );
    const g = inNs(G, [
      `${repo}/src/app/pktgen/main.ts`,
      "--profile",
      file,
      "-f",
      "tx",
      "-i",
      `packet:${p1.ifA}`,
      "--rx",
      `packet:${p2.ifB}`,
      "-n",
      "3000",
      "--json",
    ]);
    const out = await new Response(g.stdout).text();
    expect(await g.exited).toBe(0);
    await Bun.sleep(300);
    tl.kill("SIGINT");
    await Promise.all([tl.exited, ca.stop(), cb.stop()]);
    const gen = JSON.parse(out.trim().split("\n").at(-1) as string);
    // the captures: frames by their signature's sequence number (offset 14 + 20 + 8 + 4)
    const bySeq = u32At(46, (d) => d[42] === 0xb3 && d[43] === 0x4d);
    const ta = capturedBy(`${dir}/a.pcap`, bySeq),
      tb = capturedBy(`${dir}/b.pcap`, bySeq);
    expect(ta.size).toBe(3000); // every frame reached the emulator
    const delays: number[] = [];
    for (const [seq, t] of tb) delays.push(t.us - (ta.get(seq) as Captured).us);
    delays.sort((x, y) => x - y);
    const capLossPct = ((ta.size - tb.size) / ta.size) * 100;
    const capP50 = delays[Math.floor(delays.length / 2)];
    expect(capLossPct).toBeGreaterThan(3); // 5% set: the captures see it (a check of the setup)
    expect(capLossPct).toBeLessThan(7);
    expect(Math.abs(gen.rx.lossPct - capLossPct)).toBeLessThanOrEqual(0.5);
    // aim 20 us (5.6 measured on a quiet machine); the generator's send stamp is taken before its
    // txsync, so a loaded machine adds the time to the wire: asserted within 100 us
    expect(Math.abs(Number(gen.rx.latencyUs.p50) - capP50)).toBeLessThanOrEqual(100);
    console.log(
      `tlem 1 ms, 5%: captures p50 ${capP50.toFixed(1)} us, loss ${capLossPct.toFixed(2)}%; generator p50 ${gen.rx.latencyUs.p50} us, loss ${gen.rx.lossPct.toFixed(2)}%`,
    );
  });
});

describe.skipIf(!!noDump)("the field engine on the wire", () => {
  test("frames captured by tcpdump on the peer are, byte for byte, the ones the streams describe", async () => {
    const p = makePair(`gf${process.pid % 10000}`);
    pairs.push(p);
    const body = `{ streams: [
      { name: "v4", packet: { eth: { dst: "${p.macB}", src: "02:00:00:00:00:01" }, vlan: { id: 7 }, ip: { src: "198.18.0.1", dst: "198.18.1.1" }, udp: { dport: 53 } },
        size: { range: [62, 77] }, fields: { "ip.src": { range: ["198.18.0.1", "198.18.0.5"] }, "udp.sport": { list: [1, 2, 3] }, "vlan.id": { seq: 7 } }, rate: { pps: 200 } },
      { name: "v6", packet: { eth: { dst: "${p.macB}" }, ip: { src: "2001:db8::1", dst: "2001:db8::2" }, tcp: { dport: 443, flags: 2 } },
        size: 120, fields: { "tcp.seq": { seq: 1000, step: 100 }, "ip.dst": { range: ["2001:db8::2", "2001:db8::9"] } }, rate: { pps: 100 } },
    ] }`;
    const file = profile("wire", body);
    const cap = await startCapture(p.b, p.ifB, "in", `${dir}/wire.pcap`);
    const g = inNs(p.a, [
      `${repo}/src/app/pktgen/main.ts`,
      "--profile",
      file,
      "-f",
      "tx",
      "-i",
      `packet:${p.ifA}`,
      "-n",
      "40",
    ]);
    expect(await g.exited).toBe(0);
    await Bun.sleep(500);
    await cap.stop();
    // the same streams, compiled here, write packet k of each; the wire must carry exactly those
    // bytes but for the send time (8 bytes of the signature) and the transport checksum that covers it
    const streams = compileProfile((await import(file)).default, 2048);
    const got = new Map<string, Uint8Array[]>([
      ["v4", []],
      ["v6", []],
    ]);
    const pc = parsePcap(new Uint8Array(readFileSync(`${dir}/wire.pcap`)), "wire.pcap");
    for (const rec of pc.records) {
      const d = pc.data.slice(rec.offset, rec.offset + rec.caplen);
      if (d[12] === 0x81) got.get("v4")?.push(d);
      else if (d[12] === 0x86 && d[13] === 0xdd) got.get("v6")?.push(d);
    }
    for (const st of streams) {
      const frames = got.get(st.name) as Uint8Array[];
      expect(frames).toHaveLength(40);
      const w = st.writer,
        buf = new Uint8Array(2048),
        sig = w.template.sigOff,
        l4 = w.template.l4;
      const csumAt = l4.off + (l4.kind === "udp" ? 6 : 16);
      w.prime(buf, 0);
      for (let k = 0; k < 40; k++) {
        const len = w.write(buf, 0, k, 0);
        const want = buf.slice(0, len),
          have = frames[k].slice();
        expect(have.length).toBe(len);
        for (const a of [
          sig + 8,
          sig + 9,
          sig + 10,
          sig + 11,
          sig + 12,
          sig + 13,
          sig + 14,
          sig + 15,
          csumAt,
          csumAt + 1,
        ])
          want[a] = have[a] = 0;
        expect(have).toEqual(want);
      }
    }
  });
});

describe.skipIf(!!why)("a rate above what the link carries", () => {
  test("refused before anything is sent, naming the stream (a veth says 10 Gbit/s)", async () => {
    const p = makePair(`gr${process.pid % 10000}`);
    pairs.push(p);
    const file = profile(
      "fast",
      `{ streams: [
        { name: "small", packet: { ip: { src: "198.18.0.1", dst: "198.18.1.1" }, udp: {} }, size: 1000, rate: { pps: 1000 } },
        { name: "big", packet: { ip: { src: "198.18.0.1", dst: "198.18.1.2" }, udp: {} }, size: 1500, rate: { bps: 12e9 } },
      ] }`,
    );
    const g = inNs(p.a, [
      `${repo}/src/app/pktgen/main.ts`,
      "--profile",
      file,
      "-f",
      "tx",
      "-i",
      `packet:${p.ifA}`,
      "-n",
      "10",
    ]);
    const err = (await new Response(g.stderr).text()).trim();
    expect(await g.exited).toBe(1);
    expect(err).toMatch(
      /^pktgen: stream 'big': the profile's streams need [0-9.]+ Mbit\/s on the wire \(this one [0-9.]+\), above what packet:\S+ carries \(10000 Mbit\/s\): lower their rates$/,
    );
    // nothing left the port: the peer counted no frame
    const rx = Bun.spawnSync(["ip", "netns", "exec", p.b, "cat", `/sys/class/net/${p.ifB}/statistics/rx_packets`]);
    expect(Number(rx.stdout.toString())).toBe(0);
  });
});
