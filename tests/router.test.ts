// The router NF: rewrites checked against full recomputation on synthetic frames, ARP answered and
// learned; then client <-> router <-> server in three namespaces, kernel-stack ping and UDP through
// bunmap's router on packet: ports (and xdp: when libxdp is there).
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { libxdp } from "../ffi/xsk.ts";
import { parseRouterArgs } from "../src/app/router/main.ts";
import { ROUTER_DROPS, RouterNf, Verdict } from "../src/nf/router.ts";
import { NfRunner } from "../src/nf/runner.ts";
import { ARP_REPLY, ARP_REQUEST, arpOp, writeArp } from "../src/packet/arp.ts";
import { formatMac, parseMac } from "../src/packet/ethernet.ts";
import { get32, ipv4ChecksumOk, parseIPv4 } from "../src/packet/ipv4.ts";
import { udpChecksumOk } from "../src/packet/udp.ts";
import { UdpFlow } from "../src/packet/udpflow.ts";
import { openPort } from "../src/port/open.ts";
import { receiveFrames, sendFrames } from "./helpers/frames-io.ts";
import { privilegedUnavailable } from "./helpers/netns.ts";

setDefaultTimeout(60_000);

const R = parseIPv4("198.18.1.1"),
  CL = parseIPv4("198.18.1.2"),
  SV = parseIPv4("198.18.1.3");
const RMAC = parseMac("02:00:00:00:01:01"),
  CMAC = parseMac("02:00:00:00:01:02"),
  SMAC = parseMac("02:00:00:00:01:03");

function udpFrame(src: number, dst: number, srcMac: Uint8Array, dstMac: Uint8Array, size = 100) {
  const r = (a: number, p: number) => ({ v6: false, start: a, end: a, port0: p, port1: p });
  return new UdpFlow({
    v6: false,
    srcMac,
    dstMac,
    src: r(src, 4000),
    dst: r(dst, 7000),
    size,
    minSize: 0,
    randomSrc: false,
    randomDst: false,
    stampBytes: 0,
    vnetHdr: 0,
  }).frame.slice();
}

