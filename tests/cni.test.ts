// The CNI plugin as a runtime drives it: the compiled executable run with a clean environment, CNI_*
// variables and a config on stdin, against a datapath process (bun run plugin) in a network
// namespace of the test's own ("the host"); containers are namespaces. ADD/DEL/CHECK/GC/STATUS/
// VERSION, host-local IPAM, chained portmap and bandwidth, a datapath killed in the middle of ADD,
// and a table of bad input, each answered by a CNI error object with nothing left behind.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { buildCniDir, chain, cniEnv, cniUnavailable, removeDir, runPlugin, runPluginAsync } from "./helpers/cni.ts";
import { privilegedUnavailable } from "./helpers/netns.ts";
import { must, PluginProc, sh } from "./helpers/plugin-proc.ts";

setDefaultTimeout(120_000);
const repo = `${import.meta.dir}/..`;
const why = privilegedUnavailable() ?? cniUnavailable();
if (why) console.warn(`SKIP CNI tests: ${why}`);

const H = `bmcn${process.pid}h`; // the host: the datapath process and its interfaces
const O = `bmcn${process.pid}o`; // outside: reaches the host's published ports
const SUBNET = "198.18.64";
const inNs = (ns: string, ...cmd: string[]) => sh(["ip", "netns", "exec", ns, ...cmd]);

let dir = ""; // compiled executable + reference plugins
let work = ""; // socket, state, IPAM's data
let plugin: PluginProc | null = null;
const sock = () => `${work}/p.sock`;
const containers: string[] = [];

async function startPlugin(env: Record<string, string> = {}): Promise<void> {
  plugin = new PluginProc({ BUNMAP_PLUGIN_SOCK: sock(), BUNMAP_PLUGIN_DB: `${work}/state/vale.db`, ...env }, [
    "ip",
    "netns",
    "exec",
    H,
  ]);
  await plugin.start();
}

function container(tag: string): string {
  const ns = `bmcn${process.pid}${tag}`;
  must(["ip", "netns", "add", ns]);
  containers.push(ns);
  return ns;
}
const netnsPath = (ns: string) => `/var/run/netns/${ns}`;

const conf = (extra: Record<string, unknown> = {}) => ({
  cniVersion: "1.0.0",
  name: "cnitest",
  type: "bunmap",
  socket: sock(),
  ipam: { type: "host-local", dataDir: `${work}/ipam`, ranges: [[{ subnet: `${SUBNET}.0/24` }]] },
  ...extra,
});
const cni = (
  cmd: "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "VERSION",
  ns: string | null,
  c: object = conf(),
  id = ns ?? "",
) =>
  runPlugin(
    `${dir}/bunmap`,
    cniEnv(dir, { command: cmd, ...(ns ? { container: id, netns: netnsPath(ns) } : {}) }),
    JSON.stringify(c),
    H,
  );

/** What the host namespace holds that the datapath made: links other than lo and the outside link,
 * iptables rules in our chains or a container's portmap chain (portmap keeps its shared top chains), IPAM's allocations. */
function leftovers() {
  const links = (JSON.parse(inNs(H, "ip", "-j", "link", "show").stdout) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n !== "lo" && n !== "up0");
  const rules = inNs(H, "iptables-save")
    .stdout.split("\n")
    .filter((l) => /BUNMAP|CNI-DN-/.test(l) && l.startsWith("-A"));
  const ipamDir = `${work}/ipam/cnitest`;
  const held = existsSync(ipamDir) ? readdirSync(ipamDir).filter((f) => /^[0-9a-f:.]+$/.test(f) && /[.:]/.test(f)) : [];
  return { links, rules, held };
}
const NOTHING = { links: [], rules: [], held: [] };

/** The plugin's BPF objects (programs, maps, links): its open descriptors of those kinds. */
function bpfFds(): number {
  const fds = `/proc/${plugin!.pid}/fd`;
  return readdirSync(fds).filter((fd) => {
    try {
      return readlinkSync(`${fds}/${fd}`).startsWith("anon_inode:bpf");
    } catch {
      return false; // closed meanwhile
    }
  }).length;
}

