// The kernel fast path (src/switch/fastpath.ts) on real veths: the switch engine runs in a network
// namespace of the test's own with three host ends; three more namespaces are the "containers".
// Known unicast goes by tc redirect (the switch's own counters stay still), nothing arrives twice,
// a third port sees no one else's unicast, a station that moves is followed, and a port that leaves
// takes its stations and its tc program with it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { SwitchEngine, type SwitchHandle } from "../src/switch/engine.ts";
import { sockInsns, tcInsns } from "../src/switch/fastpath.ts";
import { privilegedUnavailable } from "./helpers/netns.ts";
import { enterPrivateNetns, type PrivateNetns } from "./helpers/private-netns.ts";

setDefaultTimeout(90_000);

const why = privilegedUnavailable();
if (why) console.log(`kernel fast path tests skipped: ${why}`);

const CONF = "@conf:vnet=1,buf_size=65536,rx=copy,rcvbuf=4194304,rx_slots=256,tx_slots=64,tx=copy";
const HOSTS = ["a", "b", "c"] as const;
const ip = (h: string) => `198.18.81.${HOSTS.indexOf(h as (typeof HOSTS)[number]) + 1}`;

function sh(cmd: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout: 60_000, killSignal: "SIGKILL" });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}
function must(cmd: string[]): string {
  const r = sh(cmd);
  if (!r.ok) throw new Error(`${cmd.join(" ")}: ${r.out}`);
  return r.out;
}