describe("router NF on synthetic frames", () => {
  test("client -> router is rewritten to router -> server; checksums verify from scratch; TTL - 1", () => {
    const nf = new RouterNf({ routerIp: R, clientIp: CL, serverIp: SV }, RMAC);
    nf.neigh.set(SV, SMAC);
    const f = udpFrame(CL, R, CMAC, RMAC);
    const ttl = f[22];
    expect(nf.handle(f, 0, f.length)).toBe(Verdict.Forward);
    expect([get32(f, 26), get32(f, 30)]).toEqual([R, SV]);
    expect([formatMac(f, 0), formatMac(f, 6)]).toEqual([formatMac(SMAC), formatMac(RMAC)]);
    expect(f[22]).toBe(ttl - 1);
    expect(ipv4ChecksumOk(f, 14)).toBe(true);
    expect(udpChecksumOk(f, 14, 34)).toBe(true);
    expect(nf.neigh.get(CL)).toEqual(CMAC); // learned from the packet
    // and the reply goes back to the client
    const back = udpFrame(SV, R, SMAC, RMAC);
    expect(nf.handle(back, 0, back.length)).toBe(Verdict.Forward);
    expect([get32(back, 26), get32(back, 30)]).toEqual([R, CL]);
    expect(udpChecksumOk(back, 14, 34)).toBe(true);
  });
  test("unknown neighbour, strangers, TTL 1 and non-IP are dropped; UDP checksum 0 stays 0", () => {
    const nf = new RouterNf({ routerIp: R, clientIp: CL, serverIp: SV }, RMAC);
    const f = udpFrame(CL, R, CMAC, RMAC);
    expect(nf.handle(f, 0, f.length)).toBe(Verdict.Drop);
    expect(nf.stats.noNeighbour).toBe(1);
    expect(nf.unresolved()).toEqual([SV]);
    nf.neigh.set(SV, SMAC);
    const stranger = udpFrame(parseIPv4("198.18.9.9"), R, CMAC, RMAC);
    expect(nf.handle(stranger, 0, stranger.length)).toBe(Verdict.Drop);
    const t1 = udpFrame(CL, R, CMAC, RMAC);
    t1[22] = 1;
    expect(nf.handle(t1, 0, t1.length)).toBe(Verdict.Drop);
    const z = udpFrame(CL, R, CMAC, RMAC);
    z[40] = 0;
    z[41] = 0;
    expect(nf.handle(z, 0, z.length)).toBe(Verdict.Forward);
    expect([z[40], z[41]]).toEqual([0, 0]);
    expect(ipv4ChecksumOk(z, 14)).toBe(true);
  });
  test("ARP: requests for the router are answered in place; senders are learned; requests it sends are well formed", () => {
    const nf = new RouterNf({ routerIp: R, clientIp: CL, serverIp: SV }, RMAC);
    const f = new Uint8Array(60);
    writeArp(f, 0, ARP_REQUEST, CMAC, CL, new Uint8Array(6), R, new Uint8Array(6).fill(255));
    expect(nf.handle(f, 0, 60)).toBe(Verdict.Reply);
    expect(arpOp(f, 0)).toBe(ARP_REPLY);
    expect([formatMac(f, 0), formatMac(f, 6), formatMac(f, 22), get32(f, 28), formatMac(f, 32), get32(f, 38)]).toEqual([
      formatMac(CMAC),
      formatMac(RMAC),
      formatMac(RMAC),
      R,
      formatMac(CMAC),
      CL,
    ]);
    expect(nf.neigh.get(CL)).toEqual(CMAC);
    const q = new Uint8Array(60);
    expect(nf.arpRequest(q, 0, SV)).toBe(60);
    expect([formatMac(q, 0), arpOp(q, 0), get32(q, 28), get32(q, 38)]).toEqual(["ff:ff:ff:ff:ff:ff", 1, R, SV]);
  });
  test("on the runner with two ports: each frame leaves by its new destination's side, ARP replies where they came in, drops counted by reason", () => {
    const r = `rt${process.pid}`;
    const nf = new RouterNf({ routerIp: R, clientIp: CL, serverIp: SV }, RMAC, 2);
    const run = new NfRunner({ client: `shm:${r}{0@conf:pipes=2`, server: `shm:${r}{1` }, nf.process, {
      reasons: [...ROUTER_DROPS],
    });
    const c = openPort(`shm:${r}}0`),
      s = openPort(`shm:${r}}1`);
    try {
      sendFrames(c, [udpFrame(CL, R, CMAC, RMAC)]); // the server's MAC unknown yet: waits for ARP
      run.round();
      const who = new Uint8Array(60);
      writeArp(who, 0, ARP_REQUEST, SMAC, SV, new Uint8Array(6), R, new Uint8Array(6).fill(255));
      sendFrames(s, [who]); // the server asks for the router: answered on the server's side, learned
      run.round();
      const ttl1 = udpFrame(CL, R, CMAC, RMAC);
      ttl1[22] = 1;
      const ipv6 = udpFrame(CL, R, CMAC, RMAC);
      ipv6[12] = 0x86;
      ipv6[13] = 0xdd;
      const stranger = udpFrame(parseIPv4("198.18.9.9"), R, CMAC, RMAC);
      sendFrames(c, [ttl1, ipv6, stranger, udpFrame(CL, R, CMAC, RMAC)]);
      run.round();
      const atServer = receiveFrames(s);
      expect(atServer.map((f) => arpOp(f, 0) === ARP_REPLY || [get32(f, 26), get32(f, 30)])).toEqual([true, [R, SV]]);
      expect(receiveFrames(c)).toEqual([]);
      sendFrames(s, [udpFrame(SV, R, SMAC, RMAC)]); // the server's reply: to the client's side
      run.round();
      const atClient = receiveFrames(c);
      expect(atClient.map((f) => [get32(f, 26), get32(f, 30), formatMac(f, 0)])).toEqual([[R, CL, formatMac(CMAC)]]);
      const k = run.counters();
      expect(k.drops).toMatchObject({
        "waiting for ARP": 1,
        "not IPv4": 1,
        "not between client and server via the router": 1,
        "TTL expired": 1,
        "ARP with nothing to answer": 0,
      });
      expect(k.ports.map((p) => [p.name, p.rxPackets, p.txPackets])).toEqual([
        ["client", 5, 1],
        ["server", 2, 2],
      ]);
    } finally {
      run.close();
      c.close();
      s.close();
    }
  });
  test("arguments", () => {
    expect(() => parseRouterArgs(["-i", "packet:a"])).toThrow(/--ip is required/);
    expect(() =>
      parseRouterArgs(["-i", "packet:a", "--ip", "1.2.3", "--client", "1.1.1.1", "--server", "1.1.1.2"]),
    ).toThrow(/IPv4 address/);
    expect(() =>
      parseRouterArgs([
        "-i",
        "a",
        "-i",
        "b",
        "-i",
        "c",
        "--ip",
        "1.1.1.1",
        "--client",
        "1.1.1.2",
        "--server",
        "1.1.1.3",
      ]),
    ).toThrow(/one or two ports/);
    expect(() => parseRouterArgs(["-i", "a", "--ip", "1.1.1.1", "--client", "1.1.1.1", "--server", "1.1.1.3"])).toThrow(
      /three different/,
    );
  });
});

