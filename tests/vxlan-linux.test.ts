// bunmap's vxlan: port against Linux's own vxlan device, on the wire. Five namespaces of this test:
//   C1 ─veth─ H (bun run switch: packet:hc1 + vxlan:42, vnet=1)  ═underlay veth═  R (Linux vxlan 42 + bridge) ─veth─ C2
//   C4 ─veth─ H (a second switch: packet:hc4 + vxlan:43, vnet=0)                  R (Linux vxlan 43 + bridge) ─veth─ C3
// C1 keeps TSO and checksum offload on (its GSO frames are segmented and checksummed by the vxlan port,
// vnet=1); C4 has them off (vnet=0: MTU-sized frames with their checksums, as with xdp: ports). C2 and
// C3 keep theirs on: over a veth underlay Linux's vxlan leaves inner checksums partial, which the
// port passes on as partial (vnet=1) or finishes (vnet=0).
//   C5 ─veth─ H (a third switch: packet:hc5 + vxlan:44 on multicast group 239.1.1.44)  R (Linux vxlan 44, same group) ─ C6
// C1..C6 are "containers" with ordinary kernel sockets; ping, UDP and TCP pass both ways between C1
// and C2 (and C4 and C3, C5 and C6), never across VNIs. What our port sends is checked against what
// Linux sends. VNI 42's peer list has a second address (R holds it too): floods go to both, frames
// for a learned station only to the host it was learned from.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { IP4 } from "../src/packet/ipv4.ts";
import { parsePcap } from "../src/packet/pcap.ts";
import { UDP } from "../src/packet/udp.ts";
import { decapsulate, SPORT_MAX, SPORT_MIN, VXLAN_HLEN, VXLAN_OVERHEAD, vxlanVni } from "../src/packet/vxlan.ts";
import { inNs, output, privilegedUnavailable } from "./helpers/netns.ts";

setDefaultTimeout(120_000);
const why = privilegedUnavailable();
if (why) console.warn(`SKIP vxlan interop with Linux: ${why}`);
const tcpdump = !why && spawnSync("tcpdump", ["--version"], { timeout: 10_000 }).status === 0;
if (!why && !tcpdump) console.warn("SKIP the capture comparison: tcpdump is not installed (apt-get install tcpdump)");

const tag = `vx${process.pid % 100000}`;
const ns = {
  H: `bm${tag}H`,
  R: `bm${tag}R`,
  C1: `bm${tag}c1`,
  C2: `bm${tag}c2`,
  C3: `bm${tag}c3`,
  C4: `bm${tag}c4`,
  C5: `bm${tag}c5`,
  C6: `bm${tag}c6`,
};
const U_H = "198.18.100.1",
  U_R = "198.18.100.2",
  U_R2 = "198.18.100.3", // a second peer address, also R's
  GROUP = "239.1.1.44";
const addr = {
  C1: "198.18.101.1",
  C2: "198.18.101.2",
  C3: "198.18.101.3",
  C4: "198.18.101.4",
  C5: "198.18.101.5",
  C6: "198.18.101.6",
};
const root = `${import.meta.dir}/..`;
const children: ReturnType<typeof Bun.spawn>[] = [];
let dir = "";

