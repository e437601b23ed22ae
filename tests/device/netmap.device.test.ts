// Device tests: bunmap against the real netmap module. They run where /dev/netmap exists (the netmap
// guest: `npm run test:netmap`) and are skipped, saying why, everywhere else. VALE ports both ways,
// @conf, single-ring and host-ring names, pipes swapping buffers, veths in emulated mode, multi-slot
// inject, vale-ctl beside netmap's own, pktgen over a pipe and with netmap's pkt-gen both ways, and
// the bridge between VALE ports. (The Docker driver's kernel-VALE datapath: tests/netmap/driver-gateway.ts.)
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { valeCtl } from "../../src/app/vale-ctl/main.ts";
import type { NetmapPort } from "../../src/port/netmap.ts";
import { ADMODE, getAdmode, setAdmode } from "../../src/port/netmap-ctl.ts";
import { openPort } from "../../src/port/open.ts";
import type { Port } from "../../src/port/port.ts";
import { NS_MOREFRAG, POLLIN } from "../../src/ring/layout.ts";
import { pktgen, started, summary } from "../helpers/pktgen.ts";

setDefaultTimeout(240_000);

const why = !existsSync("/dev/netmap")
  ? "no /dev/netmap (run them in the netmap guest: npm run test:netmap)"
  : !process.env.NETMAP_APPS
    ? "NETMAP_APPS (netmap's own tools) is not set"
    : null;
if (why) console.warn(`SKIP netmap device tests: ${why}`);
const APPS = process.env.NETMAP_APPS ?? "";
const sh = (...a: string[]) => spawnSync(a[0], a.slice(1), { encoding: "utf8", timeout: 180_000 });
const repo = `${import.meta.dir}/../..`;