/** The MAC Docker's bridge (and so this driver) gives an address: 02:42 and the address's bytes. */
const macOf = (ip: string) =>
  ["02", "42", ...ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0"))].join(":");
const addressIn = (ns: string) =>
  (
    JSON.parse(inNs(ns, "ip", "-j", "addr", "show", "dev", "eth0").stdout || "[]") as {
      address: string;
      addr_info: { family: string; local: string; prefixlen: number }[];
    }[]
  ).map((l) => ({ ...l, addr_info: l.addr_info.filter((x) => x.family === "inet") }))[0];
const XFER = `${import.meta.dir}/helpers/tcp-xfer.ts`;
/** TCP from one namespace to another: bytes and CRC-32 as sent and as received, and the seconds it took. */
async function xfer(from: string, to: string, ip: string, port: number, bytes: number) {
  const server = Bun.spawn(["ip", "netns", "exec", to, process.execPath, XFER, "server", String(port)], {
    stdout: "pipe",
  });
  const reader = (server.stdout as ReadableStream<Uint8Array>).getReader();
  let out = "";
  while (!out.includes("listening")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  const t0 = performance.now();
  const c = sh(["ip", "netns", "exec", from, process.execPath, XFER, "client", ip, String(port), String(bytes)]);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  await server.exited;
  const seconds = (performance.now() - t0) / 1000;
  const sent = /sent (\d+) (\d+)/.exec(c.stdout),
    got = /got (\d+) (\d+)/.exec(out);
  return { sent: sent?.slice(1, 3).join(" "), got: got?.slice(1, 3).join(" "), seconds, err: c.stderr };
}
const ping = (ns: string, to: string) => inNs(ns, "ping", "-c", "2", "-W", "2", "-i", "0.2", to).status === 0;

beforeAll(async () => {
  if (why) return;
  dir = buildCniDir();
  work = mkdtempSync(`${tmpdir()}/bunmap-cni-`);
  must(["ip", "netns", "add", H]);
  must(["ip", "netns", "add", O]);
  must(["ip", "link", "add", "up0", "netns", H, "type", "veth", "peer", "name", "up0", "netns", O]);
  for (const [ns, a] of [
    [H, "198.18.62.1/30"],
    [O, "198.18.62.2/30"],
  ]) {
    must(["ip", "-n", ns, "addr", "add", a, "dev", "up0"]);
    must(["ip", "-n", ns, "link", "set", "up0", "up"]);
    must(["ip", "-n", ns, "link", "set", "lo", "up"]);
  }
  must(["ip", "netns", "exec", H, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await startPlugin();
});

afterAll(async () => {
  if (why) return;
  await plugin?.stop();
  for (const ns of [...containers, O, H]) sh(["ip", "netns", "del", ns]);
  removeDir(dir);
  removeDir(work);
});

describe.skipIf(!!why)("CNI plugin", () => {
  test("VERSION names the versions it speaks; STATUS says whether the datapath answers", async () => {
    const v = cni("VERSION", null, { cniVersion: "1.0.0" });
    expect(v.code).toBe(0);
    expect(v.json).toEqual({ cniVersion: "1.0.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
    expect(cni("STATUS", null, conf({ cniVersion: "1.1.0" })).code).toBe(0);
    const down = cni("STATUS", null, conf({ cniVersion: "1.1.0", socket: `${work}/nobody.sock` }));
    expect(down.code).toBe(1);
    expect(down.json).toMatchObject({ code: 50 });
    expect(String(down.json?.msg)).toContain("does not answer");
  });

  test("ADD: two containers on one network reach each other and the gateway (ping, TCP); the result is the spec's, its values worked out apart", async () => {
    const [a, b] = [container("a"), container("b")];
    const ra = cni("ADD", a);
    const rb = cni("ADD", b);
    expect(ra.code, ra.out).toBe(0);
    expect(rb.code, rb.out).toBe(0);
    for (const [ns, r] of [
      [a, ra],
      [b, rb],
    ] as const) {
      const res = r.json as {
        ips: { address: string; gateway: string; interface: number }[];
        interfaces: { name: string; mac: string; sandbox?: string }[];
        cniVersion: string;
      };
      expect(res.cniVersion).toBe("1.0.0");
      const ip = res.ips[0];
      expect(ip.address).toMatch(new RegExp(`^${SUBNET.replaceAll(".", "\\.")}\\.\\d+/24$`));
      expect(ip.gateway).toBe(`${SUBNET}.1`); // host-local's default: the range's first address
      const cont = res.interfaces[ip.interface];
      expect(cont).toEqual({ name: "eth0", mac: macOf(ip.address.split("/")[0]), sandbox: netnsPath(ns) });
      const host = res.interfaces.find((i) => !i.sandbox)!;
      expect(readFileSync(`/proc/${plugin!.pid}/net/dev`, "utf8")).toContain(`${host.name}:`); // in the host namespace
      const inside = addressIn(ns);
      expect(inside.address).toBe(cont.mac);
      expect(`${inside.addr_info[0].local}/${inside.addr_info[0].prefixlen}`).toBe(ip.address);
      expect(inNs(ns, "ip", "route", "show", "default").stdout).toContain(`via ${SUBNET}.1 dev eth0`);
    }
    const ipB = (rb.json as { ips: { address: string }[] }).ips[0].address.split("/")[0];
    expect(ping(a, ipB)).toBe(true);
    expect(ping(a, `${SUBNET}.1`)).toBe(true);
    // NAT: the outside namespace has no route back to the containers' subnet, so only a masqueraded ping returns
    expect(inNs(O, "ip", "route", "get", `${SUBNET}.2`).status).not.toBe(0);
    expect(ping(a, "198.18.62.2")).toBe(true);
    // TCP: 4 MB through the switch, its CRC-32 compared end to end
    const t = await xfer(a, b, ipB, 5001, 4_000_000);
    expect(t.sent, t.err).toMatch(/^4000000 \d+$/);
    expect(t.got).toBe(t.sent);
    // ADD again for the same container: the same answer, nothing made twice
    const before = leftovers();
    const again = cni("ADD", a);
    expect(again.code).toBe(0);
    expect(again.json).toEqual(ra.json);
    expect(leftovers()).toEqual(before);
    // a Docker-style view of it: one network, two endpoints, both joined
    const view = JSON.parse(inNs(H, "curl", "-s", "--unix-socket", sock(), "http://x/bunmap/networks").stdout);
    expect(view.map((n: { id: string }) => n.id)).toEqual(["cni-cnitest"]);
    expect(view[0].endpoints.filter((e: { joined: boolean }) => e.joined)).toHaveLength(2);
  });

  test("CHECK passes on a whole attachment and names what broke; ADD repairs it", async () => {
    const c = container("c");
    const r = cni("ADD", c);
    expect(r.code, r.out).toBe(0);
    const withPrev = conf({ prevResult: r.json });
    expect(cni("CHECK", c, withPrev).code).toBe(0);
    const addr = (r.json as { ips: { address: string }[] }).ips[0].address;
    const breaks: [string, string[], string][] = [
      ["address gone", ["ip", "addr", "flush", "dev", "eth0"], `lost its address ${addr}`],
      ["interface down", ["ip", "link", "set", "eth0", "down"], "eth0 is down"],
      ["interface gone", ["ip", "link", "del", "eth0"], "is gone"],
    ];
    for (const [what, cmd, says] of breaks) {
      expect(inNs(c, ...cmd).status, what).toBe(0);
      const bad = cni("CHECK", c, withPrev);
      expect(bad.code, what).toBe(1);
      expect(bad.json, what).toMatchObject({ code: 100 });
      expect(String(bad.json?.msg), what).toContain(says);
      // the runtime's answer to a broken attachment: ADD again, which starts it over
      const fixed = cni("ADD", c);
      expect(fixed.code, fixed.out).toBe(0);
      expect(cni("CHECK", c, conf({ prevResult: fixed.json })).code).toBe(0);
      expect(ping(c, `${SUBNET}.1`)).toBe(true);
    }
    // a prevResult that does not hold the address ADD gave
    const wrong = cni("CHECK", c, conf({ prevResult: { ips: [{ address: `${SUBNET}.250/24` }] } }));
    expect(wrong.json).toMatchObject({ code: 100 });
    expect(cni("DEL", c).code).toBe(0);
    const gone = cni("CHECK", c, withPrev);
    expect(gone.json).toMatchObject({ code: 100 });
    expect(String(gone.json?.msg)).toContain("ADD it");
  });

  test("a container that already has the interface: refused naming it, its own left as it was, nothing made", () => {
    const ns = container("dup");
    const before = leftovers();
    expect(inNs(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p").status).toBe(0);
    const r = cni("ADD", ns);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 101 });
    expect(String(r.json?.msg)).toContain("already has an interface eth0");
    expect(inNs(ns, "ip", "link", "show", "eth0").stdout).toContain("eth0@eth0p");
    expect(cni("DEL", ns).code).toBe(0); // what a runtime does after a failed ADD
    expect(leftovers()).toEqual(before);
  });

  test("DEL leaves nothing: links, rows, BPF programs, iptables rules, addresses; twice is fine", async () => {
    for (const ns of containers) expect(cni("DEL", ns).code).toBe(0);
    expect(leftovers()).toEqual(NOTHING);
    expect(JSON.parse(inNs(H, "curl", "-s", "--unix-socket", sock(), "http://x/bunmap/networks").stdout)).toEqual([]);
    const base = bpfFds();
    const d = container("d");
    expect(cni("ADD", d).code).toBe(0);
    expect(bpfFds()).toBeGreaterThan(base); // the fast path's programs and maps are held
    expect(cni("DEL", d).code).toBe(0);
    expect(cni("DEL", d).code).toBe(0);
    expect(cni("DEL", container("never")).code).toBe(0); // DEL of what never was
    expect(bpfFds()).toBe(base);
    expect(leftovers()).toEqual(NOTHING);
    const db = new Database(`${work}/state/vale.db`, { readonly: true });
    for (const table of ["cni_attachments", "endpoints", "networks"])
      expect(db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n, table).toBe(0);
    db.close();
    expect(inNs(d, "ip", "-br", "link").stdout.trim().split("\n")).toHaveLength(1); // only lo
  });

  test("a datapath killed in the middle of ADD: the next ADD, or DEL, repairs", async () => {
    const points = ["cni-add-row", "cni-add-veth", "cni-add-moved"];
    for (const [i, point] of points.entries()) {
      await plugin!.stop();
      await startPlugin({ BUNMAP_FAULT: point });
      const ns = container(`k${i}`);
      const r = cni("ADD", ns);
      expect(r.code, point).toBe(1);
      expect(r.json, point).toMatchObject({ code: 11 });
      expect(String(r.json?.msg)).toContain("repairs a half-done attachment");
      await plugin!.stop("SIGKILL"); // reaped (it killed itself)
      await startPlugin();
      const held = leftovers().held;
      expect(held, `${point}: the failed ADD gave its address back`).toEqual([]);
      if (i % 2 === 0) {
        const again = cni("ADD", ns);
        expect(again.code, `${point}: ${again.out}`).toBe(0);
        expect(ping(ns, `${SUBNET}.1`)).toBe(true);
        expect(leftovers().links.filter((l) => l.startsWith("vh"))).toHaveLength(1);
      }
      expect(cni("DEL", ns).code).toBe(0);
      expect(leftovers(), point).toEqual(NOTHING);
      expect(inNs(ns, "ip", "-br", "link").stdout.trim().split("\n"), point).toHaveLength(1);
    }
  });

  test("the datapath restarted under attached containers: they reach each other again, CHECK passes, DEL works", async () => {
    const [r1, r2] = [container("r1"), container("r2")];
    const a1 = cni("ADD", r1);
    const a2 = cni("ADD", r2);
    expect(a1.code).toBe(0);
    expect(a2.code).toBe(0);
    const ip2 = (a2.json as { ips: { address: string }[] }).ips[0].address.split("/")[0];
    expect(ping(r1, ip2)).toBe(true);
    await plugin!.stop();
    const down = cni("CHECK", r1, conf({ prevResult: a1.json }));
    expect(down.json).toMatchObject({ code: 11 }); // the runtime is told to try again, nothing is judged broken
    await startPlugin();
    expect(ping(r1, ip2)).toBe(true);
    expect(ping(r2, `${SUBNET}.1`)).toBe(true);
    expect(cni("CHECK", r1, conf({ prevResult: a1.json })).code).toBe(0);
    expect(cni("ADD", r2).json).toEqual(a2.json); // still whole: the same answer
    expect(cni("DEL", r1).code).toBe(0);
    expect(cni("DEL", r2).code).toBe(0);
    expect(leftovers()).toEqual(NOTHING);
  });

  test("eight containers added at once, then deleted at once: distinct addresses, all reach the gateway, nothing left", async () => {
    const many = Array.from({ length: 8 }, (_, i) => container(`m${i}`));
    const run = (cmd: "ADD" | "DEL", ns: string) =>
      runPluginAsync(
        `${dir}/bunmap`,
        cniEnv(dir, { command: cmd, container: ns, netns: netnsPath(ns) }),
        JSON.stringify(conf()),
        H,
      );
    const added = await Promise.all(many.map((ns) => run("ADD", ns)));
    for (const r of added) expect(r.code, r.out).toBe(0);
    const addrs = added.map((r) => (r.json as { ips: { address: string }[] }).ips[0].address);
    expect(new Set(addrs).size).toBe(8);
    for (const ns of many) expect(ping(ns, `${SUBNET}.1`)).toBe(true);
    expect(leftovers().links.filter((l) => l.startsWith("vh"))).toHaveLength(8);
    const deleted = await Promise.all(many.map((ns) => run("DEL", ns)));
    for (const r of deleted) expect(r.code, r.out).toBe(0);
    expect(leftovers()).toEqual(NOTHING);
  });

  test("GC takes away the attachments the runtime no longer holds", async () => {
    const [g1, g2] = [container("g1"), container("g2")];
    const r1 = cni("ADD", g1);
    expect(r1.code).toBe(0);
    expect(cni("ADD", g2).code).toBe(0);
    const gc = cni(
      "GC",
      null,
      conf({ cniVersion: "1.1.0", "cni.dev/valid-attachments": [{ containerID: g1, ifname: "eth0" }] }),
    );
    expect(gc.code, gc.out).toBe(0);
    expect(ping(g1, `${SUBNET}.1`)).toBe(true);
    expect(addressIn(g2)).toBeUndefined();
    expect(leftovers().links.filter((l) => l.startsWith("vh"))).toHaveLength(1);
    // host-local predates GC: g2's address came back by a DEL on its behalf, g1's is still held
    expect(leftovers().held).toEqual([(r1.json as { ips: { address: string }[] }).ips[0].address.split("/")[0]]);
    expect(cni("GC", null, conf({ cniVersion: "1.1.0", "cni.dev/valid-attachments": [] })).code).toBe(0);
    expect(leftovers()).toEqual(NOTHING);
  });

  test("chained portmap publishes a port to the outside, chained bandwidth shapes the container's ingress", async () => {
    const list = {
      cniVersion: "1.0.0",
      name: "cnitest",
      plugins: [
        { ...conf(), cniVersion: undefined, name: undefined },
        { type: "portmap", capabilities: { portMappings: true } },
        { type: "bandwidth", capabilities: { bandwidth: true } },
      ],
    };
    const rate = 8_000_000; // bits/s
    const rc = {
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
      bandwidth: { ingressRate: rate, ingressBurst: 65536 },
    };
    const [p, q] = [container("p"), container("q")];
    const add = chain(dir, list, { command: "ADD", container: p, netns: netnsPath(p) }, H, rc);
    expect(add.code, add.out).toBe(0);
    const free = cni("ADD", q); // the same network, no shaping
    expect(free.code).toBe(0);
    const ipOf = (r: typeof add) => (r.json as { ips: { address: string }[] }).ips[0].address.split("/")[0];
    // portmap: the outside namespace reaches the container's port 80 at the host's 8080
    writeFileSync(`${work}/index.html`, "hello from a CNI container\n");
    const httpd = Bun.spawn(["ip", "netns", "exec", p, "busybox", "httpd", "-f", "-p", "80", "-h", work]);
    await Bun.sleep(300);
    const got = inNs(O, "curl", "-s", "--max-time", "5", "http://198.18.62.1:8080/index.html");
    httpd.kill();
    await httpd.exited;
    expect(got.stdout).toBe("hello from a CNI container\n");
    // bandwidth: 2 MB into each container from the host, the shaped one at the rate asked for
    const bytes = 2_000_000;
    const timed = async (ns: string, ip: string) => {
      const r = await xfer(H, ns, ip, 5002, bytes);
      expect(r.got, r.err).toBe(r.sent);
      return r.seconds;
    };
    const shaped = await timed(p, ipOf(add));
    const open = await timed(q, ipOf(free));
    const ideal = (bytes * 8) / rate; // 2 s at the rate asked for
    expect(shaped).toBeGreaterThan(ideal * 0.7);
    expect(shaped).toBeLessThan(ideal * 3);
    expect(open).toBeLessThan(ideal / 2);
    // DEL in reverse, as runtimes do: the DNAT rules and the qdisc go
    const del = chain(dir, list, { command: "DEL", container: p, netns: netnsPath(p) }, H, rc, add.json);
    expect(del.code, del.out).toBe(0);
    expect(cni("DEL", q).code).toBe(0);
    expect(leftovers()).toEqual(NOTHING);
  });
});

/** The parts of cni/kubernetes/bunmap.yml the test reads. */
interface K8sContainer {
  command: string[];
  env?: { name: string; value: string }[];
  volumeMounts: { name: string; mountPath: string }[];
}
type Manifest = {
  kind: string;
  data?: Record<string, string>;
  spec?: {
    template: {
      spec: {
        hostNetwork: boolean;
        hostPID: boolean;
        containers: K8sContainer[];
        initContainers: K8sContainer[];
        volumes: { name: string; hostPath?: { path: string } }[];
      };
    };
  };
}[];

describe.skipIf(!!why)("CNI plugin: the documents' configs", () => {
  const example = JSON.parse(readFileSync(`${repo}/cni/examples/10-bunmap.conflist`, "utf8"));

  test("the conflist example works as written (its socket and IPAM directory moved to the test's)", () => {
    const list = structuredClone(example);
    list.plugins[0].socket = sock();
    list.plugins[0].ipam.dataDir = `${work}/ipam`;
    const ns = container("ex");
    const rc = { portMappings: [{ hostPort: 8091, containerPort: 80, protocol: "tcp" }] };
    const add = chain(dir, list, { command: "ADD", container: ns, netns: netnsPath(ns) }, H, rc);
    expect(add.code, add.out).toBe(0);
    const ip = (add.json as { ips: { address: string; gateway: string }[] }).ips[0];
    expect(ip.address).toMatch(/^198\.18\.80\.\d+\/24$/);
    expect(ping(ns, ip.gateway)).toBe(true);
    const del = chain(dir, list, { command: "DEL", container: ns, netns: netnsPath(ns) }, H, rc, add.json);
    expect(del.code, del.out).toBe(0);
    expect(leftovers().links).toEqual([]);
    expect(leftovers().rules).toEqual([]);
  });

  test("the chained bandwidth plugin's egressRate is refused as the README says, and DEL clears the rest", () => {
    const list = structuredClone(example);
    list.plugins[0].socket = sock();
    list.plugins[0].ipam.dataDir = `${work}/ipam`;
    const ns = container("eg");
    const rc = { bandwidth: { egressRate: 8_000_000, egressBurst: 65536 } };
    const add = chain(dir, list, { command: "ADD", container: ns, netns: netnsPath(ns) }, H, rc);
    expect(add.code).toBe(1);
    expect(String(add.json?.msg)).toContain("create ingress qdisc: file exists");
    // the runtime's answer to a failed ADD: DEL of the whole chain
    expect(chain(dir, list, { command: "DEL", container: ns, netns: netnsPath(ns) }, H, rc).code).toBe(0);
    expect(leftovers()).toEqual(NOTHING);
  });

  test("the Kubernetes manifest: its conflist is the example, its datapath serves the conflist's socket", () => {
    const docs = Bun.YAML.parse(readFileSync(`${repo}/cni/kubernetes/bunmap.yml`, "utf8")) as Manifest;
    expect(docs.map((d) => d.kind)).toEqual(["ConfigMap", "DaemonSet"]);
    const conflist = JSON.parse(docs[0].data!["10-bunmap.conflist"]);
    expect(conflist).toEqual(example);
    const pod = docs[1].spec!.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID).toBe(true); // the executable's /proc/PID/fd
    const datapath = pod.containers[0];
    const env = Object.fromEntries((datapath.env ?? []).map((e) => [e.name, e.value]));
    expect(env.BUNMAP_PLUGIN_SOCK).toBe(conflist.plugins[0].socket);
    const mounted = (c: K8sContainer, path: string) => c.volumeMounts.find((m) => path.startsWith(`${m.mountPath}/`));
    const hostPath = (name: string) => pod.volumes.find((v) => v.name === name)?.hostPath?.path;
    const sockMount = mounted(datapath, env.BUNMAP_PLUGIN_SOCK)!;
    expect(hostPath(sockMount.name)).toBe(sockMount.mountPath); // the same path on the node, where the executable looks
    const install = pod.initContainers[0];
    expect(install.command.join(" ")).toContain(`/host/opt/cni/bin/${conflist.plugins[0].type}`);
    expect(hostPath(mounted(install, "/host/opt/cni/bin/x")!.name)).toBe("/opt/cni/bin");
    expect(hostPath(mounted(install, "/host/etc/cni/net.d/x")!.name)).toBe("/etc/cni/net.d");
  });
});

describe.skipIf(!!why)("CNI plugin: bad input from the runtime", () => {
  // [what, env changes (null: unset), config (object or raw text), code, words the message holds]
  type Case = [string, Record<string, string | null>, object | string, number, string];
  const good = () => conf();
  const cases = (): Case[] => [
    ["empty stdin", {}, "", 6, "empty"],
    ["truncated config", {}, JSON.stringify(good()).slice(0, 40), 6, "not JSON"],
    ["config not an object", {}, "[1,2]", 7, "network config /"],
    ["name missing", {}, { ...good(), name: undefined }, 7, "/name"],
    ["name of the wrong type", {}, { ...good(), name: 42 }, 7, "/name"],
    ["name with a space", {}, { ...good(), name: "a b" }, 7, "/name"],
    ["cniVersion unknown", {}, { ...good(), cniVersion: "9.9.9" }, 1, "is not supported"],
    [
      "CHECK before 0.4.0",
      { CNI_COMMAND: "CHECK" },
      { ...good(), cniVersion: "0.3.1", prevResult: {} },
      1,
      "CHECK needs cniVersion 0.4.0",
    ],
    ["CNI_COMMAND unset", { CNI_COMMAND: null }, good(), 4, "CNI_COMMAND is not set"],
    ["CNI_COMMAND unknown", { CNI_COMMAND: "ATTACH" }, good(), 4, "CNI_COMMAND=ATTACH"],
    ["CNI_CONTAINERID unset", { CNI_CONTAINERID: null }, good(), 4, "CNI_CONTAINERID is not set"],
    ["CNI_CONTAINERID malformed", { CNI_CONTAINERID: "-x y" }, good(), 4, "CNI_CONTAINERID"],
    ["CNI_IFNAME unset", { CNI_IFNAME: null }, good(), 4, "CNI_IFNAME is not set"],
    ["CNI_IFNAME too long", { CNI_IFNAME: "abcdefghijklmnop" }, good(), 4, "1..15 characters"],
    ["CNI_IFNAME with a slash", { CNI_IFNAME: "a/b" }, good(), 4, "CNI_IFNAME"],
    ["CNI_NETNS unset", { CNI_NETNS: null }, good(), 4, "CNI_NETNS is not set"],
    ["CNI_NETNS relative", { CNI_NETNS: "netns/x" }, good(), 4, "absolute path"],
    ["CNI_NETNS missing", { CNI_NETNS: "/var/run/netns/bunmap-no-such" }, good(), 3, "does not exist"],
    ["CNI_PATH unset", { CNI_PATH: null }, good(), 4, "CNI_PATH is not set"],
    ["CNI_ARGS malformed", { CNI_ARGS: "IgnoreUnknown" }, good(), 4, "CNI_ARGS"],
    ["IPAM plugin missing", {}, { ...good(), ipam: { type: "no-such-ipam" } }, 7, "no-such-ipam not found"],
    ["no IPAM", {}, { ...good(), ipam: undefined }, 7, "/ipam"],
    ["unknown network", {}, { ...good(), network: "deadbeef0000" }, 7, "is no network"],
    [
      "IPv6 from IPAM",
      {},
      { ...good(), ipam: { type: "host-local", dataDir: `${work}/ipam`, ranges: [[{ subnet: "2001:db8:64::/64" }]] } },
      7,
      "IPv6 is not supported",
    ],
    ["prevResult of the wrong shape", {}, { ...good(), prevResult: { ips: "198.18.64.9" } }, 7, "/prevResult/ips"],
    [
      "prevResult address of the wrong type",
      {},
      { ...good(), prevResult: { ips: [{ address: 7 }] } },
      7,
      "/prevResult/ips/0/address",
    ],
    ["CHECK without prevResult", { CNI_COMMAND: "CHECK" }, good(), 7, "/prevResult: missing"],
    ["unknown option", {}, { ...good(), options: { bogus: "1" } }, 7, "options.bogus: unknown option"],
    ["option of the wrong type", {}, { ...good(), options: { mtu: 1500 } }, 7, "/options/mtu"],
    ["bad option value", {}, { ...good(), options: { mtu: "huge" } }, 7, "options.mtu=huge"],
    ["internal of the wrong type", {}, { ...good(), internal: "yes" }, 7, "/internal"],
    ["socket nobody serves", {}, { ...good(), socket: "/tmp/bunmap-no-such.sock" }, 11, "does not answer"],
  ];

  test("each is a CNI error object naming what is wrong, exit status 1, nothing created", () => {
    const ns = container("bad");
    expect(leftovers()).toEqual(NOTHING);
    for (const [what, change, c, code, says] of cases()) {
      const env = cniEnv(dir, { command: "ADD", container: "badc", netns: netnsPath(ns) });
      for (const [k, v] of Object.entries(change)) {
        if (v === null) delete env[k];
        else env[k] = v;
      }
      const r = runPlugin(`${dir}/bunmap`, env, typeof c === "string" ? c : JSON.stringify(c), H);
      expect(r.code, what).toBe(1);
      expect(r.json, `${what}: ${r.out}`).toMatchObject({ code });
      expect(typeof r.json?.cniVersion, what).toBe("string");
      expect(String(r.json?.msg), what).toContain(says);
      expect(r.err, what).toBe(""); // no trace
      expect(leftovers(), what).toEqual(NOTHING);
      expect(inNs(ns, "ip", "-br", "link").stdout.trim().split("\n"), what).toHaveLength(1);
    }
  });
});