const why =
  privilegedUnavailable() ??
  (spawnSync("ping", ["-V"]).status !== 0
    ? "ping (iputils-ping) is not installed"
    : spawnSync("ethtool", ["--version"]).status !== 0
      ? "ethtool is not installed"
      : null);
if (why) console.warn(`SKIP router topology tests: ${why}`);
const noXdp = (() => {
  try {
    libxdp();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
})();

const tag = `r${process.pid % 100000}`;
const NS = { c: `bm${tag}c`, r: `bm${tag}r`, s: `bm${tag}s` };
const sh = (cmd: string[]) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout: 180_000 });
const must = (cmd: string[]) => {
  const r = sh(cmd);
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
afterAll(() => {
  for (const n of Object.values(NS)) sh(["ip", "netns", "del", n]);
});

function topology() {
  for (const n of Object.values(NS)) must(["ip", "netns", "add", n]);
  must(["ip", "link", "add", `${tag}c0`, "netns", NS.c, "type", "veth", "peer", "name", `${tag}r0`, "netns", NS.r]);
  must(["ip", "link", "add", `${tag}s0`, "netns", NS.s, "type", "veth", "peer", "name", `${tag}r1`, "netns", NS.r]);
  for (const [n, dev, addr] of [
    [NS.c, `${tag}c0`, "198.18.1.2/24"],
    [NS.s, `${tag}s0`, "198.18.1.3/24"],
    [NS.r, `${tag}r0`, ""],
    [NS.r, `${tag}r1`, ""],
  ]) {
    must(["ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    must(["ip", "-n", n, "link", "set", dev, "up"]);
    if (addr) {
      must(["ip", "-n", n, "addr", "add", addr, "dev", dev]);
      // checksums must be in the frames the router sees (as the Docker example's `ethtool -K eth0 tx off`)
      must(["ip", "netns", "exec", n, "ethtool", "-K", dev, "tx", "off"]);
    }
  }
}

describe.skipIf(!!why)("client <-> router <-> server (three namespaces)", () => {
  for (const be of ["packet", "xdp"] as const) {
    test.skipIf(be === "xdp" && !!noXdp)(
      `${be}: ping and UDP go through the server and come back from the router`,
      async () => {
        if (be === "packet") topology();
        const router = Bun.spawn(
          [
            "ip",
            "netns",
            "exec",
            NS.r,
            process.execPath,
            `${import.meta.dir}/../src/app/router/main.ts`,
            "-i",
            `${be}:${tag}r0`,
            "-i",
            `${be}:${tag}r1`,
            "--ip",
            "198.18.1.1",
            "--client",
            "198.18.1.2",
            "--server",
            "198.18.1.3",
            "-T",
            "200",
          ],
          { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" },
        );
        const server = Bun.spawn(
          ["ip", "netns", "exec", NS.s, process.execPath, `${import.meta.dir}/helpers/udp-echo.ts`, "server", "7000"],
          { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" },
        );
        try {
          await Bun.sleep(1500); // router open + first ARP round, server bound
          const ping = sh(["ip", "netns", "exec", NS.c, "ping", "-c", "5", "-i", "0.2", "-W", "2", "198.18.1.1"]);
          expect(ping.stdout).toMatch(/5 packets transmitted, [45] received/); // the first may wait for ARP
          const snmp = must(["ip", "netns", "exec", NS.s, "cat", "/proc/net/snmp"])
            .split("\n")
            .filter((l) => l.startsWith("Icmp:"));
          const head = snmp[0].split(" "),
            vals = snmp[1].split(" ");
          const inEchos = Number(vals[head.indexOf("InEchos")]);
          expect(inEchos).toBeGreaterThanOrEqual(4); // the server answered them: the router forwarded, not faked
          const client = Bun.spawn(
            [
              "ip",
              "netns",
              "exec",
              NS.c,
              process.execPath,
              `${import.meta.dir}/helpers/udp-echo.ts`,
              "client",
              "198.18.1.1",
              "7000",
              "3",
            ],
            { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe" },
          );
          const out = await new Response(client.stdout).text();
          expect(await client.exited).toBe(0);
          expect(out.trim().split("\n")).toEqual([
            "echo hello 0 from 198.18.1.1",
            "echo hello 1 from 198.18.1.1",
            "echo hello 2 from 198.18.1.1",
          ]);
        } finally {
          router.kill("SIGTERM");
          server.kill();
          await router.exited;
        }
        const rout = await new Response(router.stdout).text();
        expect(rout).toMatch(/router: forwarded (\d+)/);
        expect(Number(/forwarded (\d+)/.exec(rout)![1])).toBeGreaterThanOrEqual(14); // 2 x (4..5 pings + 3 datagrams)
        const sout = await new Response(server.stdout).text();
        expect(sout).toContain("from 198.18.1.1:"); // the server only ever sees the router
      },
    );
  }
});
