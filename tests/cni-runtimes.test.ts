// The CNI plugin under real runtimes: containerd (`ctr run --cni`, a containerd of the test's own)
// and podman (CNI backend, storage of its own) on one vale network, with a chained portmap
// publishing a podman container's port to an outside namespace; a Docker container and a
// containerd container on one Docker vale network; two hosts (namespaces, each with its own
// datapath process and containerd) over the VXLAN uplink. Containers ping and exchange TCP (CRC-32
// of the stream compared end to end); when the runtimes remove them, nothing of theirs is left.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { buildCniDir, cniUnavailable, removeDir } from "./helpers/cni.ts";
import { buildRootfs, ensureImage, IMAGE } from "./helpers/docker-image.ts";
import { privilegedUnavailable } from "./helpers/netns.ts";
import { docker, dockerUnavailable, must, PluginProc, removeStaleTestObjects, sh } from "./helpers/plugin-proc.ts";
import { Containerd, Podman, runtimesUnavailable } from "./helpers/runtimes.ts";

setDefaultTimeout(300_000);
const repo = `${import.meta.dir}/..`;
const why = privilegedUnavailable() ?? cniUnavailable() ?? runtimesUnavailable();
if (why) console.warn(`SKIP CNI runtime tests: ${why}`);
const XFER = "/bunmap/tests/helpers/tcp-xfer.ts";

let bin = ""; // the compiled executable and the reference plugins
let work = "";
let rootfs = "";
const namespaces: string[] = [];
const plugins: PluginProc[] = [];
const runtimes: { stop(): unknown }[] = [];

function netns(tag: string): string {
  const ns = `bmrt${process.pid}${tag}`;
  must(["ip", "netns", "add", ns]);
  namespaces.push(ns);
  must(["ip", "-n", ns, "link", "set", "lo", "up"]);
  must(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  return ns;
}

async function pluginIn(ns: string | null, sock: string | null): Promise<PluginProc> {
  const p = new PluginProc(sock ? { BUNMAP_PLUGIN_SOCK: sock } : {}, ns ? ["ip", "netns", "exec", ns] : []);
  plugins.push(p);
  await p.start();
  return p;
}

/** A directory holding one conflist (ctr loads the first config it finds; podman names the network by it). */
function netd(tag: string, list: object): string {
  const d = `${work}/netd-${tag}`;
  mkdirSync(d, { recursive: true });
  writeFileSync(`${d}/10-${tag}.conflist`, JSON.stringify(list));
  return d;
}
const bunmapEntry = (sock: string | null, ipam: object, extra: object = {}) => ({
  type: "bunmap",
  ...(sock ? { socket: sock } : {}),
  ipam: { type: "host-local", ...ipam },
  ...extra,
});

/** A ctr container's IPv4 address, once CNI gave it one. */
async function ctrAddress(c: Containerd, id: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(c.exec(id, "ip", "-4", "addr", "show", "eth0").stdout);
    if (m) return m[1];
    await Bun.sleep(100);
  }
  throw new Error(`ctr container ${id} got no address: ${readFileSync(c.log(id), "utf8").trim()}`);
}
const pings = (out: string) => Number(/(\d+) packets received/.exec(out)?.[1] ?? -1);

/** TCP between two containers: the server's and the client's "BYTES CRC" must agree. */
async function tcp(
  server: (...cmd: string[]) => { stdout: string },
  serverDetached: (cmd: string) => unknown,
  client: (...cmd: string[]) => { stdout: string; stderr?: string },
  ip: string,
  port: number,
) {
  serverDetached(`bun ${XFER} server ${port} > /tmp/xfer${port}.out`);
  await Bun.sleep(800);
  const sent = /sent (\d+ \d+)/.exec(client("bun", XFER, "client", ip, String(port), "8000000").stdout)?.[1];
  let got: string | undefined;
  for (let i = 0; i < 50 && !got; i++) {
    got = /got (\d+ \d+)/.exec(server("cat", `/tmp/xfer${port}.out`).stdout)?.[1];
    if (!got) await Bun.sleep(100);
  }
  expect(sent).toMatch(/^8000000 \d+$/);
  expect(got).toBe(sent);
}

beforeAll(() => {
  if (why) return;
  bin = buildCniDir();
  work = mkdtempSync(`${tmpdir()}/bunmap-cni-rt-`);
  rootfs = `${work}/rootfs`;
  mkdirSync(rootfs);
  buildRootfs(rootfs);
});

