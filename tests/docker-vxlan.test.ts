// A vale network with a VXLAN uplink (-o vni, -o peers), against a remote host built from Linux's own
// vxlan device: namespace R (made here, reached over an underlay veth of this test) holds
// `vxlan id VNI` + a bridge + a namespace C acting as a container there. A Docker container on the vale
// network and C talk with ordinary kernel sockets: ping, UDP and TCP both ways; a station on another
// VNI with an address in the same subnet is never reached. Bad uplink options are refused at create.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { ensureImage, IMAGE } from "./helpers/docker-image.ts";
import { inNs, output } from "./helpers/netns.ts";
import { api, docker, dockerUnavailable, PluginProc, removeStaleTestObjects } from "./helpers/plugin-proc.ts";

const linkExists = (name: string) => spawnSync("ip", ["link", "show", "dev", name]).status === 0;

setDefaultTimeout(120_000);
const why = dockerUnavailable();
if (why) console.warn(`SKIP Docker vxlan tests: ${why}`);

const tag = `bm${process.pid}`;
const NET = `${tag}vx`,
  NET2 = `${tag}vx2`,
  NET3 = `${tag}vx3`,
  CT = `${tag}vxc`,
  CT3 = `${tag}vxg`;
const R = `${tag}R`,
  C = `${tag}C`,
  C3 = `${tag}C3`,
  C4 = `${tag}C4`;
const UNDER = `${tag}u`.slice(0, 15); // the underlay's end in this namespace (made and removed here)
const U_LOCAL = "198.18.130.1",
  U_REMOTE = "198.18.130.2";
const VNI = 4242;
const repo = `${import.meta.dir}/..`;
const plugin = new PluginProc();
const children: ReturnType<typeof Bun.spawn>[] = [];

function sh(cmd: string): string {
  const r = spawnSync("sh", ["-c", cmd], { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** A namespace behind R's bridge for `vni`: a "container" on the remote host (its vxlan sends to
 * this host, or to a multicast group). */
function remoteContainer(n: string, addr: string, vni: number, group = ""): void {
  sh(`ip netns add ${n}`);
  sh(`ip link add c netns ${n} type veth peer name h${vni} netns ${R}`);
  sh(`ip -n ${n} addr add ${addr}/24 dev c`);
  sh(`ip -n ${n} link set c mtu 1450 up`);
  sh(`ip -n ${n} link set lo up`);
  const to = group ? `group ${group}` : `remote ${U_LOCAL} local ${U_REMOTE}`;
  sh(`ip -n ${R} link add vx${vni} type vxlan id ${vni} ${to} dstport 4789 dev u`);
  sh(`ip -n ${R} link add br${vni} type bridge`);
  sh(`ip -n ${R} link set vx${vni} master br${vni}`);
  sh(`ip -n ${R} link set h${vni} master br${vni}`);
  for (const d of [`vx${vni}`, `br${vni}`, `h${vni}`]) sh(`ip -n ${R} link set ${d} up`);
}

/** docker network create -d vale with a subnet and -o options. */
const createNet = (name: string, subnet: string, ...o: string[]) =>
  docker("network", "create", "-d", "vale", "--subnet", subnet, ...o.flatMap((x) => ["-o", x]), name);

const ping = (cmd: string[]) =>
  Number(
    /(\d+) (packets )?received/.exec(
      spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout: 30_000 }).stdout,
    )?.[1] ?? -1,
  );

beforeAll(async () => {
  if (why) return;
  ensureImage();
  await plugin.start();
  removeStaleTestObjects();
  sh(`ip netns add ${R}`);
  sh(`ip link add ${UNDER} type veth peer name u netns ${R}`);
  sh(`ip addr add ${U_LOCAL}/30 dev ${UNDER}`);
  sh(`ip link set ${UNDER} up`);
  sh(`ip -n ${R} addr add ${U_REMOTE}/30 dev u`);
  sh(`ip -n ${R} link set u up`);
  remoteContainer(C, "198.18.131.2", VNI);
  remoteContainer(C3, "198.18.131.3", VNI + 1); // same subnet, other segment
});

