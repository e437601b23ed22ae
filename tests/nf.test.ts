// Network functions (src/nf/runner.ts): the README's tutorial firewall (examples/firewall.ts, run as
// a user runs it) packet by packet through shm pipes, its counters on SIGINT; and the runner's own
// contract: zero-copy forward within one region, copies across regions, drops counted by reason,
// a full output counted, no CPU while idle, nothing lost that was released before a stop, a port
// that cannot open refused with nothing left open.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { drop, formatCounters, NfRunner, type Packet } from "../src/index.ts";
import { openPort } from "../src/port/open.ts";
import { receiveFrames as receive, sendFrames as send } from "./helpers/frames-io.ts";

setDefaultTimeout(60_000);
const repo = `${import.meta.dir}/..`;
const tag = `nf${process.pid}`;
afterAll(() => expect(readdirSync("/dev/shm").filter((f) => f.startsWith(`bunmap-${tag}`))).toEqual([]));

/** An IPv4 frame (TCP 6 or UDP 17) to dst:dport, 64 bytes, its last byte `mark`; or ARP. */
function ipFrame(proto: number, dst: number, dport: number, mark: number): Uint8Array {
  const f = new Uint8Array(64);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
  f.set([0x45, 0, 0, 50, 0, 1, 0, 0, 64, proto, 0, 0, 198, 18, 0, 1], 14);
  new DataView(f.buffer).setUint32(30, dst);
  new DataView(f.buffer).setUint16(34, 40000);
  new DataView(f.buffer).setUint16(36, dport);
  f[63] = mark;
  return f;
}
const ip4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

describe("the README's tutorial: a two-port firewall", () => {
  test("the README shows examples/firewall.ts as it is, in at most 15 lines", () => {
    const file = readFileSync(`${repo}/examples/firewall.ts`, "utf8").trim();
    expect(readFileSync(`${repo}/README.md`, "utf8")).toContain(
      `\`\`\`ts file="examples/firewall.ts"\n${file}\n\`\`\``,
    );
    expect(file.split("\n").filter((l) => l.trim()).length).toBeLessThanOrEqual(15);
  });

  test("allowed traffic out, the rest dropped by reason, replies in; counters on SIGINT", async () => {
    const region = `${tag}fw`;
    const fw = Bun.spawn(
      [process.execPath, `${repo}/examples/firewall.ts`, `shm:${region}{0@conf:pipes=2`, `shm:${region}{1`],
      { stdout: "pipe", stderr: "pipe", timeout: 60_000, killSignal: "SIGKILL" },
    );
    const reader = (fw.stdout as ReadableStream<Uint8Array>).getReader();
    let out = "";
    while (!out.includes("firewall: running")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`firewall exited: ${out}${await new Response(fw.stderr).text()}`);
      out += new TextDecoder().decode(value);
    }
    const inside = openPort(`shm:${region}}0`),
      outside = openPort(`shm:${region}}1`);
    try {
      const net = (d: number) => ip4(198, 18, 1, d);
      const allowed = [ipFrame(6, net(5), 80, 1), ipFrame(17, net(200), 443, 2)];
      const acl = [ipFrame(6, ip4(198, 18, 2, 5), 80, 3), ipFrame(6, net(5), 22, 4)];
      const other = [
        ipFrame(1, net(5), 80, 5),
        Uint8Array.from({ length: 60 }, (_, k) => (k === 12 ? 8 : k === 13 ? 6 : 0)),
      ];
      send(inside, [allowed[0], acl[0], other[0], allowed[1], acl[1], other[1]]);
      const reply = ipFrame(6, ip4(198, 18, 0, 1), 40000, 9);
      send(outside, [reply]);
      const got = { out: [] as Uint8Array[], in: [] as Uint8Array[] };
      for (let t = 0; t < 100 && (got.out.length < 2 || got.in.length < 1); t++) {
        await Bun.sleep(20);
        got.out.push(...receive(outside));
        got.in.push(...receive(inside));
      }
      expect(got.out).toEqual(allowed); // byte for byte, in order
      expect(got.in).toEqual([reply]);
      await Bun.sleep(100);
      expect(receive(outside).length + receive(inside).length).toBe(0); // nothing else came through
      fw.kill("SIGINT");
      expect(await fw.exited).toBe(0);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      // 6 frames of 64 and 60 bytes in, 2 out; 1 reply of 64 bytes the other way
      expect(out.split("\n").slice(1)).toEqual([
        "inside: received 6 packets 380 bytes, sent 1 packets 64 bytes",
        "outside: received 1 packets 64 bytes, sent 2 packets 128 bytes",
        "nf: dropped 2 not IPv4 TCP/UDP, 2 acl",
        "",
      ]);
    } finally {
      inside.close();
      outside.close();
      fw.kill("SIGKILL");
      await fw.exited;
    }
  });
});

