// The learning switch over shm ports: learning, flooding, aging, station moves, custom lookup,
// zero-copy and copy paths (bytes compared), hundreds of ports, and the CLI with two workers.
import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync } from "node:fs";
import { expandPorts, parseSwitchArgs } from "../src/app/switch/main.ts";
import { parseMac } from "../src/packet/ethernet.ts";
import { Fdb } from "../src/packet/fdb.ts";
import { openPort } from "../src/port/open.ts";
import type { Port } from "../src/port/port.ts";
import { SwitchCore } from "../src/switch/core.ts";
import { BROADCAST, learningLookup, loadLookup } from "../src/switch/lookup.ts";

setDefaultTimeout(60_000);

const tag = `sw${process.pid}`;
let seq = 0;
const open: { close(): void }[] = [];
/** Close a topology after the test even if an assertion throws first. */
const track = <T extends { close(): void }>(t: T): T => {
  let done = false;
  const c = t.close;
  t.close = () => {
    if (!done) {
      done = true;
      c();
    }
  };
  open.push(t);
  return t;
};
afterEach(() => {
  for (const t of open.splice(0)) t.close();
});
afterAll(() => expect(readdirSync("/dev/shm").filter((f) => f.startsWith(`bunmap-${tag}`))).toEqual([]));

const mac = (n: number) => parseMac(`02:00:00:00:${(n >> 8).toString(16)}:${(n & 255).toString(16)}`);

/** n switch ports (switch side `{i`) and the hosts on their other ends (`}i`), one region unless split. */
function topo(n: number, opts: { split?: boolean; conf?: string } = {}) {
  const name = `${tag}r${seq++}`;
  const conf = opts.conf ?? `@conf:pipes=${n},slots=64`;
  const sw: Port[] = [],
    host: Port[] = [];
  for (let i = 0; i < n; i++) {
    const region = opts.split ? `${name}x${i}` : name;
    const c = opts.split ? "@conf:pipes=1,slots=64" : conf;
    sw.push(openPort(`shm:${region}{${opts.split ? 0 : i}${i === 0 || opts.split ? c : ""}`));
    host.push(openPort(`shm:${region}}${opts.split ? 0 : i}`));
  }
  return {
    sw,
    host,
    close: () => {
      for (const p of [...sw, ...host]) p.close();
    },
  };
}

/** Host h sends a frame dst <- src with a payload tag. */
function send(p: Port, dst: Uint8Array, src: Uint8Array, tagByte: number, len = 60, type = 0x88b5): void {
  const tx = p.txRings[0],
    b = tx.buf(tx.head),
    u8 = tx.u8;
  u8.set(dst, b);
  u8.set(src, b + 6);
  u8[b + 12] = type >> 8;
  u8[b + 13] = type & 255;
  for (let k = 14; k < len; k++) u8[b + k] = (tagByte + k) & 255;
  tx.setLenFlags(tx.head, len, 0);
  tx.advance(tx.next(tx.head));
  p.txsync();
}

/** Tags (payload first byte - 14) received by each host, draining its ring; checks every byte. */
function received(hosts: Port[]): number[][] {
  return hosts.map((p) => {
    p.rxsync();
    const rx = p.rxRings[0],
      got: number[] = [];
    while (!rx.empty()) {
      const b = rx.buf(rx.head),
        len = rx.len(rx.head),
        t = (rx.u8[b + 14] - 14) & 255;
      for (let k = 14; k < len; k++) if (rx.u8[b + k] !== ((t + k) & 255)) throw new Error("payload corrupted");
      got.push(t);
      rx.advance(rx.next(rx.head));
    }
    p.rxsync();
    return got;
  });
}