function sh(cmd: string, timeout = 30_000): string {
  const r = spawnSync("sh", ["-c", cmd], { encoding: "utf8", timeout });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr || r.stdout}`);
  return r.stdout;
}
const inn = (n: string, cmd: string, timeout?: number) => sh(`ip netns exec ${n} ${cmd}`, timeout);

function ping(from: string, to: string, count = 3): number {
  const r = spawnSync("ip", ["netns", "exec", from, "ping", "-c", String(count), "-i", "0.2", "-W", "1", to], {
    encoding: "utf8",
    timeout: 30_000,
  });
  return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? -1);
}

/** A container namespace with one veth end `c` (mtu 1450: room for VXLAN on a 1500-byte underlay). */
function container(n: string, ip: string, hostNs: string, hostIf: string, offloads = false): void {
  sh(`ip netns add ${n}`);
  sh(`ip link add c netns ${n} type veth peer name ${hostIf} netns ${hostNs}`);
  inn(n, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
  sh(`ip -n ${n} addr add ${ip}/24 dev c`);
  sh(`ip -n ${n} link set c mtu 1450 up`);
  sh(`ip -n ${n} link set lo up`);
  // a vnet=0 vxlan port carries MTU-sized frames with their checksums: no TSO/checksum offload there;
  // with vnet=1 GSO frames stay under the 64 KiB buffers (as the plugin's veths)
  if (!offloads) inn(n, "ethtool -K c tx off");
  else sh(`ip -n ${n} link set c gso_max_size 60000`);
  sh(`ip -n ${hostNs} link set ${hostIf} up`);
}

const VNET_PACKET = "@conf:vnet=1,buf_size=65536,rx=copy,tx=copy,rx_slots=256,tx_slots=64";
const VNET_VXLAN = ",vnet=1,buf_size=65536,slots=256";

function startSwitch(hostIf: string, vni: number, vnet: boolean, where: string) {
  const p = inNs(ns.H, [
    `${root}/src/app/switch/main.ts`,
    "-i",
    `packet:${hostIf}${vnet ? VNET_PACKET : ""}`,
    "-i",
    `vxlan:${vni}@conf:${where}${vnet ? VNET_VXLAN : ""}`,
  ]);
  children.push(p);
  return p;
}

/** What crosses R's underlay end (tcpdump, `filter`) while `action` runs: whole frames. */
async function capture(action: () => void, filter: string): Promise<Uint8Array[]> {
  const file = `${dir}/u${Date.now()}.pcap`;
  const cap = Bun.spawn(
    ["ip", "netns", "exec", ns.R, "tcpdump", "--immediate-mode", "-U", "-i", "u", "-w", file, filter],
    { stderr: "pipe", timeout: 60_000 },
  );
  children.push(cap);
  // tcpdump says "listening on u" once its socket is open
  const err = (cap.stderr as ReadableStream<Uint8Array>).getReader();
  let said = "";
  while (!said.includes("listening on")) {
    const r = await err.read();
    if (r.done) throw new Error(`tcpdump: ${said}`);
    said += new TextDecoder().decode(r.value);
  }
  action();
  await Bun.sleep(300);
  cap.kill("SIGTERM");
  await cap.exited;
  const pc = parsePcap(new Uint8Array(readFileSync(file)));
  return pc.records.map((r) => pc.data.subarray(r.offset, r.offset + r.caplen));
}

describe.skipIf(!!why)("vxlan: port with Linux's vxlan device on the same VNI", () => {
  beforeAll(async () => {
    dir = mkdtempSync(`${tmpdir()}/bunmap-vx-`);
    sh(`ip netns add ${ns.H}`);
    sh(`ip netns add ${ns.R}`);
    sh(`ip link add u netns ${ns.H} type veth peer name u netns ${ns.R}`);
    sh(`ip -n ${ns.H} addr add ${U_H}/29 dev u`);
    sh(`ip -n ${ns.R} addr add ${U_R}/29 dev u`);
    sh(`ip -n ${ns.R} addr add ${U_R2}/29 dev u`);
    for (const n of [ns.H, ns.R]) {
      sh(`ip -n ${n} link set u up`);
      sh(`ip -n ${n} link set lo up`);
    }
    container(ns.C1, addr.C1, ns.H, "hc1", true);
    container(ns.C4, addr.C4, ns.H, "hc4");
    container(ns.C2, addr.C2, ns.R, "hc2", true); // Linux's side: offloads on, as users have them
    // over a veth underlay Linux's vxlan forwards its senders' GSO frames whole: a vnet=0 port can
    // carry MTU-sized frames only, so C3 (VNI 43's far end) sends those
    container(ns.C3, addr.C3, ns.R, "hc3");
    container(ns.C5, addr.C5, ns.H, "hc5");
    container(ns.C6, addr.C6, ns.R, "hc6");
    for (const [vni, hostIf, where] of [
      [42, "hc2", `remote ${U_H} local ${U_R}`],
      [43, "hc3", `remote ${U_H} local ${U_R}`],
      [44, "hc6", `group ${GROUP}`],
    ] as const) {
      sh(`ip -n ${ns.R} link add vx${vni} type vxlan id ${vni} ${where} dstport 4789 dev u`);
      sh(`ip -n ${ns.R} link add br${vni} type bridge`);
      sh(`ip -n ${ns.R} link set vx${vni} master br${vni}`);
      sh(`ip -n ${ns.R} link set ${hostIf} master br${vni}`);
      sh(`ip -n ${ns.R} link set vx${vni} up`);
      sh(`ip -n ${ns.R} link set br${vni} up`);
    }
    for (const [p, vni] of [
      [startSwitch("hc1", 42, true, `remote=${U_R}+${U_R2}`), 42],
      [startSwitch("hc4", 43, false, `remote=${U_R}`), 43],
      [startSwitch("hc5", 44, false, `group=${GROUP},dev=u`), 44],
    ] as const)
      await output(p)
        .until(/switch: 2 ports/)
        .catch((e) => {
          throw new Error(`switch for VNI ${vni}: ${e}`);
        });
  });

  afterAll(async () => {
    for (const p of children) p.kill("SIGKILL");
    await Promise.all(children.map((p) => p.exited));
    for (const n of Object.values(ns)) spawnSync("ip", ["netns", "del", n], { timeout: 30_000 });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("ping both ways, on each VNI", () => {
    expect(ping(ns.C1, addr.C2)).toBe(3);
    expect(ping(ns.C2, addr.C1)).toBe(3);
    expect(ping(ns.C4, addr.C3)).toBe(3);
    expect(ping(ns.C3, addr.C4)).toBe(3);
    expect(ping(ns.C5, addr.C6)).toBe(3); // over the multicast group
    expect(ping(ns.C6, addr.C5)).toBe(3);
    // the largest frame the 1450-byte MTU allows, both ways
    const big = (from: string, to: string) =>
      spawnSync(
        "ip",
        ["netns", "exec", from, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1422", to],
        {
          encoding: "utf8",
          timeout: 30_000,
        },
      ).stdout;
    expect(big(ns.C1, addr.C2)).toContain("2 received");
    expect(big(ns.C2, addr.C1)).toContain("2 received");
  });

  test("VNIs are isolated: nothing crosses between 42, 43 and 44", () => {
    expect(ping(ns.C1, addr.C3, 2)).toBe(0);
    expect(ping(ns.C4, addr.C2, 2)).toBe(0);
    expect(ping(ns.C2, addr.C4, 2)).toBe(0);
    expect(ping(ns.C5, addr.C2, 2)).toBe(0);
    expect(ping(ns.C6, addr.C1, 2)).toBe(0);
    expect(ping(ns.C3, addr.C1, 2)).toBe(0);
  });

  test("UDP both ways (kernel sockets)", async () => {
    const echo = async (srvNs: string, srvAddr: string, cliNs: string) => {
      const srv = inNs(srvNs, [`${root}/tests/helpers/udp-echo.ts`, "server", "7007"]);
      children.push(srv);
      await output(srv).until(/listening/);
      const cli = inNs(cliNs, [`${root}/tests/helpers/udp-echo.ts`, "client", srvAddr, "7007", "5"]);
      const out = await new Response(cli.stdout as ReadableStream).text();
      expect(await cli.exited).toBe(0);
      srv.kill("SIGKILL");
      return out.trim().split("\n");
    };
    const ab = await echo(ns.C2, addr.C2, ns.C1);
    expect(ab).toEqual([0, 1, 2, 3, 4].map((i) => `echo hello ${i} from ${addr.C2}`));
    const ba = await echo(ns.C1, addr.C1, ns.C2);
    expect(ba).toEqual([0, 1, 2, 3, 4].map((i) => `echo hello ${i} from ${addr.C1}`));
  });

  test("TCP both ways on both VNIs: 8 MB, byte for byte (CRC-32 of the stream)", async () => {
    const xfer = async (srvNs: string, srvAddr: string, cliNs: string) => {
      const srv = inNs(srvNs, [`${root}/tests/helpers/tcp-xfer.ts`, "server", "7008"]);
      children.push(srv);
      const srvOut = output(srv);
      await srvOut.until(/listening/);
      const cli = inNs(cliNs, [`${root}/tests/helpers/tcp-xfer.ts`, "client", srvAddr, "7008", String(8 << 20)]);
      const sent = await new Response(cli.stdout as ReadableStream).text();
      expect(await cli.exited).toBe(0);
      const got = await srvOut.all();
      const [, n, sum] = /sent (\d+) (\d+)/.exec(sent) ?? [];
      expect(Number(n)).toBe(8 << 20);
      expect(got).toContain(`got ${n} ${sum}`);
    };
    await xfer(ns.C2, addr.C2, ns.C1); // C1 sends GSO frames (vnet=1)
    await xfer(ns.C1, addr.C1, ns.C2);
    await xfer(ns.C3, addr.C3, ns.C4); // C4 sends MTU-sized frames (vnet=0)
    await xfer(ns.C4, addr.C4, ns.C3);
  });

  test("pktgen --vxlan on the underlay: Linux's vxlan decapsulates every datagram to the container behind it", async () => {
    const mac = (n: string, dev: string) => inn(n, `cat /sys/class/net/${dev}/address`).trim();
    const srv = inNs(ns.C2, [`${root}/tests/helpers/udp-echo.ts`, "server", "7010"]);
    children.push(srv);
    const got = output(srv);
    await got.until(/listening/);
    const tx = inNs(ns.H, [
      `${root}/src/app/pktgen/main.ts`,
      ...["-i", "packet:u", "-f", "tx", "-n", "100", "-R", "1000", "-w", "0", "-l", "80"],
      ...["-D", mac(ns.R, "u"), "-s", "198.18.101.9:7000", "-d", `${addr.C2}:7010`],
      ...["--vxlan", `42,${U_H},${U_R},02:00:00:00:42:01,${mac(ns.C2, "c")}`],
    ]);
    expect(await tx.exited).toBe(0);
    await Bun.sleep(500);
    srv.kill("SIGTERM");
    const lines = (await got.all()).split("\n").filter((l) => l.startsWith("from 198.18.101.9:7000 "));
    expect(lines.length).toBe(100);
  });

  test.skipIf(!tcpdump)("floods go to every peer; a learned station's frames only to its host", async () => {
    inn(ns.C1, "ip neigh flush all"); // the next ping starts with an ARP broadcast
    const frames = await capture(() => expect(ping(ns.C1, addr.C2, 3)).toBe(3), `udp port 4789 and src host ${U_H}`);
    const dst = (f: Uint8Array) => f.subarray(14 + IP4.dst, 14 + IP4.dst + 4).join(".");
    const innerDst = (f: Uint8Array) => f.subarray(VXLAN_OVERHEAD, VXLAN_OVERHEAD + 6);
    const c2 = inn(ns.C2, "cat /sys/class/net/c/address")
      .trim()
      .split(":")
      .map((h) => parseInt(h, 16));
    const toC2 = (f: Uint8Array) => innerDst(f).every((b, i) => b === c2[i]);
    const flood = frames.filter((f) => innerDst(f)[0] & 1);
    expect(flood.length).toBeGreaterThanOrEqual(2); // the ARP request, to both peers
    expect(new Set(flood.map(dst))).toEqual(new Set([U_R, U_R2]));
    const unicast = frames.filter(toC2);
    expect(unicast.length).toBeGreaterThanOrEqual(3); // the echo requests
    expect(new Set(unicast.map(dst))).toEqual(new Set([U_R])); // never to the other peer
  });

  test.skipIf(!tcpdump)(
    "on the wire, our frames are Linux's: same headers, flags, VNI, TTL, DF; UDP checksum 0",
    async () => {
      // both directions on the remote's underlay end during one ping
      const frames = await capture(() => expect(ping(ns.C1, addr.C2, 2)).toBe(2), "udp port 4789");
      const src = (f: Uint8Array) => f.subarray(14 + IP4.src, 14 + IP4.src + 4).join(".");
      const ours = frames.filter((f) => src(f) === U_H),
        linux = frames.filter((f) => src(f) === U_R);
      expect(ours.length).toBeGreaterThanOrEqual(2); // the echo requests
      expect(linux.length).toBeGreaterThanOrEqual(2); // and Linux's replies
      const outer = (f: Uint8Array) => {
        const inner = decapsulate(f, 0, f.length);
        expect(inner).toBe(VXLAN_OVERHEAD);
        return {
          overhead: inner,
          vxlan: [...f.subarray(inner - VXLAN_HLEN, inner)],
          vni: vxlanVni(f, inner - VXLAN_HLEN),
          ipVersionIhl: f[14],
          tos: f[14 + IP4.tos],
          ttl: f[14 + IP4.ttl],
          fragBits: f[14 + IP4.off] & 0xe0,
          ipLenMatches: ((f[16] << 8) | f[17]) === f.length - 14,
          udpLenMatches: ((f[34 + UDP.len] << 8) | f[34 + UDP.len + 1]) === f.length - 34,
          dport: (f[34 + UDP.dport] << 8) | f[34 + UDP.dport + 1],
        };
      };
      for (const f of ours) {
        expect(outer(f)).toEqual(outer(linux[0]));
        expect((f[34 + UDP.sum] << 8) | f[34 + UDP.sum + 1]).toBe(0);
        const sport = (f[34] << 8) | f[35];
        expect(sport >= SPORT_MIN && sport <= SPORT_MAX).toBe(true);
      }
      expect(outer(linux[0]).vni).toBe(42);
    },
  );
});