describe("examples/split.ts (the README's parts example)", () => {
  test("firewall and dedup in two Workers: allowed frames once, a duplicate and the rest dropped by reason, replies in", async () => {
    const nf = Bun.spawn([process.execPath, `${repo}/src/app/nf/main.ts`, `${repo}/examples/split.ts`], {
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
      killSignal: "SIGKILL",
    });
    const reader = (nf.stdout as ReadableStream<Uint8Array>).getReader();
    let out = "";
    while (!out.includes("running")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`nf exited: ${out}${await new Response(nf.stderr).text()}`);
      out += new TextDecoder().decode(value);
    }
    const inside = openPort("shm:gs}0"),
      outside = openPort("shm:gs}1");
    try {
      const ok = ipFrame(17, ip4(198, 18, 1, 7), 443, 1);
      send(inside, [ok, ok, ipFrame(6, ip4(198, 18, 3, 1), 80, 2), ipFrame(1, ip4(198, 18, 1, 7), 80, 3)]);
      const reply = ipFrame(17, ip4(198, 18, 0, 1), 5000, 4);
      send(outside, [reply]);
      const got = { out: [] as Uint8Array[], in: [] as Uint8Array[] };
      for (let t = 0; t < 100 && (got.out.length < 1 || got.in.length < 1); t++) {
        await Bun.sleep(20);
        got.out.push(...receive(outside));
        got.in.push(...receive(inside));
      }
      await Bun.sleep(100);
      got.out.push(...receive(outside));
      expect(got.out).toEqual([ok]); // the second copy within dedup's window: dropped
      expect(got.in).toEqual([reply]);
    } finally {
      inside.close();
      outside.close();
    }
    nf.kill("SIGINT");
    expect(await nf.exited).toBe(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    expect(out).toContain("in 2 parts (workers)");
    expect(out).toContain("part 0: nf fw: 4 packets, 2 passed on, 1 dropped (not IPv4 TCP/UDP), 1 dropped (acl)");
    expect(out).toContain("part 1: nf dedup: 2 packets, 1 passed on, 1 dropped (duplicate)");
  });
});