/** ping from host h: [sent, received, duplicates]. */
function ping(ns: string, to: string, n: number, interval = "0.005"): [number, number, number] {
  const out = sh(["ip", "netns", "exec", ns, "ping", "-n", "-c", String(n), "-i", interval, "-W", "1", to]).out;
  const m = /(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?/.exec(out);
  if (!m) throw new Error(`ping said: ${out}`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

describe.skipIf(why !== null)("kernel fast path on veths", () => {
  let ns: PrivateNetns;
  let engine: SwitchEngine;
  const nsOf = (h: string) => `${ns.name}${h}`;
  const macOf: Record<string, string> = {};

  beforeAll(() => {
    ns = enterPrivateNetns("fp"); // the switch's namespace: host ends hA, hB, hC
    try {
      for (const h of HOSTS) {
        must(["ip", "netns", "add", nsOf(h)]);
        // no IPv6: a host says nothing it is not asked to (its counters are checked)
        must(["ip", "netns", "exec", nsOf(h), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        must(["ip", "netns", "exec", nsOf(h), "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        must(["ip", "link", "add", `h${h}`, "type", "veth", "peer", "name", "eth0", "netns", nsOf(h)]);
        must(["ip", "link", "set", `h${h}`, "up"]);
        must(["ip", "-n", nsOf(h), "addr", "add", `${ip(h)}/24`, "dev", "eth0"]);
        must(["ip", "-n", nsOf(h), "link", "set", "eth0", "up"]);
        macOf[h] = must(["ip", "netns", "exec", nsOf(h), "cat", "/sys/class/net/eth0/address"]).trim();
      }
    } catch (e) {
      for (const h of HOSTS) sh(["ip", "netns", "del", nsOf(h)]);
      ns.leave();
      throw e;
    }
    engine = new SwitchEngine({ workers: 1 }); // its worker starts in this namespace
  });
  afterAll(async () => {
    await engine?.close();
    for (const h of HOSTS) sh(["ip", "netns", "del", nsOf(h)]);
    ns.leave();
  });

  async function withSwitch(fast: boolean, body: (sw: SwitchHandle, ids: number[]) => Promise<void>, age?: number) {
    const sw = await engine.createSwitch({ maxPorts: 8, kernelFastPath: fast, age });
    try {
      const ids: number[] = [];
      for (const h of HOSTS) ids.push(await sw.addPort(`packet:h${h}${CONF}`));
      await body(sw, ids);
    } finally {
      await sw.close();
    }
  }
  const tcFilters = (h: string) => sh(["tc", "filter", "show", "dev", `h${h}`, "ingress"]).out;

  test("known unicast goes through the kernel: every reply, none twice, the switch forwards only the first frames", async () => {
    // the control: without the fast path, the switch forwards every frame of the same exchange
    let slow = 0;
    await withSwitch(false, async (sw) => {
      expect(ping(nsOf("a"), ip("b"), 200)).toEqual([200, 200, 0]);
      slow = sw.stats().forwarded;
    });
    expect(slow).toBeGreaterThanOrEqual(400);
    for (const h of HOSTS) sh(["ip", "-n", nsOf(h), "neigh", "flush", "all"]);
    await withSwitch(true, async (sw, ids) => {
      expect(tcFilters("a")).toContain("bm_fast_tc");
      // ARP and the first exchange go through the switch, which learns both stations (paced, so a
      // loaded machine cannot make the count depend on how soon the worker runs)
      expect(ping(nsOf("a"), ip("b"), 5, "0.2")).toEqual([5, 5, 0]);
      const learned = sw.stats();
      expect(learned.flooded).toBeGreaterThan(0); // broadcasts still go through the switch
      expect(ping(nsOf("a"), ip("b"), 200)).toEqual([200, 200, 0]);
      expect(ping(nsOf("b"), ip("a"), 200)).toEqual([200, 200, 0]);
      // then 800 frames, and the switch saw almost none: not forwarded, and not flooded either (a
      // station heard only by tc would stay unknown to the switch, and frames to it would flood)
      expect(sw.stats().forwarded - learned.forwarded).toBeLessThan(4);
      expect(sw.stats().flooded - learned.flooded).toBeLessThan(4);
      // the port counters hold what the kernel forwarded too: 400 requests and 400 replies each way
      // (beside the paced ones)
      for (const id of ids.slice(0, 2)) {
        const c = sw.portStats(id);
        expect(c.rx).toBeGreaterThanOrEqual(400);
        expect(c.tx).toBeGreaterThanOrEqual(400);
      }
      expect(sw.portStats(ids[2]).rx).toBe(0); // c said nothing
    });
    expect(tcFilters("a")).not.toContain("bm_fast_tc"); // the switch closed: nothing left forwarding
    for (const h of HOSTS) expect(sh(["tc", "qdisc", "show", "dev", `h${h}`]).out).not.toContain("clsact"); // nor its qdiscs
  });

  test("stations given as their ports join: the first ARP is flooded by the kernel, once to each other port; no worker forwards", async () => {
    for (const h of HOSTS) sh(["ip", "-n", nsOf(h), "neigh", "flush", "all"]);
    const sw = await engine.createSwitch({ maxPorts: 8, kernelFastPath: true });
    try {
      const ids: number[] = [];
      for (const h of HOSTS) ids.push(await sw.addPort(`packet:h${h}${CONF}`, [macOf[h]]));
      // what reaches c: ARP only (c's own host end speaks IPv6 to it now and then)
      const dump = Bun.spawn(["ip", "netns", "exec", nsOf("c"), "tcpdump", "-n", "-l", "-i", "eth0", "arp"], {
        stdout: "pipe",
        stderr: "ignore",
      });
      await Bun.sleep(1000); // tcpdump listening
      const before = sw.stats();
      expect(ping(nsOf("a"), ip("b"), 3, "0.2")).toEqual([3, 3, 0]); // ARP first: its request is a broadcast
      const after = sw.stats();
      await Bun.sleep(300);
      dump.kill("SIGINT");
      const seen = (await new Response(dump.stdout).text()).split("\n").filter((l) => l.includes("Request who-has"));
      expect(seen.length).toBe(1); // a's ARP request, once: not by the kernel and the switch both
      expect([after.flooded - before.flooded, after.forwarded - before.forwarded]).toEqual([0, 0]);
      expect(sw.portStats(ids[2]).tx).toBe(1); // counted on c's port, by the kernel
      expect(sw.portStats(ids[0]).rx).toBeGreaterThanOrEqual(4); // the broadcast and three requests
    } finally {
      await sw.close();
    }
    const other = await engine.createSwitch({ maxPorts: 8 });
    try {
      await expect(other.addPort(`packet:ha${CONF}`, ["not-a-mac"])).rejects.toThrow(/MAC/);
    } finally {
      await other.close();
    }
  });

  test("a third port sees none of the others' unicast while they talk", async () => {
    await withSwitch(true, async () => {
      ping(nsOf("a"), ip("b"), 5);
      const cap = Bun.spawn(
        [
          "ip",
          "netns",
          "exec",
          nsOf("c"),
          process.execPath,
          "tests/helpers/capture.ts",
          "eth0",
          "2000",
          `${macOf.a},${macOf.b}`,
        ],
        { stdout: "pipe", stderr: "pipe", timeout: 30_000, killSignal: "SIGKILL" },
      );
      await Bun.sleep(600);
      expect(ping(nsOf("a"), ip("b"), 200, "0.005")).toEqual([200, 200, 0]);
      const out = await new Response(cap.stdout).text();
      await cap.exited;
      const seen = JSON.parse(out.trim().split("\n").pop() ?? "{}");
      expect(seen.foreign).toBe(0);
    });
  });

  test("a station that moves to another port is followed (its first frame there goes through the switch)", async () => {
    await withSwitch(true, async () => {
      expect(ping(nsOf("a"), ip("b"), 20)[1]).toBe(20);
      // b's address and MAC move to c's port; b goes quiet
      must(["ip", "-n", nsOf("b"), "link", "set", "eth0", "down"]);
      must(["ip", "-n", nsOf("c"), "link", "set", "eth0", "address", macOf.b]);
      must(["ip", "-n", nsOf("c"), "addr", "add", `${ip("b")}/24`, "dev", "eth0"]);
      try {
        expect(ping(nsOf("c"), ip("a"), 3)[1]).toBe(3); // the moved station speaks first
        expect(ping(nsOf("a"), ip("b"), 100)).toEqual([100, 100, 0]);
      } finally {
        must(["ip", "-n", nsOf("c"), "addr", "del", `${ip("b")}/24`, "dev", "eth0"]);
        must(["ip", "-n", nsOf("c"), "link", "set", "eth0", "address", macOf.c]);
        must(["ip", "-n", nsOf("b"), "link", "set", "eth0", "up"]);
        for (const h of HOSTS) sh(["ip", "-n", nsOf(h), "neigh", "flush", "all"]);
      }
    });
  });

  test("a port that leaves takes its stations and tc program along; back again, it is reached again", async () => {
    await withSwitch(true, async (sw, ids) => {
      expect(ping(nsOf("a"), ip("b"), 20)[1]).toBe(20);
      await sw.removePort(ids[1]);
      expect(tcFilters("b")).not.toContain("bm_fast_tc");
      expect(ping(nsOf("a"), ip("b"), 20, "0.01")[1]).toBe(0); // nothing forwards to b any more
      expect(ping(nsOf("a"), ip("c"), 20)[1]).toBe(20); // the others go on
      await sw.addPort(`packet:hb${CONF}`);
      expect(tcFilters("b")).toContain("bm_fast_tc");
      const [, got, dup] = ping(nsOf("a"), ip("b"), 50, "0.01");
      expect(got).toBeGreaterThanOrEqual(49);
      expect(dup).toBe(0);
    });
  });

  test("a switch killed mid-work: its fast path keeps known stations talking; the next one replaces it", async () => {
    // a switch of another process (bun run switch -K), killed with SIGKILL: nothing of it runs any more
    const cli = Bun.spawn(
      [process.execPath, "src/app/switch/main.ts", "-K", ...HOSTS.flatMap((h) => ["-i", `packet:h${h}${CONF}`])],
      { stdout: "pipe", stderr: "pipe", timeout: 60_000, killSignal: "SIGKILL" },
    );
    try {
      const reader = cli.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain("switch: 3 ports");
      expect(ping(nsOf("a"), ip("b"), 20)[1]).toBe(20);
    } finally {
      cli.kill("SIGKILL");
      await cli.exited;
    }
    expect(tcFilters("a")).toContain("bm_fast_tc"); // left behind by the killed process
    expect(ping(nsOf("a"), ip("b"), 50)).toEqual([50, 50, 0]); // stations it knew still reach each other
    const stale = /id (\d+)/.exec(tcFilters("a"))?.[1];
    await withSwitch(true, async () => {
      const now = tcFilters("a");
      expect(now.match(/ handle 0x/g)?.length).toBe(1); // replaced, not stacked
      expect(/id (\d+)/.exec(now)?.[1]).not.toBe(stale);
      expect(ping(nsOf("a"), ip("b"), 100)).toEqual([100, 100, 0]);
      expect(ping(nsOf("c"), ip("a"), 20)).toEqual([20, 20, 0]);
    });
    for (const h of HOSTS) sh(["tc", "qdisc", "del", "dev", `h${h}`, "clsact"]); // the killed run's qdiscs
  });

  test("a station the learning table ages out leaves the kernel's map; it returns when it speaks", async () => {
    await withSwitch(
      true,
      async (sw) => {
        expect(ping(nsOf("a"), ip("b"), 5, "0.2")).toEqual([5, 5, 0]);
        expect(sw.kernelStations()).toBeGreaterThanOrEqual(2); // a and b (and c, if it said anything)
        // silent for more than the ageing time (2 s) and one sweep (1 s): both gone from the kernel
        const deadline = Date.now() + 10_000;
        while (sw.kernelStations() > 0 && Date.now() < deadline) await Bun.sleep(200);
        expect(sw.kernelStations()).toBe(0);
        expect(ping(nsOf("a"), ip("b"), 5, "0.2")).toEqual([5, 5, 0]);
        expect(sw.kernelStations()).toBeGreaterThanOrEqual(2); // learned again from their frames
      },
      2,
    );
  });

  test("a GSO TCP stream crosses the fast path whole, bytes checked", async () => {
    await withSwitch(true, async () => {
      ping(nsOf("a"), ip("b"), 3);
      const srv = Bun.spawn(
        ["ip", "netns", "exec", nsOf("b"), process.execPath, "tests/helpers/tcp-xfer.ts", "server", "5009"],
        { stdout: "pipe", stderr: "pipe", timeout: 60_000, killSignal: "SIGKILL" },
      );
      await Bun.sleep(700);
      const cli = sh([
        "ip",
        "netns",
        "exec",
        nsOf("a"),
        process.execPath,
        "tests/helpers/tcp-xfer.ts",
        "client",
        ip("b"),
        "5009",
        "50000000",
      ]);
      const got = await new Response(srv.stdout).text();
      await srv.exited;
      const sent = /sent (\d+) (\d+)/.exec(cli.out),
        recv = /got (\d+) (\d+)/.exec(got);
      expect(sent?.[1]).toBe("50000000");
      expect(recv?.slice(1)).toEqual(sent?.slice(1));
    });
  });
});

/** The programs as text, decoded with the kernel's opcode table (Documentation/bpf/instruction-set),
 * independently of the assembler in ffi/bpf.ts; jumps print their target's index. */
function disassemble(code: Uint8Array): string[] {
  const v = new DataView(code.buffer, code.byteOffset, code.byteLength);
  const out: string[] = [];
  for (let i = 0; i < code.length / 8; i++) {
    const op = code[i * 8],
      d = code[i * 8 + 1] & 15,
      s = code[i * 8 + 1] >> 4,
      off = v.getInt16(i * 8 + 2, true),
      imm = v.getInt32(i * 8 + 4, true),
      to = i + 1 + off;
    const text: Record<number, string> = {
      191: `r${d} = r${s}`,
      183: `r${d} = ${imm}`,
      7: `r${d} += ${imm}`,
      122: `*(u64 *)(r${d} ${off}) = ${imm}`,
      99: `*(u32 *)(r${d} ${off}) = r${s}`,
      123: `*(u64 *)(r${d} ${off}) = r${s}`,
      97: `r${d} = *(u32 *)(r${s} ${off})`,
      113: `r${d} = *(u8 *)(r${s} ${off})`,
      98: `*(u32 *)(r${d} ${off}) = ${imm}`,
      87: `r${d} &= ${imm}`,
      45: `if r${d} > r${s} goto ${to}`,
      37: `if r${d} > ${imm} goto ${to}`,
      5: `goto ${to}`,
      121: `r${d} = *(u64 *)(r${s} ${off})`,
      21: `if r${d} == ${imm} goto ${to}`,
      15: `r${d} += r${s}`,
      85: `if r${d} != ${imm} goto ${to}`,
      93: `if r${d} != r${s} goto ${to}`,
      29: `if r${d} == r${s} goto ${to}`,
      133: `call ${imm}`,
      149: "exit",
    };
    if (op === 0x18) {
      out.push(`${i}: r${d} = map ${s === 1 ? "fd " : "?? "}${imm}`); // ld_imm64 (two slots), src 1: a map fd
      i++;
    } else out.push(`${i}: ${text[op] ?? `unknown opcode 0x${op.toString(16)}`}`);
  }
  return out;
}

/** The shared head (stations map fd 5): destination and source MACs loaded from the frame (helper
 * 26, skb_load_bytes), the source looked up (helper 1) and checked to be on this port (skb field 36,
 * ingress_ifindex), the destination looked up and checked to be elsewhere; else to `pass`. */
const head = (pass: number, flood = pass) => [
  "0: r6 = r1",
  "1: *(u64 *)(r10 -8) = 0",
  "2: *(u64 *)(r10 -16) = 0",
  "3: r1 = r6",
  "4: r2 = 0",
  "5: r3 = r10",
  "6: r3 += -16",
  "7: r4 = 6",
  "8: call 26",
  `9: if r0 != 0 goto ${pass}`,
  "10: r1 = r6",
  "11: r2 = 6",
  "12: r3 = r10",
  "13: r3 += -8",
  "14: r4 = 6",
  "15: call 26",
  `16: if r0 != 0 goto ${pass}`,
  "17: r1 = map fd 5",
  "19: r2 = r10",
  "20: r2 += -8",
  "21: call 1",
  `22: if r0 == 0 goto ${pass}`,
  "23: r7 = *(u32 *)(r0 4)",
  "24: r1 = *(u32 *)(r0 0)",
  "25: r2 = *(u32 *)(r6 36)",
  `26: if r1 != r2 goto ${pass}`,
  "27: r1 = map fd 5",
  "29: r2 = r10",
  "30: r2 += -16",
  "31: call 1",
  `32: if r0 == 0 goto ${flood}`,
  "33: r8 = *(u32 *)(r0 0)",
  "34: r9 = *(u32 *)(r0 4)",
  "35: r2 = *(u32 *)(r6 36)",
  `36: if r8 == r2 goto ${pass}`,
];

describe("the fast path's programs, instruction by instruction", () => {
  test("socket filter: a frame tc redirects or floods is dropped (0), any other kept whole (skb->len)", () => {
    // a destination not in the map from a source learned here: a group address (bit 0 of its first
    // byte) while the flood array (fd 7) counts ports is tc's to flood; unknown unicast is the switch's
    expect(disassemble(sockInsns({ map: 5, ports: 7 }))).toEqual([
      ...head(51, 39),
      "37: r0 = 0",
      "38: exit",
      "39: r1 = *(u8 *)(r10 -16)",
      "40: r1 &= 1",
      "41: if r1 == 0 goto 51",
      "42: *(u32 *)(r10 -24) = 0",
      "43: r1 = map fd 7",
      "45: r2 = r10",
      "46: r2 += -24",
      "47: call 1",
      "48: if r0 == 0 goto 51",
      "49: r1 = *(u32 *)(r0 0)",
      "50: if r1 != 0 goto 37",
      "51: r0 = *(u32 *)(r6 0)",
      "52: exit",
    ]);
  });
  test("tc ingress: known unicast counted (rx on the source's slot, tx on the destination's, fd 6) and redirected; group frames from a station learned here cloned to every other port in the flood array (fd 7), each counted, then dropped; else TC_ACT_OK", () => {
    const bump = (at: number, reg: number, field: number) => [
      `${at}: *(u32 *)(r10 -20) = r${reg}`,
      `${at + 1}: r1 = map fd 6`,
      `${at + 3}: r2 = r10`,
      `${at + 4}: r2 += -20`,
      `${at + 5}: call 1`,
      `${at + 6}: if r0 == 0 goto ${at + 14}`,
      `${at + 7}: r1 = *(u64 *)(r0 ${field})`,
      `${at + 8}: r1 += 1`,
      `${at + 9}: *(u64 *)(r0 ${field}) = r1`,
      `${at + 10}: r1 = *(u32 *)(r6 0)`, // skb->len
      `${at + 11}: r2 = *(u64 *)(r0 ${field + 16})`, // the byte count, 16 after the packet count
      `${at + 12}: r2 += r1`,
      `${at + 13}: *(u64 *)(r0 ${field + 16}) = r2`,
    ];
    expect(disassemble(tcInsns({ map: 5, counters: 6, ports: 7 }))).toEqual([
      ...head(132, 69),
      ...bump(37, 7, 0),
      ...bump(51, 9, 8),
      "65: r1 = r8",
      "66: r2 = 0",
      "67: call 23",
      "68: exit",
      // flood
      "69: r1 = *(u8 *)(r10 -16)",
      "70: r1 &= 1",
      "71: if r1 == 0 goto 132",
      "72: r8 = *(u32 *)(r6 36)",
      "73: *(u32 *)(r10 -24) = 0",
      "74: r1 = map fd 7",
      "76: r2 = r10",
      "77: r2 += -24",
      "78: call 1",
      "79: if r0 == 0 goto 132",
      "80: r9 = *(u32 *)(r0 0)",
      "81: if r9 == 0 goto 132",
      ...bump(82, 7, 0),
      "96: r7 = 1",
      "97: if r7 > r9 goto 130",
      "98: if r7 > 1024 goto 130",
      "99: *(u32 *)(r10 -24) = r7",
      "100: r1 = map fd 7",
      "102: r2 = r10",
      "103: r2 += -24",
      "104: call 1",
      "105: if r0 == 0 goto 128",
      "106: r2 = *(u32 *)(r0 0)",
      "107: if r2 == r8 goto 128",
      "108: *(u32 *)(r10 -28) = r2",
      "109: r1 = *(u32 *)(r0 4)",
      ...bump(110, 1, 8),
      "124: r1 = r6",
      "125: r2 = *(u32 *)(r10 -28)",
      "126: r3 = 0",
      "127: call 13",
      "128: r7 += 1",
      "129: goto 97",
      "130: r0 = 2",
      "131: exit",
      "132: r0 = 0",
      "133: exit",
    ]);
  });
});