describe("switch core over shm ports", () => {
  test("unknown and broadcast flood, learned stations get unicast (VALE semantics)", () => {
    const t = track(topo(3));
    const core = SwitchCore.of(t.sw, new Fdb(10), learningLookup);
    send(t.host[0], mac(2), mac(1), 1); // b unknown: flood to 1 and 2, not back to 0
    core.round();
    expect(received(t.host)).toEqual([[], [1], [1]]);
    send(t.host[1], mac(1), mac(2), 2); // a learned on port 0
    core.round();
    expect(received(t.host)).toEqual([[2], [], []]);
    send(t.host[0], mac(2), mac(1), 3); // b learned on port 1
    send(t.host[2], parseMac("ff:ff:ff:ff:ff:ff"), mac(3), 4);
    core.round();
    expect(received(t.host)).toEqual([[4], [3, 4], []]);
    send(t.host[2], mac(3), mac(1), 5); // to itself (c is on port 2): dropped
    core.round();
    expect(received(t.host)).toEqual([[], [], []]);
    expect(core.counts()).toMatchObject({ forwarded: 2, flooded: 2, dropped: 1, dropSamePort: 1, dropLookup: 0 });
    expect(core.counts()).toMatchObject({ learned: 3, moved: 1 }); // stations 1, 2, 3; then 1 spoke from port 2
    t.close();
  });

  test("frames meeting a full tx ring are dropped and counted, flooded or unicast, switch and port", () => {
    const t = track(topo(3)); // 64 slots: a ring holds 63
    const core = SwitchCore.of(t.sw, new Fdb(10), learningLookup);
    const bcast = parseMac("ff:ff:ff:ff:ff:ff");
    // 200 broadcasts from host 0; host 1 reads everything, host 2 nobody reads
    for (let k = 0; k < 200; k++) {
      send(t.host[0], bcast, mac(1), k & 255);
      core.round();
      received([t.host[1]]);
    }
    expect(core.counts()).toMatchObject({ flooded: 200, dropped: 200 - 63 });
    // 60-byte frames: bytes are frames times 60; every drop here is a full ring
    const none = { dropTooLong: 0, dropOffload: 0 };
    expect(core.portCounts(2)).toEqual({
      rx: 0,
      tx: 63,
      dropped: 137,
      rxBytes: 0,
      txBytes: 63 * 60,
      dropNoRoom: 137,
      ...none,
    });
    expect(core.portCounts(1)).toEqual({
      rx: 0,
      tx: 200,
      dropped: 0,
      rxBytes: 0,
      txBytes: 200 * 60,
      dropNoRoom: 0,
      ...none,
    });
    expect(core.portCounts(0)).toMatchObject({ rx: 200, rxBytes: 200 * 60, tx: 0 });
    // unicast to the station behind the full port: dropped too
    send(t.host[2], bcast, mac(3), 1); // c speaks (learned on port 2; its own flood reaches 0 and 1)
    core.round();
    received([t.host[0], t.host[1]]);
    for (let k = 0; k < 10; k++) send(t.host[0], mac(3), mac(1), k);
    core.round();
    expect(core.counts()).toMatchObject({ forwarded: 0, dropped: 200 - 63 + 10 });
    expect(core.portCounts(2).dropped).toBe(200 - 63 + 10);
    t.close();
  });

  test("learn: false: the lookup decides alone and the table stays empty", async () => {
    const t = track(topo(3));
    const fdb = new Fdb(10);
    const core = SwitchCore.of(t.sw, fdb, learningLookup, 512, false);
    send(t.host[0], mac(2), mac(1), 1);
    send(t.host[1], mac(1), mac(2), 2); // a learning switch would now know 1 and 2
    core.round();
    send(t.host[0], mac(2), mac(1), 3);
    core.round();
    expect(received(t.host)).toEqual([[2], [1, 3], [1, 2, 3]]); // all flooded: nothing was learned
    expect(fdb.count(Math.floor(Date.now() / 1000))).toBe(0);
    // a lookup that routes by other fields works as before, without writing the table
    const next = SwitchCore.of(
      t.sw,
      fdb,
      await loadLookup(`${import.meta.dir}/../src/switch/lookups/ipv4-next.ts`),
      512,
      false,
    );
    send(t.host[0], mac(7), mac(1), 4, 60, 0x0800);
    next.round();
    expect(received(t.host)).toEqual([[], [4], []]);
    expect(fdb.count(Math.floor(Date.now() / 1000))).toBe(0);
    t.close();
  });

  test("a station that moves is followed; entries age out", async () => {
    const t = track(topo(3));
    const fdb = new Fdb(10, 0); // age 0: an entry lives until the clock's second changes
    const core = SwitchCore.of(t.sw, fdb, learningLookup);
    send(t.host[0], mac(9), mac(1), 1);
    core.round();
    received(t.host);
    send(t.host[1], mac(1), mac(2), 2);
    core.round();
    expect(received(t.host)).toEqual([[2], [], []]);
    send(t.host[2], mac(9), mac(1), 3);
    core.round();
    received(t.host); // a now speaks from port 2
    send(t.host[1], mac(1), mac(2), 4);
    core.round();
    expect(received(t.host)).toEqual([[], [], [4]]);
    expect(core.counts().moved).toBe(1); // station 1: port 0 -> port 2
    const s = Math.floor(Date.now() / 1000);
    while (Math.floor(Date.now() / 1000) === s) await Bun.sleep(20);
    send(t.host[1], mac(1), mac(2), 5);
    core.round(); // a aged out: flood
    expect(received(t.host)).toEqual([[5], [], [5]]);
    t.close();
  });

  test("a custom lookup from a file: IPv4 to the next port, the rest floods", async () => {
    const t = track(topo(4));
    const core = SwitchCore.of(
      t.sw,
      new Fdb(10),
      await loadLookup(`${import.meta.dir}/../src/switch/lookups/ipv4-next.ts`),
    );
    send(t.host[1], mac(7), mac(1), 1, 60, 0x0800);
    send(t.host[3], mac(7), mac(1), 2, 60, 0x0800); // wraps to port 0
    send(t.host[0], mac(7), mac(1), 3, 60, 0x0806);
    core.round(); // ports are drained in order: port 0's flood reaches port 2 before port 1's packet
    expect(received(t.host)).toEqual([[2], [3], [3, 1], [3]]);
    t.close();
    await expect(loadLookup(`${import.meta.dir}/helpers/netns.ts`)).rejects.toThrow(/export a lookup function/);
    expect(learningLookup(parseMac("01:00:5e:00:00:01"), 0, 60, 0, SwitchCore.of([], new Fdb(4), learningLookup))).toBe(
      BROADCAST,
    );
  });

  test("same region: unicast swaps buffers; separate regions: copies; both deliver the same bytes", () => {
    for (const split of [false, true]) {
      const t = topo(2, { split });
      try {
        const core = SwitchCore.of(t.sw, new Fdb(10), learningLookup);
        send(t.host[1], mac(1), mac(2), 0);
        core.round();
        received(t.host); // learn both stations
        send(t.host[0], mac(2), mac(1), 0);
        core.round();
        received(t.host);
        const rx = t.sw[0].rxRings[0],
          first = rx.head;
        for (let k = 0; k < 50; k++) send(t.host[0], mac(2), mac(1), k, 60 + k * 20);
        t.sw[0].rxsync();
        const before = Array.from({ length: 50 }, (_, k) => rx.bufIdx((first + k) % rx.numSlots));
        core.round();
        expect(received(t.host)[1]).toEqual(Array.from({ length: 50 }, (_, k) => k)); // every byte checked
        const after = Array.from({ length: 50 }, (_, k) => rx.bufIdx((first + k) % rx.numSlots));
        const changed = after.filter((b, k) => b !== before[k]).length;
        expect(changed).toBe(split ? 0 : 50); // swap hands the rx buffer to the tx ring and takes its buffer
      } finally {
        t.close();
      }
    }
  });

  test("hundreds of ports: one broadcast reaches all 299 others; learned unicast reaches one", () => {
    const t = track(topo(300));
    const core = SwitchCore.of(t.sw, new Fdb(12), learningLookup);
    send(t.host[123], parseMac("ff:ff:ff:ff:ff:ff"), mac(123), 7);
    core.round();
    const got = received(t.host);
    expect(got.filter((g) => g.length === 1 && g[0] === 7).length).toBe(299);
    expect(got[123]).toEqual([]);
    send(t.host[5], mac(123), mac(5), 8);
    core.round();
    expect(
      received(t.host)
        .map((g, i) => (g.length ? i : -1))
        .filter((i) => i >= 0),
    ).toEqual([123]);
    t.close();
  });
});

