// Two hosts end to end: two network namespaces joined by an underlay veth, each with its own Docker
// engine and its own vale plugin (docker/host-ns.sh: own data root, exec root, API socket, plugin
// directory in a private mount namespace). A vale network with the same VNI on both, address ranges
// split per host (--ip-range): containers on A reach containers on B (ping, TCP both ways); a second
// VNI on both hosts is its own segment, and none of the first one's frames reach it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { ensureImage, IMAGE } from "./helpers/docker-image.ts";
import { privateEngineUnavailable } from "./helpers/netns.ts";
import { TEST_LABEL } from "./helpers/plugin-proc.ts";

setDefaultTimeout(180_000);
const repo = `${import.meta.dir}/..`;
const why = privateEngineUnavailable();
if (why) console.warn(`SKIP two-host Docker test: ${why}`);

const hosts = { A: `bm${process.pid}A`, B: `bm${process.pid}B` };
const under = { A: "198.18.140.1", B: "198.18.140.2" };
const sock = (h: string) => `/tmp/bunmap-host-${h}/docker.sock`;
const sh = (cmd: string[], timeout = 120_000) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout });
const on = (h: string, ...a: string[]) => {
  const args =
    a[0] === "run" || (a[0] === "network" && a[1] === "create")
      ? [...a.slice(0, a[0] === "run" ? 1 : 2), "--label", TEST_LABEL, ...a.slice(a[0] === "run" ? 1 : 2)]
      : a;
  return sh(["docker", "-H", `unix://${sock(h)}`, ...args]);
};
const hostScript = `${repo}/docker/host-ns.sh`;
/** The plugin's view of its networks on host h. */
const view = (h: string) =>
  JSON.parse(
    sh([
      "ip",
      "netns",
      "exec",
      h,
      "curl",
      "-s",
      "--unix-socket",
      `/tmp/bunmap-host-${h}/plugins/vale.sock`,
      "http://x/bunmap/networks",
    ]).stdout,
  ) as { switch: string; uplink: { vni: number; port: string } | null; ports: { port: string; rx: number }[] }[];
const uplinkRx = (h: string, vni: number) => {
  const n = view(h).find((x) => x.uplink?.vni === vni)!;
  return n.ports.find((p) => p.port === n.uplink!.port)!.rx;
};

beforeAll(() => {
  if (why) return;
  // an interrupted earlier run: stop the engines and plugins it started (their pid files) and remove its files
  for (const d of readdirSync("/tmp").filter((f) => /^bunmap-host-bm\d+[AB]$/.test(f))) {
    const name = d.slice("bunmap-host-".length);
    if (Number(/^bm(\d+)/.exec(name)![1]) === process.pid) continue;
    sh([hostScript, "down", name]);
    sh(["ip", "netns", "del", name]);
  }
  sh(["ip", "netns", "add", hosts.A]);
  sh(["ip", "netns", "add", hosts.B]);
  const link = sh(["ip", "link", "add", "u", "netns", hosts.A, "type", "veth", "peer", "name", "u", "netns", hosts.B]);
  if (link.status !== 0) throw new Error(link.stderr);
  for (const k of ["A", "B"] as const) {
    const up = sh([hostScript, "up", hosts[k], "u", `${under[k]}/30`], 150_000);
    if (up.status !== 0) throw new Error(`host ${k}: ${up.stderr}`);
    ensureImage(sock(hosts[k]));
  }
});

afterAll(() => {
  if (why) return;
  for (const h of Object.values(hosts)) {
    const ids = on(h, "ps", "-aq").stdout.split(/\s+/).filter(Boolean);
    if (ids.length) on(h, "rm", "-f", ...ids);
    for (const n of on(h, "network", "ls", "-q", "--filter", "driver=vale").stdout.split(/\s+/).filter(Boolean))
      on(h, "network", "rm", n);
    sh([hostScript, "down", h]);
    sh(["ip", "netns", "del", h]);
  }
});