describe("the runner", () => {
  const pair = (name: string, conf = "") => ({ nf: `shm:${tag}${name}{0${conf}`, host: `shm:${tag}${name}}0` });

  test("one region: buffers swapped, not copied; two regions: copied; bytes alike either way", async () => {
    for (const shared of [true, false]) {
      const a = shared ? `shm:${tag}s{0@conf:pipes=2` : pair(`a${+shared}`).nf;
      const b = shared ? `shm:${tag}s{1` : pair(`b${+shared}`).nf;
      const run = new NfRunner({ a, b }, (p) => (p.input === 0 ? 1 : drop()));
      const ha = openPort(shared ? `shm:${tag}s}0` : pair(`a${+shared}`).host),
        hb = openPort(shared ? `shm:${tag}s}1` : pair(`b${+shared}`).host);
      try {
        const frames = Array.from({ length: 50 }, (_, k) => ipFrame(17, k, 9, k));
        const tx = ha.txRings[0],
          rx = hb.rxRings[0];
        const sentBufs = frames.map((_, k) => tx.bufIdx((tx.head + k) % tx.numSlots));
        send(ha, frames);
        run.round();
        hb.rxsync();
        const gotBufs = frames.map((_, k) => rx.bufIdx((rx.head + k) % rx.numSlots));
        expect(receive(hb)).toEqual(frames);
        // swapped: the very buffers the sender filled reach the receiver; copied: other buffers
        if (shared) expect(gotBufs).toEqual(sentBufs);
        const c = run.counters();
        expect(c.ports.map((p) => [p.name, p.rxPackets, p.txPackets])).toEqual([
          ["a", 50, 0],
          ["b", 0, 50],
        ]);
        expect(c.ports[1].txBytes).toBe(50 * 64);
      } finally {
        run.close();
        ha.close();
        hb.close();
      }
    }
  });

  test("a full output holds the input back, nothing lost (default); without backpressure it is counted dropped", () => {
    for (const backpressure of [true, false]) {
      const x = backpressure ? "y" : "n";
      const run = new NfRunner(
        { a: pair(`f${x}a`).nf, b: pair(`f${x}b`, "@conf:slots=64").nf },
        (p) => (p.input === 0 ? 1 : drop()),
        {
          backpressure,
        },
      );
      const ha = openPort(pair(`f${x}a`).host),
        hb = openPort(pair(`f${x}b`).host);
      try {
        const frames = Array.from({ length: 200 }, (_, n) => ipFrame(17, n, 9, n & 255));
        for (let k = 0; k < 200; k += 50) {
          send(ha, frames.slice(k, k + 50));
          run.round();
        }
        const c = run.counters().ports[1];
        expect(c.txPackets).toBe(63); // a 64-slot ring holds 63, nobody has read b yet
        const got = receive(hb);
        if (backpressure) {
          expect(c.drops["tx ring full"]).toBe(0);
          for (let k = 0; k < 10; k++) {
            run.round(); // the rest, as b's reader makes room
            got.push(...receive(hb));
          }
          expect(got).toEqual(frames); // all, in order
        } else {
          expect(c.drops["tx ring full"]).toBe(200 - 63);
          expect(got).toEqual(frames.slice(0, 63));
        }
      } finally {
        run.close();
        ha.close();
        hb.close();
      }
    }
  });

  test("idle: it sleeps (CPU measured), and wakes for the next packet", async () => {
    const run = new NfRunner({ a: pair("ia").nf, b: pair("ib").nf }, (p: Packet) => (p.input === 0 ? 1 : drop()));
    const ha = openPort(pair("ia").host),
      hb = openPort(pair("ib").host);
    try {
      const done = run.run({ seconds: 3, signals: false });
      await Bun.sleep(700); // settled into its idle waits (and the code compiled)
      const cpu0 = process.cpuUsage(),
        t0 = performance.now();
      await Bun.sleep(1500);
      const used = process.cpuUsage(cpu0),
        wall = (performance.now() - t0) * 1000;
      send(ha, [ipFrame(17, 1, 9, 1)]); // arrives while it sleeps
      const counters = await done;
      expect(counters.ports[1].txPackets).toBe(1);
      expect(receive(hb).length).toBe(1);
      // about 2% of a core here (shm ports: a wait on each in turn, up to 10 ms); 5% leaves room for load
      expect((used.user + used.system) / wall).toBeLessThan(0.05);
    } finally {
      run.close();
      ha.close();
      hb.close();
    }
  });

  test("a verdict naming no port and no reason is counted as such, never sent anywhere", () => {
    const verdicts = [1, 5, drop(0), drop(7), 0.5];
    let n = 0;
    const run = new NfRunner({ a: pair("va").nf, b: pair("vb").nf }, () => verdicts[n++ % verdicts.length], {
      reasons: ["acl"],
    });
    const ha = openPort(pair("va").host),
      hb = openPort(pair("vb").host);
    try {
      send(
        ha,
        Array.from({ length: 5 }, (_, k) => ipFrame(17, k, 9, k)),
      );
      run.round();
      const c = run.counters();
      expect(c.ports[1].txPackets).toBe(1);
      expect(c.drops).toEqual({ acl: 1, "no such output or reason": 3 }); // port 5, reason 7, 0.5
      expect(receive(hb).length).toBe(1);
    } finally {
      run.close();
      ha.close();
      hb.close();
    }
  });

  test("a port that cannot open: one sentence, and the ports opened before are closed", () => {
    expect(() => new NfRunner({ a: pair("xa").nf, b: "nosuch:x" }, () => 0)).toThrow(/^bad port name 'nosuch:x'/);
    expect(readdirSync("/dev/shm").filter((f) => f.startsWith(`bunmap-${tag}xa`))).toEqual([]);
  });

  test("counters as report lines and as JSON lines", () => {
    const c = {
      ports: [
        {
          name: "a",
          rxPackets: 3,
          rxBytes: 180,
          txPackets: 1,
          txBytes: 60,
          drops: { "tx ring full": 2, "too long for the port's buffers": 0 },
        },
      ],
      drops: { acl: 1, dropped: 0 },
    };
    expect(formatCounters(c)).toBe(
      "a: received 3 packets 180 bytes, sent 1 packets 60 bytes, 2 dropped (tx ring full)\nnf: dropped 1 acl\n",
    );
    expect(
      formatCounters(c, true)
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual([{ port: "a", ...c.ports[0] }, { nf: { acl: 1, dropped: 0 } }]);
  });
});
