// The plugin started while a system tool it uses is missing (iptables, then ip as well), with
// networks in its state: it serves, every network's switch carries traffic, the problem is one line
// naming the tool and its package (no stack trace), only the calls that need the tool are refused
// (naming it, nothing changed), and when the tool is back the NAT and published ports come back by
// themselves. The plugin runs in a network namespace of the test's own with a PATH the test controls.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";

setDefaultTimeout(180_000);

const sh = (...a: string[]) => spawnSync(a[0], a.slice(1), { encoding: "utf8", timeout: 60_000 });
const where = (tool: string) => sh("sh", "-c", `command -v ${tool}`).stdout.trim();
const why =
  process.getuid?.() !== 0
    ? "not root"
    : ["ip", "iptables", "iptables-restore", "ping"].find((t) => !where(t))
      ? "iproute2, iptables or ping is not installed"
      : null;
if (why) console.warn(`SKIP missing-tool tests: ${why}`);

const repo = `${import.meta.dir}/..`;
const tag = process.pid.toString(36);
const NS = `bmtool${tag}`; // the plugin's host
const C = `bmtoolc${tag}`; // a container
const NET = "0000000000000000000000000000000000000000000000000000000000000a01";
const EPA = "00000000000a0000000000000000000000000000000000000000000000000a02";

class Plugin {
  proc: ReturnType<typeof Bun.spawn> | null = null;
  stderr = "";
  stdout = "";
  constructor(
    readonly dir: string,
    readonly bin: string,
  ) {}
  get sock() {
    return `${this.dir}/vale.sock`;
  }
  async start(): Promise<void> {
    this.stderr = "";
    this.stdout = "";
    const p = Bun.spawn([where("ip"), "netns", "exec", NS, process.execPath, `${repo}/plugin/main.ts`], {
      env: {
        PATH: this.bin, // the plugin finds exactly the tools the test put there
        BUNMAP_PLUGIN_SOCK: this.sock,
        BUNMAP_PLUGIN_DB: `${this.dir}/state/vale.db`,
        BUNMAP_PLUGIN_BACKEND: "packet",
      },
      stdout: "pipe",
      stderr: "pipe",
      timeout: 600_000,
      killSignal: "SIGKILL",
    });
    this.proc = p;
    (async () => {
      for await (const c of p.stderr as ReadableStream<Uint8Array>) this.stderr += new TextDecoder().decode(c);
    })();
    const r = (p.stdout as ReadableStream<Uint8Array>).getReader();
    while (!this.stdout.includes("listening")) {
      const { value, done } = await r.read();
      if (done) throw new Error(`plugin exited: ${this.stdout}${this.stderr}`);
      this.stdout += new TextDecoder().decode(value);
    }
    r.releaseLock();
  }
  async stop(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    this.proc?.kill(signal);
    await this.proc?.exited;
    this.proc = null;
  }
  async call(method: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const r = await fetch(`http://plugin/${method}`, {
      method: "POST",
      body: JSON.stringify(body),
      unix: this.sock,
    } as RequestInit);
    return { status: r.status, json: (await r.json()) as Record<string, unknown> };
  }
  async view(): Promise<{ id: string; routing_problem: string | null }[]> {
    const r = await fetch("http://plugin/bunmap/networks", { unix: this.sock } as RequestInit);
    return (await r.json()) as { id: string; routing_problem: string | null }[];
  }
}

/** A tool in (or out of) the plugin's PATH. */
const tools = (bin: string) => ({
  add: (t: string) => symlinkSync(where(t), `${bin}/${t}`),
  remove: (t: string) => unlinkSync(`${bin}/${t}`),
});