afterAll(async () => {
  if (why) return;
  for (const p of children) p.kill("SIGKILL");
  docker("rm", "-f", CT, CT3);
  docker("network", "rm", NET, NET2, NET3);
  await plugin.dispose();
  for (const n of [C, C3, C4, R]) spawnSync("ip", ["netns", "del", n], { timeout: 30_000 });
  spawnSync("ip", ["link", "del", UNDER], { timeout: 30_000 }); // gone with R's end already, normally
});

describe.skipIf(!!why)("vale network with a VXLAN uplink to a host running Linux's vxlan", () => {
  test("bad uplink options are refused at create, each saying what to fix", () => {
    const create = (...o: string[]) => createNet(NET2, "198.18.133.0/24", ...o);
    const refused = (m: RegExp, ...o: string[]) => {
      const r = create(...o);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(m);
    };
    refused(/needs the other hosts/, "vni=7");
    refused(/give the segment with -o vni/, `peers=${U_REMOTE}`);
    refused(/vni=99999999: expected a decimal integer 1..16777215/, "vni=99999999", `peers=${U_REMOTE}`);
    refused(/peers=198.18.130.300: not an IPv4 address/, "vni=7", "peers=198.18.130.300");
    refused(/group= needs|group needs -o vxlan_dev/, "vni=7", "group=239.1.1.1");
    refused(/1450 at most/, "vni=7", `peers=${U_REMOTE}`, "com.docker.network.driver.mtu=1500");
    refused(/vxlan_dev=nonexistent0: no such interface/, "vni=7", "peers=198.18.130.9", "vxlan_dev=nonexistent0");
    refused(/vxlan_port belongs to an uplink/, "vxlan_port=4790");
  });

  test("a container reaches the remote host's container: ping, UDP, TCP both ways; MTU leaves room for VXLAN", async () => {
    const mk = docker(
      "network",
      "create",
      "-d",
      "vale",
      "--subnet",
      "198.18.131.0/24",
      "--ip-range",
      "198.18.131.128/25",
      "--gateway",
      "198.18.131.1",
      "-o",
      `vni=${VNI}`,
      "-o",
      `peers=${U_REMOTE}`,
      NET,
    );
    expect(mk.stderr).toBe("");
    const run = docker("run", "-d", "--name", CT, "--network", NET, "-v", `${repo}:/bunmap:ro`, IMAGE);
    expect(run.stderr).toBe("");
    const link = docker("exec", CT, "ip", "addr", "show", "eth0").stdout;
    expect(link).toContain("mtu 1450"); // the underlay's 1500 less 50
    const ctAddr = /inet (198\.18\.131\.\d+)\//.exec(link)?.[1] ?? "";
    expect(Number(ctAddr.split(".")[3])).toBeGreaterThanOrEqual(128); // from this host's --ip-range
    const view = (await api("/bunmap/networks")).find((n: { uplink: unknown }) => n.uplink);
    expect(view.uplink.vni).toBe(VNI);
    expect(view.uplink.key).toBe(`vxlan:${VNI}@conf:remote=${U_REMOTE}`);
    // the uplink is a Linux vxlan device of the plugin's, switched as a port: VNI, UDP port, MTU, peer
    const dev = `bmvx${VNI}`;
    expect(view.uplink.port).toStartWith(`packet:${dev}@`);
    const [info] = JSON.parse(sh(`ip -d -j link show dev ${dev}`));
    expect([info.linkinfo.info_kind, info.linkinfo.info_data.id, info.linkinfo.info_data.port, info.mtu]).toEqual([
      "vxlan",
      VNI,
      4789,
      1450,
    ]);
    expect(info.ifalias).toMatch(new RegExp(`^bunmap:[0-9a-f]{12}:vx:${VNI}$`));
    expect(sh(`bridge fdb show dev ${dev}`)).toContain(`00:00:00:00:00:00 dst ${U_REMOTE}`);

    expect(ping(["docker", "exec", CT, "ping", "-c", "3", "-W", "2", "198.18.131.2"])).toBe(3);
    expect(ping(["ip", "netns", "exec", C, "ping", "-c", "3", "-i", "0.2", "-W", "2", ctAddr])).toBe(3);
    // the largest packet the MTU allows, unfragmented
    expect(ping(["docker", "exec", CT, "ping", "-c", "2", "-s", "1422", "-W", "2", "198.18.131.2"])).toBe(2);
    // another VNI is another segment, whatever its addresses
    expect(ping(["docker", "exec", CT, "ping", "-c", "2", "-W", "1", "198.18.131.3"])).toBe(0);

    // UDP: the remote side serves, the container asks; then the other way round
    const srv = inNs(C, [`${repo}/tests/helpers/udp-echo.ts`, "server", "7101"]);
    children.push(srv);
    const so = output(srv);
    await so.until(/listening/);
    const u1 = docker("exec", CT, "bun", "/bunmap/tests/helpers/udp-echo.ts", "client", "198.18.131.2", "7101", "3");
    expect(u1.stdout.trim().split("\n")).toEqual([0, 1, 2].map((i) => `echo hello ${i} from 198.18.131.2`));
    docker("exec", "-d", CT, "bun", "/bunmap/tests/helpers/udp-echo.ts", "server", "7102");
    await Bun.sleep(1500);
    const cli = inNs(C, [`${repo}/tests/helpers/udp-echo.ts`, "client", ctAddr, "7102", "3"]);
    const u2 = await new Response(cli.stdout as ReadableStream).text();
    expect(u2.trim().split("\n")).toEqual([0, 1, 2].map((i) => `echo hello ${i} from ${ctAddr}`));

    // TCP, 16 MB each way, checked by CRC-32 (the container keeps TSO on: the uplink segments)
    const bytes = String(16 << 20);
    const tsrv = inNs(C, [`${repo}/tests/helpers/tcp-xfer.ts`, "server", "7103"]);
    children.push(tsrv);
    const tout = output(tsrv);
    await tout.until(/listening/);
    const up = docker("exec", CT, "bun", "/bunmap/tests/helpers/tcp-xfer.ts", "client", "198.18.131.2", "7103", bytes);
    const [, n1, s1] = /sent (\d+) (\d+)/.exec(up.stdout) ?? [];
    expect(n1).toBe(bytes);
    expect(await tout.all()).toContain(`got ${n1} ${s1}`);
    docker("exec", "-d", CT, "sh", "-c", "bun /bunmap/tests/helpers/tcp-xfer.ts server 7104 > /tmp/xfer.out");
    await Bun.sleep(1500);
    const tcli = inNs(C, [`${repo}/tests/helpers/tcp-xfer.ts`, "client", ctAddr, "7104", bytes]);
    const down = await new Response(tcli.stdout as ReadableStream).text();
    const [, n2, s2] = /sent (\d+) (\d+)/.exec(down) ?? [];
    expect(n2).toBe(bytes);
    await Bun.sleep(500);
    expect(docker("exec", CT, "cat", "/tmp/xfer.out").stdout).toContain(`got ${n2} ${s2}`);
  });

  test("a crash of the plugin: the restarted one makes the uplink device again and the container reaches the remote one", async () => {
    await plugin.stop("SIGKILL");
    expect(linkExists(`bmvx${VNI}`)).toBe(true); // left as the crash left it
    await plugin.start();
    const [info] = JSON.parse(sh(`ip -d -j link show dev bmvx${VNI}`));
    expect(info.ifalias).toMatch(new RegExp(`^bunmap:[0-9a-f]{12}:vx:${VNI}$`));
    expect(sh(`bridge fdb show dev bmvx${VNI}`)).toContain(`00:00:00:00:00:00 dst ${U_REMOTE}`);
    expect(ping(["docker", "exec", CT, "ping", "-c", "3", "-W", "2", "198.18.131.2"])).toBe(3);
  });

  test("one VNI, one switch: a second network on the same VNI is refused unless it shares the slice", () => {
    const r = createNet(NET2, "198.18.133.0/24", `vni=${VNI}`, `peers=${U_REMOTE}`);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`vni=${VNI}: network`);
    expect(r.stderr).toContain("already uplinks that VNI");
  });

  test("-o slice_id alone names the segment: the same VNI on every host", async () => {
    const r = createNet(NET2, "198.18.133.0/24", "slice_id=tenant7", `peers=${U_REMOTE}`);
    expect(r.stderr).toBe("");
    const n = (await api("/bunmap/networks")).find((x: { switch: string }) => x.switch === "valetenant7");
    expect(n.uplink.vni).toBe(345543); // FNV-1a of "tenant7" onto 1..16777215 (tests/plugin-uplink.test.ts)
    expect(linkExists("bmvx345543")).toBe(true);
    expect(docker("network", "rm", NET2).status).toBe(0);
    expect(linkExists("bmvx345543")).toBe(false); // the uplink device goes with its network
  });

  test("-o group with -o vxlan_dev: the device joins the group on the underlay; a container reaches the group's station", () => {
    const GROUP = "239.1.1.7",
      vni = VNI + 2;
    remoteContainer(C4, "198.18.134.2", vni, GROUP);
    const mk = createNet(NET3, "198.18.134.0/24", `vni=${vni}`, `group=${GROUP}`, `vxlan_dev=${UNDER}`);
    expect(mk.stderr).toBe("");
    const [info] = JSON.parse(sh(`ip -d -j link show dev bmvx${vni}`));
    expect([info.linkinfo.info_data.id, info.linkinfo.info_data.group, info.linkinfo.info_data.link]).toEqual([
      vni,
      GROUP,
      UNDER,
    ]);
    const run = docker("run", "-d", "--name", CT3, "--network", NET3, "--ip", "198.18.134.200", IMAGE);
    expect(run.stderr).toBe("");
    // the ARP request goes to the group, the reply comes back to this host's address (learned)
    expect(ping(["docker", "exec", CT3, "ping", "-c", "3", "-W", "2", "198.18.134.2"])).toBe(3);
    expect(ping(["ip", "netns", "exec", C4, "ping", "-c", "2", "-W", "2", "198.18.134.200"])).toBe(2);
    docker("rm", "-f", CT3);
    expect(docker("network", "rm", NET3).status).toBe(0);
    expect(linkExists(`bmvx${vni}`)).toBe(false);
  });

  test("uplink devices: one of ours no network uplinks is swept; one of that name not ours is left and refused", () => {
    const [mine] = JSON.parse(sh(`ip -j link show dev bmvx${VNI}`));
    const instance = /^bunmap:([0-9a-f]{12}):/.exec(mine.ifalias)?.[1];
    const orphan = 700000 + (process.pid % 100000),
      foreign = orphan + 1;
    // as a crash between a network's removal and its device's would leave it
    sh(`ip link add bmvx${orphan} type vxlan id ${orphan} dstport 4789`);
    sh(`ip link set dev bmvx${orphan} alias bunmap:${instance}:vx:${orphan}`);
    sh(`ip link add bmvx${foreign} type vxlan id ${foreign} dstport 4789`); // someone else's
    try {
      const r = createNet(NET2, "198.18.133.0/24", `vni=${foreign}`, `peers=${U_REMOTE}`);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`interface bmvx${foreign} exists and is not this network's uplink`);
      expect(docker("network", "inspect", NET2).status).not.toBe(0); // nothing half-made
      expect(linkExists(`bmvx${foreign}`)).toBe(true); // left alone
      expect(linkExists(`bmvx${orphan}`)).toBe(false); // the reconcile after the refusal swept it
    } finally {
      spawnSync("ip", ["link", "del", `bmvx${foreign}`]);
      spawnSync("ip", ["link", "del", `bmvx${orphan}`]);
    }
  });
});