describe.skipIf(!!why)("a vale network spanning two hosts (VXLAN between two Docker engines)", () => {
  test("same VNI on both hosts: containers on A and B reach each other; another VNI stays apart", () => {
    // VNI 77: 198.18.150.0/24, A allocates .0/25, B .128/25; VNI 78: 198.18.152.0/24 likewise
    for (const [vni, net] of [
      [77, "198.18.150"],
      [78, "198.18.152"],
    ] as const) {
      for (const [k, range, gw, peer] of [
        ["A", `${net}.0/25`, `${net}.1`, under.B],
        ["B", `${net}.128/25`, `${net}.254`, under.A],
      ] as const) {
        const r = on(
          hosts[k],
          "network",
          "create",
          "-d",
          "vale",
          "--subnet",
          `${net}.0/24`,
          "--ip-range",
          range,
          "--gateway",
          gw,
          "-o",
          `vni=${vni}`,
          "-o",
          // VNI 78 gives every host the same list, this host included (the port skips its own address)
          `peers=${vni === 78 ? `${under.A},${under.B}` : peer}`,
          `span${vni}`,
        );
        expect(r.stderr).toBe("");
      }
    }
    const run = (k: "A" | "B", name: string, net: string) =>
      expect(
        on(hosts[k], "run", "-d", "--name", name, "--network", net, "-v", `${repo}:/bunmap:ro`, IMAGE).stderr,
      ).toBe("");
    run("A", "ca", "span77");
    run("B", "cb", "span77");
    run("A", "ca2", "span78");
    run("B", "cb2", "span78");
    const addr = (k: "A" | "B", c: string) =>
      /inet (\S+)\//.exec(on(hosts[k], "exec", c, "ip", "addr", "show", "eth0").stdout)?.[1] ?? "";
    const a = addr("A", "ca"),
      b = addr("B", "cb"),
      b2 = addr("B", "cb2");
    expect(Number(a.split(".")[3])).toBeLessThan(128); // each host from its own range
    expect(Number(b.split(".")[3])).toBeGreaterThanOrEqual(128);
    expect(on(hosts.A, "exec", "ca", "ip", "link", "show", "eth0").stdout).toContain("mtu 1450");
    // the same with this host's own address first among the peers (the README's example on host A):
    // the underlay is the route to the other host, not loopback; a larger MTU is refused
    expect(on(hosts.A, "exec", "ca2", "ip", "link", "show", "eth0").stdout).toContain("mtu 1450");
    const big = on(
      hosts.A,
      ...["network", "create", "-d", "vale", "--subnet", "198.18.159.0/24", "-o", "vni=79"],
      ...["-o", `peers=${under.A},${under.B}`, "-o", "com.docker.network.driver.mtu=1600", "span79"],
    );
    expect(big.stderr).toContain("com.docker.network.driver.mtu=1600: the uplink leaves by");
    expect(big.stderr).toContain("1450 at most");

    const rx78 = uplinkRx(hosts.B, 78);
    const ping = (k: "A" | "B", c: string, to: string, n = 3) =>
      Number(
        /(\d+) packets received/.exec(on(hosts[k], "exec", c, "ping", "-c", String(n), "-W", "2", to).stdout)?.[1],
      );
    expect(ping("A", "ca", b)).toBe(3);
    expect(ping("B", "cb", a)).toBe(3);

    // TCP both ways, 16 MB, checked by CRC-32 (TSO on in the containers: the uplinks segment)
    for (const [srvK, srv, cliK, cli, to] of [
      ["B", "cb", "A", "ca", b],
      ["A", "ca", "B", "cb", a],
    ] as const) {
      on(hosts[srvK], "exec", "-d", srv, "sh", "-c", "bun /bunmap/tests/helpers/tcp-xfer.ts server 5001 > /tmp/x.out");
      Bun.sleepSync(1500);
      const sent = on(
        hosts[cliK],
        "exec",
        cli,
        "bun",
        "/bunmap/tests/helpers/tcp-xfer.ts",
        "client",
        to,
        "5001",
        String(16 << 20),
      );
      const [, n, sum] = /sent (\d+) (\d+)/.exec(sent.stdout) ?? [];
      expect(Number(n)).toBe(16 << 20);
      Bun.sleepSync(500);
      expect(on(hosts[srvK], "exec", srv, "cat", "/tmp/x.out").stdout).toContain(`got ${n} ${sum}`);
    }
    // none of VNI 77's frames (floods included) reached B's VNI 78 uplink
    expect(uplinkRx(hosts.B, 78)).toBe(rx78);
    // then full-size frames cross (1422 + 28 = 1450, the MTU) on VNI 78, whose peers list this host
    // too (not before the count above: VNI 78's own ARP would have spoilt it)
    const full = on(hosts.A, "exec", "ca2", "ping", "-c", "2", "-s", "1422", "-W", "2", b2).stdout;
    expect(full).toContain("2 packets received");
    // and VNI 78 is a working segment of its own
    expect(ping("A", "ca2", b2)).toBe(3);
    expect(uplinkRx(hosts.B, 78)).toBeGreaterThan(rx78);
    expect(readFileSync(`/tmp/bunmap-host-${hosts.B}/plugin.log`, "utf8")).not.toContain("taken off");
  });
});