describe.skipIf(!!why)("a missing system tool at start, and its return", () => {
  let dir: string;
  let plugin: Plugin;
  let bin: ReturnType<typeof tools>;
  const inNs = (ns: string, ...a: string[]) => sh("ip", "netns", "exec", ns, ...a);
  const pingGateway = () => inNs(C, "ping", "-c", "1", "-W", "3", "198.18.6.1").status;

  beforeAll(async () => {
    dir = mkdtempSync(`${tmpdir()}/bunmap-tools-`);
    mkdirSync(`${dir}/bin`);
    bin = tools(`${dir}/bin`);
    for (const t of ["ip", "iptables", "iptables-restore"]) bin.add(t);
    for (const ns of [NS, C]) expect(sh("ip", "netns", "add", ns).status).toBe(0);
    inNs(NS, "ip", "link", "set", "lo", "up");
    inNs(NS, "sysctl", "-qw", "net.ipv4.ip_forward=1");
    plugin = new Plugin(dir, `${dir}/bin`);
    await plugin.start();
    // a routed network, one container on it publishing a port
    const ok = async (m: string, b: unknown) => expect((await plugin.call(m, b)).json.Err).toBeUndefined();
    await ok("NetworkDriver.CreateNetwork", {
      NetworkID: NET,
      Options: {},
      IPv4Data: [{ Pool: "198.18.6.0/24", Gateway: "198.18.6.1/24" }],
    });
    const ep = await plugin.call("NetworkDriver.CreateEndpoint", {
      NetworkID: NET,
      EndpointID: EPA,
      Interface: { Address: "198.18.6.2/24" },
    });
    expect(ep.json.Err).toBeUndefined();
    await ok("NetworkDriver.Join", { NetworkID: NET, EndpointID: EPA, SandboxKey: "/x" });
    await ok("NetworkDriver.ProgramExternalConnectivity", {
      NetworkID: NET,
      EndpointID: EPA,
      Options: { "com.docker.network.portmap": [{ Proto: 6, Port: 80, HostPort: 18080, HostPortEnd: 18080 }] },
    });
    // the container's end of the veth goes into the container, as Docker would move it
    expect(inNs(NS, "ip", "link", "set", "vc00000000000a", "netns", C).status).toBe(0);
    inNs(C, "ip", "addr", "add", "198.18.6.2/24", "dev", "vc00000000000a");
    inNs(C, "ip", "link", "set", "vc00000000000a", "up");
    expect(pingGateway()).toBe(0);
  });

  afterAll(async () => {
    await plugin?.stop("SIGKILL");
    for (const ns of [C, NS]) sh("ip", "netns", "del", ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const noTrace = (s: string) => expect(s.split("\n").filter((l) => /^\s+at |^error:|\|\s/.test(l))).toEqual([]);

  test("without iptables: serves, the switch forwards, one line names the tool; calls that need it are refused", async () => {
    await plugin.stop("SIGKILL"); // a crash, then a start on a machine whose iptables went away
    bin.remove("iptables");
    bin.remove("iptables-restore");
    await plugin.start();
    const lines = plugin.stderr.trim().split("\n");
    expect(lines).toEqual([
      "plugin: NAT and published ports are not in place: iptables is not installed (needed for NAT and published ports): install iptables (apt-get install iptables)",
    ]);
    noTrace(plugin.stderr);
    expect(plugin.stdout).toContain("restored 1 networks, 1 endpoints");
    expect(pingGateway()).toBe(0); // the network's switch carries the container's frames
    const [v] = await plugin.view();
    expect(v.routing_problem).toBe(
      "iptables is not installed (needed for NAT and published ports): install iptables (apt-get install iptables)",
    );
    // what needs iptables is refused, naming it, and nothing is made
    const links = inNs(NS, "ip", "-o", "link").stdout;
    const routed = await plugin.call("NetworkDriver.CreateNetwork", {
      NetworkID: "net2",
      Options: {},
      IPv4Data: [{ Pool: "198.18.7.0/24", Gateway: "198.18.7.1/24" }],
    });
    expect(routed).toEqual({
      status: 200,
      json: {
        Err: "iptables is not installed (needed for NAT and published ports): install iptables (apt-get install iptables)",
      },
    });
    const pub = await plugin.call("NetworkDriver.RevokeExternalConnectivity", { NetworkID: NET, EndpointID: EPA });
    expect(pub.json.Err).toStartWith("iptables is not installed");
    expect(inNs(NS, "ip", "-o", "link").stdout).toBe(links);
    expect((await plugin.view()).map((n) => n.id)).toEqual([NET]);
    // what does not need it works
    const internal = { NetworkID: "net3", Options: { "com.docker.network.internal": true } };
    expect((await plugin.call("NetworkDriver.CreateNetwork", internal)).json).toEqual({});
    expect((await plugin.call("NetworkDriver.DeleteNetwork", { NetworkID: "net3" })).json).toEqual({});
  });

  test("without bridge (iproute2's): an uplink to peers is refused naming it, nothing made; one to a group needs none", async () => {
    // an underlay for the uplinks (the plugin's host routes to the peer by it)
    expect(inNs(NS, "ip", "link", "add", "u0", "type", "veth", "peer", "name", "u1").status).toBe(0);
    expect(inNs(NS, "ip", "addr", "add", "198.18.9.1/24", "dev", "u0").status).toBe(0);
    expect(inNs(NS, "ip", "link", "set", "u0", "up").status).toBe(0);
    const links = inNs(NS, "ip", "-o", "link").stdout;
    const uplinked = (id: string, generic: Record<string, string>) =>
      plugin.call("NetworkDriver.CreateNetwork", {
        NetworkID: id,
        Options: { "com.docker.network.internal": true, "com.docker.network.generic": generic },
      });
    expect(await uplinked("net4", { vni: "77", peers: "198.18.9.2" })).toEqual({
      status: 200,
      json: {
        Err: "bridge is not installed (needed for the VXLAN uplink's peers): install iproute2 (apt-get install iproute2)",
      },
    });
    expect(inNs(NS, "ip", "-o", "link").stdout).toBe(links); // no bmvx77
    expect((await plugin.view()).map((n) => n.id)).toEqual([NET]);
    // a group needs no FDB entries: made, and gone with its network
    expect((await uplinked("net5", { vni: "78", group: "239.1.1.8", vxlan_dev: "u0" })).json).toEqual({});
    expect(inNs(NS, "ip", "-d", "link", "show", "bmvx78").stdout).toContain("group 239.1.1.8");
    expect((await plugin.call("NetworkDriver.DeleteNetwork", { NetworkID: "net5" })).json).toEqual({});
    expect(inNs(NS, "ip", "link", "show", "bmvx78").status).not.toBe(0);
    expect(inNs(NS, "ip", "link", "del", "u0").status).toBe(0);
  });

  test("iptables back: NAT and the published port return without a call", async () => {
    bin.add("iptables");
    bin.add("iptables-restore");
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (await plugin.view())[0].routing_problem !== null) await Bun.sleep(250);
    expect((await plugin.view())[0].routing_problem).toBeNull();
    const nat = inNs(NS, "iptables", "-t", "nat", "-S").stdout;
    expect(nat).toContain("--dport 18080 -j DNAT --to-destination 198.18.6.2:80");
    expect(nat).toContain("-s 198.18.6.0/24");
    expect(plugin.stderr).toContain("plugin: NAT and published ports are in place again");
    expect(pingGateway()).toBe(0);
  });

  test("without ip as well: still serves and forwards; endpoint calls are refused naming ip", async () => {
    await plugin.stop("SIGTERM");
    for (const t of ["ip", "iptables", "iptables-restore"]) bin.remove(t);
    await plugin.start();
    expect(plugin.stderr.trim().split("\n")).toEqual([
      "plugin: orphan veths not looked for: ip is not installed (needed for veths, gateways and routes): install iproute2 (apt-get install iproute2)",
      "plugin: NAT and published ports are not in place: iptables is not installed (needed for NAT and published ports): install iptables (apt-get install iptables)",
    ]);
    noTrace(plugin.stderr);
    expect(pingGateway()).toBe(0);
    const ep = await plugin.call("NetworkDriver.CreateEndpoint", {
      NetworkID: NET,
      EndpointID: "b".repeat(64),
      Interface: { Address: "198.18.6.3/24" },
    });
    expect(ep.json.Err).toBe(
      "ip is not installed (needed for veths, gateways and routes): install iproute2 (apt-get install iproute2)",
    );
    // tools back, and everything is taken down through the API, leaving nothing
    for (const t of ["ip", "iptables", "iptables-restore"]) bin.add(t);
    for (const [m, b] of [
      ["NetworkDriver.Leave", { NetworkID: NET, EndpointID: EPA }],
      ["NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EPA }],
      ["NetworkDriver.DeleteNetwork", { NetworkID: NET }],
    ] as const)
      expect([m, (await plugin.call(m, b)).json]).toEqual([m, {}]);
    expect(inNs(NS, "iptables-save").stdout).not.toContain("BUNMAP");
    expect(inNs(NS, "ip", "-o", "link").stdout.trim().split("\n")).toHaveLength(1); // lo only
  });
});