/** Put frame `seq` of `len` bytes (broadcast, ethertype 0x88b5, bytes from seq) on the port's ring 0. */
function send(p: Port, seq: number, len: number): void {
  const tx = p.txRings[0],
    b = tx.buf(tx.head),
    u8 = tx.u8;
  u8.fill(0xff, b, b + 6);
  u8.set([2, 0, 0, 0, 0, 1], b + 6);
  u8[b + 12] = 0x88;
  u8[b + 13] = 0xb5;
  new DataView(u8.buffer).setUint32(b + 14, seq);
  for (let k = 18; k < len; k++) u8[b + k] = (seq + k) & 255;
  tx.setLenFlags(tx.head, len, 0);
  tx.advance(tx.next(tx.head));
}
const frame = (seq: number, len: number) => {
  const f = new Uint8Array(len);
  f.fill(0xff, 0, 6);
  f.set([2, 0, 0, 0, 0, 1], 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  new DataView(f.buffer).setUint32(14, seq);
  for (let k = 18; k < len; k++) f[k] = (seq + k) & 255;
  return f;
};
/** Receive until n frames of ours arrived or ms passed; each checked byte for byte (frames spread
 * over NS_MOREFRAG slots are joined). Returns [seq, len] per frame. */
function recv(p: Port, n: number, ms = 5000): [number, number][] {
  const got: [number, number][] = [];
  const deadline = Date.now() + ms;
  let parts: Uint8Array[] = [];
  while (got.length < n && Date.now() < deadline) {
    if (!(p.poll(POLLIN, 200) & POLLIN)) continue;
    for (const rx of p.rxRings) {
      while (!rx.empty()) {
        const b = rx.buf(rx.head),
          len = rx.len(rx.head);
        parts.push(rx.u8.slice(b, b + len));
        const more = rx.flags(rx.head) & NS_MOREFRAG;
        rx.advance(rx.next(rx.head));
        if (more) continue;
        const f = parts.length === 1 ? parts[0] : Uint8Array.from(parts.flatMap((x) => [...x]));
        parts = [];
        if (f[12] !== 0x88 || f[13] !== 0xb5) continue; // not ours (the host stack's chatter)
        const seq = new DataView(f.buffer).getUint32(14);
        for (let k = 18; k < f.length; k++)
          if (f[k] !== ((seq + k) & 255)) throw new Error(`frame ${seq}: byte ${k} differs`);
        got.push([seq, f.length]);
      }
    }
    p.rxsync();
  }
  return got;
}
const LENS = [60, 61, 128, 1000, 1514];

let admode0 = 0;
beforeAll(() => {
  if (why) return;
  admode0 = getAdmode();
  setAdmode("generic"); // veths in emulated mode
  for (const s of [
    ["ip", "link", "add", "nv0", "type", "veth", "peer", "name", "nv1"],
    ["ip", "link", "set", "nv0", "up"],
    ["ip", "link", "set", "nv1", "up"],
  ])
    expect(sh(...s).status).toBe(0);
});
afterAll(() => {
  if (why) return;
  sh("ip", "link", "del", "nv0");
  setAdmode((Object.entries(ADMODE).find(([, v]) => v === admode0)?.[0] ?? "best") as keyof typeof ADMODE);
});

describe.skipIf(!!why)("netmap device (real /dev/netmap)", () => {
  test("VALE ports, both directions: frames of 60..1514 bytes arrive byte for byte", () => {
    const a = openPort("vale0:a"),
      b = openPort("vale0:b");
    try {
      for (const [from, to] of [
        [a, b],
        [b, a],
      ]) {
        for (const [i, len] of LENS.entries()) send(from, i, len);
        from.txsync();
        expect(recv(to, LENS.length)).toEqual(LENS.map((len, i) => [i, len]));
      }
    } finally {
      a.close();
      b.close();
    }
  });

  test("@conf sets rings and slots of a new VALE port", () => {
    const p = openPort("vale1:c@conf:rings=2,slots=256");
    try {
      expect([p.txRings.length, p.rxRings.length]).toEqual([2, 2]);
      expect([p.txRings[0].numSlots, p.rxRings[1].numSlots]).toEqual([256, 256]);
    } finally {
      p.close();
    }
  });

  test("single-ring and host-ring names: nv0-0 opens one ring; a frame on nv0^'s host tx ring reaches the host stack", () => {
    const one = openPort("netmap:nv0-0");
    try {
      expect([one.txRings.length, one.rxRings.length]).toEqual([1, 1]);
    } finally {
      one.close();
    }
    const host = openPort("netmap:nv0^");
    try {
      expect([host.txRings.length, host.rxRings.length]).toEqual([1, 1]);
      sh("ip", "addr", "add", "198.18.99.1/24", "dev", "nv0");
      // an ARP request for nv0's address from 198.18.99.2 at 02:00:00:00:00:99, handed to the host stack:
      // the stack learns the sender (the emulated adapter cannot divert the stack's own transmissions,
      // so the host rx ring is not exercised here)
      const tx = host.txRings[0],
        b = tx.buf(tx.head),
        u8 = tx.u8;
      const mac = [2, 0, 0, 0, 0, 0x99];
      u8.fill(0xff, b, b + 6);
      u8.set(mac, b + 6);
      u8.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], b + 12);
      u8.set(mac, b + 22);
      u8.set([198, 18, 99, 2], b + 28);
      u8.fill(0, b + 32, b + 38);
      u8.set([198, 18, 99, 1], b + 38);
      u8.fill(0, b + 42, b + 60);
      tx.setLenFlags(tx.head, 60, 0);
      tx.advance(tx.next(tx.head));
      host.txsync();
      let neigh = "";
      for (let t = 0; t < 30 && !neigh.includes("02:00:00:00:00:99"); t++) {
        Bun.sleepSync(100);
        neigh = sh("ip", "neigh", "show", "198.18.99.2", "dev", "nv0").stdout;
      }
      expect(neigh).toContain("lladdr 02:00:00:00:00:99");
    } finally {
      host.close();
      sh("ip", "addr", "flush", "dev", "nv0");
    }
  });

  test("pipes: frames cross with their buffers swapped, not copied", () => {
    const m = openPort("netmap:pp{1"),
      s = openPort("netmap:pp}1");
    try {
      const tx = m.txRings[0],
        idx = tx.bufIdx(tx.head);
      send(m, 7, 200);
      m.txsync();
      const rx = s.rxRings[0];
      expect(recv(s, 1)).toEqual([[7, 200]]);
      expect(rx.bufIdx(rx.head === 0 ? rx.numSlots - 1 : rx.head - 1)).toBe(idx); // the very buffer
    } finally {
      m.close();
      s.close();
    }
  });

  test("veths in emulated mode: nv0 to nv1 byte for byte; netmap:IF sends from the interface's MAC", () => {
    const a = openPort("netmap:nv0") as NetmapPort,
      b = openPort("netmap:nv1");
    try {
      const mac = sh("cat", "/sys/class/net/nv0/address").stdout.trim();
      expect(Array.from(a.mac, (x) => x.toString(16).padStart(2, "0")).join(":")).toBe(mac);
      for (const [i, len] of LENS.entries()) send(a, i, len);
      a.txsync();
      expect(recv(b, LENS.length)).toEqual(LENS.map((len, i) => [i, len]));
    } finally {
      a.close();
      b.close();
    }
  });

  test("inject spreads a frame larger than a buffer over several slots (NS_MOREFRAG)", () => {
    const a = openPort("vale2:a") as NetmapPort,
      b = openPort("vale2:b");
    try {
      const big = a.bufSize + 1000;
      expect(a.inject(frame(3, big))).toBe(true);
      a.txsync();
      expect(recv(b, 1)).toEqual([[3, big]]);
    } finally {
      a.close();
      b.close();
    }
  });

  test("vale-ctl: each command's output, errors and exit status as netmap's vale-ctl's", () => {
    const theirs = (...a: string[]) => {
      const r = sh(`${APPS}/vale-ctl/vale-ctl`, ...a);
      return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
    };
    const ours = (...a: string[]) => valeCtl(a);
    // each tool walks the same lifecycle on ports of its own (netmap renames a port asked -g twice)
    // (one after the other on switch vale5, which the lifecycle leaves empty, so bridge and port
    // indices match; memory region ids are the kernel's to give)
    const life = (t: string) => [
      ["-n", `${t}k0`, "-C", "512,512,1,1", "-v"],
      ["-g", `${t}k0`],
      ["-a", `vale5:${t}k0`, "-v"],
      ["-l", `vale5:${t}k0`],
      ["-d", `vale5:${t}k0`, "-v"],
      ["-r", `${t}k0`],
      ["-r", `${t}k0`],
      ["-g", `${t}nosuch`],
      ["-a", `vale5:${t}nosuch`],
      ["-d", `vale5:${t}k0`],
    ];
    const norm = (s: string, t: string) =>
      s
        .replaceAll(`${t}k0`, "K")
        .replaceAll(`${t}nosuch`, "N")
        .replace(/^mem_id: +\d+$/m, "mem_id: M");
    const lt = life("t"),
      lo = life("o");
    const a = lt.map((argv) => theirs(...argv)),
      b = lo.map((argv) => ours(...argv));
    for (let i = 0; i < lt.length; i++) {
      expect({ cmd: lo[i].join(" "), code: b[i].code, out: norm(b[i].out, "o"), err: norm(b[i].err, "o") }).toEqual({
        cmd: lo[i].join(" "),
        code: a[i].code,
        out: norm(a[i].out, "t"),
        err: norm(a[i].err, "t"),
      });
    }
    // listing every port: the same lines (netmap's tool exits 1 even then; ours 0, as its usage says)
    const p1 = openPort("vale6:x"),
      p2 = openPort("vale6:y");
    try {
      const a = theirs(),
        b = ours();
      expect(b.out).toBe(a.out);
      expect(b.out).toContain("vale6:x bridge_idx");
      expect([a.code, b.code]).toEqual([1, 0]);
    } finally {
      p1.close();
      p2.close();
    }
  });

  test("pktgen txseq -> rxseq over a pipe: every packet, in order", async () => {
    const rx = pktgen(["-i", "netmap:sq}0", "-f", "rxseq", "-n", "20000"]);
    await started(rx);
    const tx = pktgen(["-i", "netmap:sq{0", "-f", "txseq", "-n", "20000", "-l", "60"]);
    const [t, r] = await Promise.all([tx.done, rx.done]);
    expect(summary(t.out, "Sent").pkts).toBe(20000);
    expect(summary(r.out, "Received").pkts).toBe(20000);
    expect(r.out).toMatch(/Sequence errors: 0 gaps \(0 packets missing\), 0 out of order/);
  });

  test("pktgen with netmap's pkt-gen, both ways over a pipe: the same counts", async () => {
    const theirPktgen = `${APPS}/pkt-gen/pkt-gen`;
    const spawnTheirs = (args: string[]) =>
      Bun.spawn([theirPktgen, ...args], { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" });
    // theirs sends, ours receives
    const rx = pktgen(["-i", "netmap:ia}0", "-f", "rx", "-n", "10000"]);
    await started(rx);
    const t = spawnTheirs(["-i", "netmap:ia{0", "-f", "tx", "-n", "10000", "-l", "60"]);
    expect(await t.exited).toBe(0);
    expect(summary((await rx.done).out, "Received").pkts).toBe(10000);
    // ours sends, theirs receives
    const r = spawnTheirs(["-i", "netmap:ib}0", "-f", "rx", "-n", "10000"]);
    await Bun.sleep(3000); // its "Ready" comes on stderr after the port opens
    const tx = pktgen(["-i", "netmap:ib{0", "-f", "tx", "-n", "10000", "-l", "60"]);
    expect(summary((await tx.done).out, "Sent").pkts).toBe(10000);
    expect(await r.exited).toBe(0);
    const theirOut = (await new Response(r.stdout).text()) + (await new Response(r.stderr).text());
    expect(theirOut).toMatch(/Received 10000 packets/);
  });

  test("the bridge between two VALE switches carries frames both ways", async () => {
    const br = Bun.spawn(
      [process.execPath, `${repo}/src/app/bridge/main.ts`, "-i", "vale7:br", "-i", "vale8:br", "-w", "1"],
      { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" },
    );
    const a = openPort("vale7:h"),
      b = openPort("vale8:h");
    try {
      let got: [number, number][] = [];
      for (let t = 0; t < 60 && !got.length; t++) {
        send(a, 1000 + t, 100);
        a.txsync();
        got = recv(b, 1, 1000);
      } // until the bridge is up (a probe sent just before may arrive with the next one)
      expect(got.length).toBeGreaterThanOrEqual(1);
      expect(got.every(([seq, len]) => seq >= 1000 && len === 100)).toBe(true);
      for (const [i, len] of LENS.entries()) send(b, i, len);
      b.txsync();
      expect(recv(a, LENS.length)).toEqual(LENS.map((len, i) => [i, len]));
    } finally {
      a.close();
      b.close();
      br.kill();
      await br.exited;
    }
  });
});