afterAll(async () => {
  if (why) return;
  for (const r of runtimes.reverse()) await r.stop();
  for (const p of plugins) await p.dispose();
  for (const ns of namespaces) sh(["ip", "netns", "del", ns]);
  removeDir(bin);
  removeDir(work);
});

describe.skipIf(!!why)("CNI with containerd and podman", () => {
  test("ctr run --cni and podman run --network on one vale network: ping, TCP both ways, portmap from outside; removal leaves nothing", async () => {
    const H = netns("h"),
      O = netns("o");
    must(["ip", "link", "add", "up0", "netns", H, "type", "veth", "peer", "name", "up0", "netns", O]);
    must(["ip", "-n", H, "addr", "add", "198.18.63.1/30", "dev", "up0"]);
    must(["ip", "-n", O, "addr", "add", "198.18.63.2/30", "dev", "up0"]);
    for (const ns of [H, O]) must(["ip", "-n", ns, "link", "set", "up0", "up"]);
    const sock = `${work}/h.sock`;
    const plugin = await pluginIn(H, sock);
    const ipamDir = `${work}/ipam-rt`;
    const dir = netd("rt", {
      cniVersion: "1.0.0",
      name: "rt",
      plugins: [
        bunmapEntry(sock, { dataDir: ipamDir, ranges: [[{ subnet: "198.18.72.0/24" }]] }),
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    });
    const ctrd = new Containerd(`${work}/containerd-h`, H, dir, bin);
    runtimes.push(ctrd);
    await ctrd.start();
    const pod = new Podman(`${work}/podman`, H, dir, bin);
    runtimes.push(pod);
    pod.importRootfs(rootfs, "localhost/bunmap-test:cni");

    const c1 = ctrd.run("c1", rootfs, [[repo, "/bunmap"]], ["sleep", "100000"]);
    const p1 = pod.podman(
      ...["run", "-d", "--name", "p1", "--network", "rt", "-p", "8083:80", "-v", `${repo}:/bunmap:ro`],
      ...["localhost/bunmap-test:cni", "sleep", "100000"],
    );
    expect(p1.status, p1.stderr).toBe(0);
    const ipC = await ctrAddress(ctrd, "c1");
    const ipP = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(
      pod.podman("exec", "p1", "ip", "-4", "addr", "show", "eth0").stdout,
    )?.[1];
    expect(ipC).toMatch(/^198\.18\.72\.\d+$/);
    expect(ipP).toMatch(/^198\.18\.72\.\d+$/);
    expect(ipP).not.toBe(ipC);
    // both on the one switch: the datapath's view holds both endpoints, joined
    const view = () => JSON.parse(sh(["curl", "-s", "--unix-socket", sock, "http://x/bunmap/networks"]).stdout);
    expect(
      view()[0]
        .endpoints.map((e: { address: string }) => e.address.split("/")[0])
        .sort(),
    ).toEqual([ipC, ipP!].sort());

    expect(pings(ctrd.exec("c1", "ping", "-c", "3", "-W", "2", ipP!).stdout)).toBe(3);
    expect(pings(pod.podman("exec", "p1", "ping", "-c", "3", "-W", "2", ipC).stdout)).toBe(3);
    const inPod = (...cmd: string[]) => pod.podman("exec", "p1", ...cmd);
    const inCtr = (...cmd: string[]) => ctrd.exec("c1", ...cmd);
    await tcp(inPod, (cmd) => pod.podman("exec", "-d", "p1", "sh", "-c", cmd), inCtr, ipP!, 5001);
    await tcp(inCtr, (cmd) => ctrd.detached("c1", cmd), inPod, ipC, 5002);

    // podman's -p through the chained portmap: the outside namespace reaches the container's httpd
    expect(pod.podman("exec", "-d", "p1", "httpd", "-f", "-p", "80", "-h", "/bunmap").status).toBe(0);
    await Bun.sleep(300);
    const page = sh(["ip", "netns", "exec", O, "curl", "-s", "--max-time", "5", "http://198.18.63.1:8083/README.md"]);
    expect(page.stdout).toBe(readFileSync(`${repo}/README.md`, "utf8"));

    // the runtimes take them away: ctr's DEL when its task ends, podman's with rm
    must(ctrd.ctrArgs(["task", "kill", "-s", "SIGKILL", "c1"]));
    await c1.exited;
    expect(pod.podman("rm", "-f", "-t", "0", "p1").status).toBe(0);
    expect(view()).toEqual([]);
    const links = JSON.parse(sh(["ip", "-n", H, "-j", "link", "show"]).stdout) as { ifname: string }[];
    expect(links.map((l) => l.ifname).sort()).toEqual(["lo", "up0"]);
    const rules = sh(["ip", "netns", "exec", H, "iptables-save"]).stdout.split("\n");
    expect(rules.filter((l) => l.startsWith("-A") && /BUNMAP|CNI-DN-/.test(l))).toEqual([]);
    expect(readdirSync(`${ipamDir}/rt`).filter((f) => /^\d/.test(f))).toEqual([]);
    expect(plugin.interfaces()).toEqual([]);
  });
});

const dockerWhy = why ?? dockerUnavailable();
if (!why && dockerWhy) console.warn(`SKIP Docker + containerd CNI test: ${dockerWhy}`);

describe.skipIf(!!dockerWhy)("CNI beside Docker", () => {
  test("a Docker container and a containerd container on one Docker vale network reach each other", async () => {
    removeStaleTestObjects();
    ensureImage();
    const plugin = await pluginIn(null, null); // Docker's socket: /run/docker/plugins/vale.sock
    const net = docker(
      ...["network", "create", "-d", "vale", "--subnet", "198.18.74.0/24", "--ip-range", "198.18.74.0/25"],
      ...["--gateway", "198.18.74.1", "bmcnidk"],
    );
    expect(net.stderr).toBe("");
    const id = net.stdout.trim();
    const ipamDir = `${work}/ipam-dk`;
    const dir = netd("dk", {
      cniVersion: "1.0.0",
      name: "dk",
      plugins: [
        bunmapEntry(
          null,
          {
            dataDir: ipamDir,
            ranges: [
              [
                {
                  subnet: "198.18.74.0/24",
                  rangeStart: "198.18.74.130",
                  rangeEnd: "198.18.74.250",
                  gateway: "198.18.74.1",
                },
              ],
            ],
          },
          { network: id.slice(0, 12) },
        ),
      ],
    });
    const ctrd = new Containerd(`${work}/containerd-dk`, null, dir, bin);
    runtimes.push(ctrd);
    await ctrd.start();
    const c = ctrd.run("c2", rootfs, [[repo, "/bunmap"]], ["sleep", "100000"]);
    const d = docker("run", "-d", "--name", "bmcnid1", "--network", "bmcnidk", "-v", `${repo}:/bunmap:ro`, IMAGE);
    expect(d.stderr).toBe("");
    try {
      const ipC = await ctrAddress(ctrd, "c2");
      expect(Number(ipC.split(".")[3])).toBeGreaterThanOrEqual(130); // host-local's range, apart from Docker's
      const ipD = /inet (\S+)\//.exec(docker("exec", "bmcnid1", "ip", "-4", "addr", "show", "eth0").stdout)?.[1] ?? "";
      expect(Number(ipD.split(".")[3])).toBeLessThan(128);
      expect(pings(ctrd.exec("c2", "ping", "-c", "3", "-W", "2", ipD).stdout)).toBe(3);
      expect(pings(docker("exec", "bmcnid1", "ping", "-c", "3", "-W", "2", ipC).stdout)).toBe(3);
      const inD = (...cmd: string[]) => docker("exec", "bmcnid1", ...cmd);
      const inC = (...cmd: string[]) => ctrd.exec("c2", ...cmd);
      await tcp(inD, (cmd) => docker("exec", "-d", "bmcnid1", "sh", "-c", cmd), inC, ipD, 5003);
      await tcp(inC, (cmd) => ctrd.detached("c2", cmd), inD, ipC, 5004);
      // the CNI container's DEL leaves Docker's network and container as they were
      must(ctrd.ctrArgs(["task", "kill", "-s", "SIGKILL", "c2"]));
      await c.exited;
      const eps = JSON.parse(
        sh(["curl", "-s", "--unix-socket", "/run/docker/plugins/vale.sock", "http://x/bunmap/networks"]).stdout,
      )[0].endpoints as { address: string }[];
      expect(eps.map((e) => e.address.split("/")[0])).toEqual([ipD]);
      expect(pings(docker("exec", "bmcnid1", "ping", "-c", "1", "-W", "2", "198.18.74.1").stdout)).toBe(1);
    } finally {
      docker("rm", "-f", "bmcnid1");
      docker("network", "rm", "bmcnidk");
    }
    expect(plugin.interfaces()).toEqual([]);
    expect(readdirSync(`${ipamDir}/dk`).filter((f) => /^\d/.test(f))).toEqual([]);
  });
});

describe.skipIf(!!why)("CNI across two hosts", () => {
  test("two hosts, each with its own datapath and containerd, over the VXLAN uplink: ping and TCP both ways", async () => {
    const A = netns("a"),
      B = netns("b");
    must(["ip", "link", "add", "u", "netns", A, "type", "veth", "peer", "name", "u", "netns", B]);
    const under = { [A]: "198.18.141.1", [B]: "198.18.141.2" };
    const hosts = [
      [A, B, "198.18.76.2", "198.18.76.127", "198.18.76.1"],
      [B, A, "198.18.76.128", "198.18.76.253", "198.18.76.254"],
    ] as const;
    const ctrs: Record<string, Containerd> = {};
    for (const [h, peer, start, end, gw] of hosts) {
      must(["ip", "-n", h, "addr", "add", `${under[h]}/30`, "dev", "u"]);
      must(["ip", "-n", h, "link", "set", "u", "up"]);
      const sock = `${work}/${h}.sock`;
      await pluginIn(h, sock);
      const dir = netd(h, {
        cniVersion: "1.0.0",
        name: "span",
        plugins: [
          bunmapEntry(
            sock,
            {
              dataDir: `${work}/ipam-${h}`,
              ranges: [[{ subnet: "198.18.76.0/24", rangeStart: start, rangeEnd: end, gateway: gw }]],
            },
            { options: { vni: "4300", peers: under[peer] } },
          ),
        ],
      });
      ctrs[h] = new Containerd(`${work}/containerd-${h}`, h, dir, bin);
      runtimes.push(ctrs[h]);
      await ctrs[h].start();
    }
    const ta = ctrs[A].run("ca", rootfs, [[repo, "/bunmap"]], ["sleep", "100000"]);
    const tb = ctrs[B].run("cb", rootfs, [[repo, "/bunmap"]], ["sleep", "100000"]);
    const ipA = await ctrAddress(ctrs[A], "ca");
    const ipB = await ctrAddress(ctrs[B], "cb");
    expect(Number(ipA.split(".")[3])).toBeLessThan(128);
    expect(Number(ipB.split(".")[3])).toBeGreaterThanOrEqual(128);
    expect(ctrs[A].exec("ca", "ip", "link", "show", "eth0").stdout).toContain("mtu 1450"); // VXLAN's 50 bytes
    expect(pings(ctrs[A].exec("ca", "ping", "-c", "3", "-W", "2", ipB).stdout)).toBe(3);
    expect(pings(ctrs[B].exec("cb", "ping", "-c", "3", "-W", "2", ipA).stdout)).toBe(3);
    // each host's own gateway answers its containers
    expect(pings(ctrs[A].exec("ca", "ping", "-c", "1", "-W", "2", "198.18.76.1").stdout)).toBe(1);
    expect(pings(ctrs[B].exec("cb", "ping", "-c", "1", "-W", "2", "198.18.76.254").stdout)).toBe(1);
    const inA = (...cmd: string[]) => ctrs[A].exec("ca", ...cmd);
    const inB = (...cmd: string[]) => ctrs[B].exec("cb", ...cmd);
    await tcp(inB, (cmd) => ctrs[B].detached("cb", cmd), inA, ipB, 5005);
    await tcp(inA, (cmd) => ctrs[A].detached("ca", cmd), inB, ipA, 5006);
    must(ctrs[A].ctrArgs(["task", "kill", "-s", "SIGKILL", "ca"]));
    must(ctrs[B].ctrArgs(["task", "kill", "-s", "SIGKILL", "cb"]));
    await Promise.all([ta.exited, tb.exited]);
    for (const h of [A, B]) {
      const links = JSON.parse(sh(["ip", "-n", h, "-j", "link", "show"]).stdout) as { ifname: string }[];
      expect(links.map((l) => l.ifname).sort(), h).toEqual(["lo", "u"]); // the vxlan device went with the network
    }
  });
});