describe("switch CLI", () => {
  test("arguments: ranges, bad input", () => {
    expect(expandPorts("shm:a{[0-2]")).toEqual(["shm:a{0", "shm:a{1", "shm:a{2"]);
    const a = parseSwitchArgs(["-i", "shm:a{[0-3]", "-p", "2", "--lookup", "x.ts"]);
    expect(a !== "help" && [a.ports.length, a.workers, a.lookup]).toEqual([4, 2, "x.ts"]);
    expect(() => parseSwitchArgs(["-i", "shm:a{0"])).toThrow(/at least two ports/);
    expect(() => parseSwitchArgs(["-i", "shm:a{0", "-i", "shm:a{0"])).toThrow(/twice/);
    expect(() => parseSwitchArgs(["-i", "eth0", "-i", "shm:a{0"])).toThrow(/bad port name 'eth0'/);
    expect(() => parseSwitchArgs(["-i", "shm:a{[3-1]"])).toThrow(/must go up/);
    expect(() => parseSwitchArgs(["-p", "x"])).toThrow(/expected a number/);
  });

  test("two workers, two rings per port: traffic on either ring is switched", async () => {
    const name = `${tag}cli${seq++}`;
    const proc = Bun.spawn(
      [
        process.execPath,
        `${import.meta.dir}/../src/app/switch/main.ts`,
        "-i",
        `shm:${name}{0@conf:pipes=2,rings=2,slots=64`,
        "-i",
        `shm:${name}{1`,
        "-p",
        "2",
        "-T",
        "100",
      ],
      { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" },
    );
    const reader = proc.stdout.getReader();
    let out = "";
    while (!out.includes("switch: 2 ports, 2 workers")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(out + (await new Response(proc.stderr).text()));
      out += new TextDecoder().decode(value);
    }
    const h0 = openPort(`shm:${name}}0`),
      h1 = openPort(`shm:${name}}1`);
    const sendOn = (p: Port, ring: number, dst: Uint8Array, src: Uint8Array, t: number) => {
      const tx = p.txRings[ring],
        b = tx.buf(tx.head);
      tx.u8.set(dst, b);
      tx.u8.set(src, b + 6);
      tx.u8[b + 12] = 0x88;
      tx.u8[b + 13] = 0xb5;
      tx.u8[b + 14] = t;
      tx.setLenFlags(tx.head, 60, 0);
      tx.advance(tx.next(tx.head));
      p.txsync();
    };
    sendOn(h0, 0, parseMac("ff:ff:ff:ff:ff:ff"), mac(1), 1); // worker 0
    sendOn(h0, 1, parseMac("ff:ff:ff:ff:ff:ff"), mac(1), 2); // worker 1
    const got: number[] = [];
    const deadline = Date.now() + 5000;
    while (got.length < 2 && Date.now() < deadline) {
      h1.rxsync();
      for (const rx of h1.rxRings)
        while (!rx.empty()) {
          got.push(rx.u8[rx.buf(rx.head) + 14]);
          rx.advance(rx.next(rx.head));
        }
      h1.rxsync();
      await Bun.sleep(5);
    }
    expect(got.sort()).toEqual([1, 2]);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    h0.close();
    h1.close();
  });

  test("a bad port is one error line and exit 1", async () => {
    const p = Bun.spawn(
      [
        process.execPath,
        `${import.meta.dir}/../src/app/switch/main.ts`,
        "-i",
        "packet:nosuch0",
        "-i",
        `shm:${tag}bad{0`,
      ],
      { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" },
    );
    const err = await new Response(p.stderr).text();
    expect(await p.exited).toBe(1);
    expect(err.trim()).toBe("switch: packet:nosuch0: no such interface 'nosuch0' (ip link show lists them)");
  });
});
