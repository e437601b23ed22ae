// The driver's API through Elysia (app.handle, no socket): Docker's quirks (empty bodies, no
// Content-Type), bad bodies answered with {"Err"} and changing nothing, the endpoint lifecycle with
// real veths (root), and what a restart finds: state from SQLite, crash leftovers removed.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { setTxChecksum, txChecksum } from "../ffi/ethtool.ts";
import { NR_REG, REG, REQ } from "../ffi/netmap.ts";
import { makeApp } from "../plugin/app.ts";
import type { Backend } from "../plugin/backends.ts";
import { type Datapath, ValeSwitch } from "../plugin/datapath.ts";
import { Driver } from "../plugin/driver.ts";
import { chains, Firewall } from "../plugin/firewall.ts";
import { gatewayNames } from "../plugin/gateway.ts";
import { State } from "../plugin/state.ts";
import { createVeth, deleteVeth, linkExists, listOurs, macFor, vethNames } from "../plugin/veth.ts";
import { enterPrivateNetns, type PrivateNetns } from "./helpers/private-netns.ts";

setDefaultTimeout(30_000);

const root = process.getuid?.() === 0 && spawnSync("ip", ["-V"], { timeout: 180_000 }).status === 0;
if (!root) console.warn("SKIP plugin veth tests: need root and iproute2 (veths are real)");

/** A datapath that records what it was asked to carry. */
class FakeDatapath implements Datapath {
  static made: FakeDatapath[] = [];
  ports: string[] = [];
  constructor(
    readonly kind: Backend,
    readonly name: string,
  ) {
    FakeDatapath.made.push(this);
  }
  async setPorts(p: string[]) {
    this.ports = [...p];
  }
  counters() {
    return this.ports.map((port) => ({ port, rx: 1, tx: 2, dropped: 0 }));
  }
  metrics() {
    return null;
  }
  async stop() {
    this.ports = [];
  }
}

function setup(path = ":memory:") {
  const state = new State(path);
  const driver = new Driver(state, { defaultBackend: "packet", makeDatapath: (k, n) => new FakeDatapath(k, n) });
  const app = makeApp(driver);
  const call = async (method: string, body?: unknown, headers: Record<string, string> = {}) => {
    // (a real host name: Elysia finds the path by skipping a few characters of "http://host")
    const res = await app.handle(
      new Request(`http://localhost/${method}`, {
        method: "POST",
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
        headers,
      }),
    );
    // biome-ignore lint/suspicious/noExplicitAny: answers of every shape, checked field by field
    return { status: res.status, type: res.headers.get("content-type"), json: (await res.json()) as any };
  };
  return { state, driver, app, call };
}

// endpoint IDs unique to this run (veth names come from them)
const pid = process.pid.toString(16).padStart(6, "0");
const EP = (n: number) => `${pid}${n.toString(16).padStart(6, "0")}${"0".repeat(52)}`;
const created: string[] = [];
const tmpDirs: string[] = [];
afterAll(() => {
  for (const id of created) spawnSync("ip", ["link", "del", vethNames(id).host], { timeout: 180_000 });
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

const NET = {
  NetworkID: "net1",
  Options: { "com.docker.network.generic": { "com.docker.network.driver.mtu": "1400" } },
  IPv4Data: [{ AddressSpace: "LocalDefault", Pool: "198.18.0.0/24", Gateway: "198.18.0.1/24" }],
  IPv6Data: [],
};

describe("protocol basics", () => {
  test("Activate and GetCapabilities with an empty body and no Content-Type", async () => {
    const { call } = setup();
    expect(await call("Plugin.Activate")).toEqual({
      status: 200,
      type: "application/vnd.docker.plugins.v1.2+json",
      json: { Implements: ["NetworkDriver"] },
    });
    expect((await call("NetworkDriver.GetCapabilities", "")).json).toEqual({
      Scope: "local",
      ConnectivityScope: "local",
    });
    expect((await call("NetworkDriver.GetCapabilities", "", { "content-type": "application/json" })).json.Scope).toBe(
      "local",
    );
  });
  test("unknown methods are 404; optional ones answer", async () => {
    const { call } = setup();
    expect((await call("NetworkDriver.Frobnicate", {})).status).toBe(404);
    expect(
      (await call("NetworkDriver.DiscoverNew", { DiscoveryType: 1, DiscoveryData: { Address: "x", self: true } })).json,
    ).toEqual({});
    expect((await call("NetworkDriver.AllocateNetwork", { NetworkID: "n", Options: {} })).json).toEqual({
      Options: {},
    });
    expect((await call("NetworkDriver.FreeNetwork", { NetworkID: "n" })).json).toEqual({});
  });
  test("bad bodies get {Err} and change nothing", async () => {
    const { call, state } = setup();
    const cases: [string, unknown, number, RegExp][] = [
      ["NetworkDriver.CreateNetwork", "{not json", 400, /malformed JSON/],
      ["NetworkDriver.CreateNetwork", {}, 400, /NetworkID/],
      ["NetworkDriver.CreateNetwork", { NetworkID: "" }, 400, /NetworkID/],
      ["NetworkDriver.CreateNetwork", { NetworkID: "a/b" }, 400, /NetworkID/],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", Options: { "com.docker.network.generic": { backend: "dpdk" } } },
        200,
        /backend=dpdk/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", Options: { "com.docker.network.generic": { "com.docker.network.driver.mtu": "huge" } } },
        200,
        /expected a decimal integer 68\.\.9000/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", Options: { "com.docker.network.generic": { switch: "bad name!" } } },
        200,
        /switch name/,
      ],
      // (refused only where there is no netmap)
      ...(existsSync("/dev/netmap")
        ? []
        : [
            [
              "NetworkDriver.CreateNetwork",
              { NetworkID: "n", Options: { "com.docker.network.generic": { backend: "vale" } } },
              200,
              /needs \/dev\/netmap/,
            ] as [string, unknown, number, RegExp],
          ]),
      // strict values: an MTU is decimal digits in range, every option a known key with a string value
      ...["0x5dc", "1e3", " 1500", "1500.0", "67", "9001", ""].map(
        (v) =>
          [
            "NetworkDriver.CreateNetwork",
            { NetworkID: "n", Options: { "com.docker.network.generic": { "com.docker.network.driver.mtu": v } } },
            200,
            /^--opt com\.docker\.network\.driver\.mtu=.*: expected a decimal integer 68\.\.9000$/,
          ] as [string, unknown, number, RegExp],
      ),
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", Options: { "com.docker.network.generic": { mtu: [1500] } } },
        400,
        /^invalid request: \/Options\/com\.docker\.network\.generic\/mtu: expected a string, got \[1500\]$/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", Options: { "com.docker.network.generic": { colour: "blue" } } },
        200,
        /^--opt colour: unknown option/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", Options: { "com.docker.network.generic": "x" } },
        400,
        /^invalid request: \/Options\/com\.docker\.network\.generic: expected an object or null, got "x"$/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", Options: { blob: "x".repeat(10 << 20) } },
        413,
        /at most 65536/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", IPv4Data: [{ Pool: "198.18.0.0/33" }] },
        200,
        /^IPv4Data\[0\]\.Pool "198\.18\.0\.0\/33" is not an IPv4 address\/prefix$/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", IPv4Data: [{ Pool: "198.18.0.0/24", Gateway: "198.18.1.1/24" }] },
        200,
        /^IPv4Data\[0\]\.Gateway 198\.18\.1\.1\/24 is outside the pool 198\.18\.0\.0\/24$/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", IPv6Data: [{ Pool: "198.18.0.0/24" }] },
        200,
        /^IPv6Data\[0\]\.Pool .* is not an IPv6 address\/prefix$/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", IPv6Data: [{ Pool: "2001:db8::/64", Gateway: "2001:db9::1/64" }] },
        200,
        /outside the pool/,
      ],
      [
        "NetworkDriver.CreateNetwork",
        { NetworkID: "n", IPv4Data: [{ Pool: "198.18.0.0/24" }, { Pool: "198.18.1.0/24" }] },
        200,
        /one IPv4 subnet/,
      ],
      ["NetworkDriver.CreateEndpoint", { NetworkID: "nope", EndpointID: EP(9) }, 200, /network nope not found/],
      ["NetworkDriver.Join", { NetworkID: "net1", EndpointID: EP(9) }, 400, /SandboxKey/],
      [
        "NetworkDriver.Join",
        { NetworkID: "net1", EndpointID: EP(9), SandboxKey: "/var/run/docker/netns/x" },
        200,
        /endpoint .* not found/,
      ],
      ["NetworkDriver.Leave", { NetworkID: "net1", EndpointID: EP(9) }, 200, /not found/],
      ["NetworkDriver.DeleteEndpoint", { NetworkID: "net1" }, 400, /EndpointID/],
      ["NetworkDriver.DeleteNetwork", { NetworkID: "ghost" }, 200, /network ghost not found/],
      ["NetworkDriver.EndpointOperInfo", { NetworkID: "net1", EndpointID: EP(9) }, 200, /not found/],
    ];
    for (const [m, body, status, re] of cases) {
      const r = await call(m, body);
      expect({ m, status: r.status, matches: re.test(r.json.Err) }).toEqual({ m, status, matches: true });
    }
    expect(state.networks()).toEqual([]);
    // endpoints on an --internal network (no gateway: nothing made on the host before the checks)
    expect(
      (
        await call("NetworkDriver.CreateNetwork", {
          NetworkID: "ni",
          Options: { "com.docker.network.internal": true },
          IPv4Data: [{ Pool: "198.18.9.0/24" }],
        })
      ).json,
    ).toEqual({});
    const ep = (Interface: Record<string, string>) =>
      call("NetworkDriver.CreateEndpoint", { NetworkID: "ni", EndpointID: EP(10), Interface });
    expect((await ep({ MacAddress: "01:00:5e:00:00:01" })).json.Err).toBe(
      "Interface.MacAddress 01:00:5e:00:00:01 is a multicast address; a container needs a unicast one",
    );
    expect((await ep({ MacAddress: "00:00:00:00:00:00" })).json.Err).toBe(
      "Interface.MacAddress 00:00:00:00:00:00 is all zero",
    );
    expect((await ep({ MacAddress: "02:42:c6:12:0:1" })).json.Err).toMatch(
      /^Interface\.MacAddress "02:42:c6:12:0:1" is not a MAC address/,
    );
    expect((await ep({ Address: "198.18.9.300/24" })).json.Err).toMatch(
      /^Interface\.Address "198\.18\.9\.300\/24" is not an IPv4 address\/prefix$/,
    );
    expect((await ep({ AddressIPv6: "198.18.9.3/24" })).json.Err).toMatch(
      /^Interface\.AddressIPv6 .* is not an IPv6 address\/prefix$/,
    );
    expect(state.endpoints()).toEqual([]);
    expect((await call("NetworkDriver.DeleteNetwork", { NetworkID: "ni" })).json).toEqual({});
  });
});

describe("state file", () => {
  test("a damaged state file is reported, not trusted", () => {
    const st = new State(":memory:");
    st.db.exec(
      "INSERT INTO networks (id, switch, backend, mtu, gateway, options, created) VALUES ('n', 'vale1', 'dpdk', 1500, '', '{}', 0)",
    );
    expect(() => st.networks()).toThrow(/state database: bad network row .*backend/);
    st.close();
  });
});

const sh = (...a: string[]) => spawnSync(a[0], a.slice(1), { encoding: "utf8", timeout: 180_000 });

describe.skipIf(!root)("endpoint lifecycle with real veths (in a network namespace of the test's own)", () => {
  // interfaces, addresses and iptables rules the driver makes land in this namespace, never the host's
  let ns: PrivateNetns;
  beforeAll(() => {
    ns = enterPrivateNetns("plug");
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1"); // this namespace's own (a new one starts at 0)
  });
  afterAll(() => ns.leave());

  // one network's life, step by step (each step needs the ones before it)
  const lifecycle = (() => {
    const { call, state } = setup();
    const a = EP(1),
      b = EP(2);
    created.push(a, b);
    const gw = gatewayNames("net1");
    const fw = new Firewall(state.instance),
      C = chains(state.instance);
    return { call, state, a, b, gw, fw, C, before: [] as string[] };
  })();
  let dp: FakeDatapath;

  test("a network: made once (a retry is harmless), its gateway holds the address, NAT for its subnet", async () => {
    const { call, gw, fw, C } = lifecycle;
    lifecycle.before = listOurs();
    expect((await call("NetworkDriver.CreateNetwork", NET)).json).toEqual({});
    expect((await call("NetworkDriver.CreateNetwork", NET)).json).toEqual({}); // an engine retry is harmless
    // the gateway: its address on a host interface whose peer is a port of the switch; NAT for the subnet
    expect(sh("ip", "-o", "addr", "show", "dev", gw.host).stdout).toContain("inet 198.18.0.1/24");
    expect(sh("ip", "-o", "link", "show", "dev", gw.host).stdout).toContain("mtu 1400");
    expect(fw.list()).toContain(`nat -A ${C.postrouting} -s 198.18.0.0/24 ! -o ${gw.host} -j MASQUERADE`);
  });

  test("endpoints: a MAC from the address (as Docker's bridge) or the engine's, the network's MTU; a bad MAC makes nothing", async () => {
    const { call, a, b } = lifecycle;
    const ra = await call("NetworkDriver.CreateEndpoint", {
      NetworkID: "net1",
      EndpointID: a,
      Options: {},
      Interface: { Address: "198.18.0.2/24", AddressIPv6: "", MacAddress: "" },
    });
    expect(ra.json).toEqual({ Interface: { MacAddress: "02:42:c6:12:00:02" } }); // generated from the address (as Docker's bridge), returned
    expect(macFor(a, "198.18.0.2/24")).toBe("02:42:c6:12:00:02");
    const rb = await call("NetworkDriver.CreateEndpoint", {
      NetworkID: "net1",
      EndpointID: b,
      Interface: { Address: "198.18.0.3/24", AddressIPv6: "", MacAddress: "02:42:c6:12:00:03" },
    });
    expect(rb.json).toEqual({ Interface: {} }); // supplied by the engine: must not be echoed
    const { host, cont } = vethNames(b);
    expect(linkExists(host) && linkExists(cont)).toBe(true);
    const show = spawnSync("ip", ["link", "show", cont], { encoding: "utf8", timeout: 180_000 }).stdout;
    expect(show).toContain("link/ether 02:42:c6:12:00:03");
    expect(show).toContain("mtu 1400");
    // a bad MAC changes nothing
    const bad = await call("NetworkDriver.CreateEndpoint", {
      NetworkID: "net1",
      EndpointID: EP(3),
      Interface: { MacAddress: "zz" },
    });
    expect(bad.json.Err).toMatch(/not a MAC/);
    expect(linkExists(vethNames(EP(3)).host)).toBe(false);
  });

  test("join: the gateway in the answer, the switch carries the gateway and both endpoints", async () => {
    const { call, a, b, gw } = lifecycle;
    const j = await call("NetworkDriver.Join", {
      NetworkID: "net1",
      EndpointID: a,
      SandboxKey: "/var/run/docker/netns/abc",
      Options: {},
    });
    expect(j.json).toEqual({ InterfaceName: { SrcName: vethNames(a).cont, DstPrefix: "eth" }, Gateway: "198.18.0.1" });
    await call("NetworkDriver.Join", { NetworkID: "net1", EndpointID: b, SandboxKey: "/var/run/docker/netns/def" });
    dp = FakeDatapath.made.at(-1) as FakeDatapath;
    expect(dp.ports.sort()).toEqual([gw.sw, vethNames(a).host, vethNames(b).host].sort());
    expect(
      (await call("NetworkDriver.EndpointOperInfo", { NetworkID: "net1", EndpointID: a })).json.Value,
    ).toMatchObject({ joined: true, mac: "02:42:c6:12:00:02" });
  });

  test("published ports: DNAT and filter rules, a chosen host port, clashes and bad maps refused, proxies hold the ports", async () => {
    const { call, a, b, gw, fw, C } = lifecycle;
    expect(
      (await call("NetworkDriver.ProgramExternalConnectivity", { NetworkID: "net1", EndpointID: a, Options: {} })).json,
    ).toEqual({});
    // -p 18080:8080 -p 8081/udp (host port chosen) -p 127.0.0.2:18082:8082
    const pm = (Port: number, HostPort: number, Proto = 6, HostIP = "") => ({
      Proto,
      IP: "",
      Port,
      HostIP,
      HostPort,
      HostPortEnd: HostPort,
    });
    const portmap = [pm(8080, 18080), pm(8081, 0, 17), pm(8082, 18082, 6, "127.0.0.2")];
    expect(
      (
        await call("NetworkDriver.ProgramExternalConnectivity", {
          NetworkID: "net1",
          EndpointID: a,
          Options: { "com.docker.network.portmap": portmap },
        })
      ).json,
    ).toEqual({});
    const rules = fw.list();
    expect(rules).toContain(
      `nat -A ${C.dnat} ! -i ${gw.host} -p tcp -m tcp --dport 18080 -j DNAT --to-destination 198.18.0.2:8080`,
    );
    expect(rules).toContain(
      `nat -A ${C.dnat} ! -i ${gw.host} -p udp -m udp --dport 49153 -j DNAT --to-destination 198.18.0.2:8081`,
    );
    expect(rules).toContain(
      `nat -A ${C.dnat} -d 127.0.0.2/32 ! -i ${gw.host} -p tcp -m tcp --dport 18082 -j DNAT --to-destination 198.18.0.2:8082`,
    );
    expect(rules).toContain(
      `filter -A ${C.forward} -d 198.18.0.2/32 ! -i ${gw.host} -o ${gw.host} -p tcp -m conntrack --ctstate DNAT -m tcp --dport 8080 -j ACCEPT`,
    );
    expect(
      (await call("NetworkDriver.EndpointOperInfo", { NetworkID: "net1", EndpointID: a })).json.Value.ports,
    ).toEqual([
      { proto: "tcp", hostIp: "", hostPort: 18080, port: 8080 },
      { proto: "udp", hostIp: "", hostPort: 49153, port: 8081 },
      { proto: "tcp", hostIp: "127.0.0.2", hostPort: 18082, port: 8082 },
    ]);
    // the same host port for another endpoint: refused, nothing changed
    const clash = await call("NetworkDriver.ProgramExternalConnectivity", {
      NetworkID: "net1",
      EndpointID: b,
      Options: { "com.docker.network.portmap": [pm(9000, 18080)] },
    });
    expect(clash.json.Err).toBe(`port 0.0.0.0:18080/tcp is already published for endpoint ${a.slice(0, 12)}`);
    const badPm = await call("NetworkDriver.ProgramExternalConnectivity", {
      NetworkID: "net1",
      EndpointID: b,
      Options: { "com.docker.network.portmap": [{ Proto: 6, Port: 70000 }] },
    });
    expect(badPm.status).toBe(400);
    expect(badPm.json.Err).toBe(
      "invalid request: /Options/com.docker.network.portmap/0/Port: Expected integer to be less or equal to 65535",
    );
    expect(fw.list()).toEqual(rules);
    // the proxies hold the host ports: another program cannot take one, and one already taken is refused
    expect(() => Bun.listen({ hostname: "0.0.0.0", port: 18080, socket: { data() {} } })).toThrow();
    const squatter = Bun.listen({ hostname: "0.0.0.0", port: 18083, socket: { data() {} } });
    const taken = await call("NetworkDriver.ProgramExternalConnectivity", {
      NetworkID: "net1",
      EndpointID: b,
      Options: { "com.docker.network.portmap": [pm(8083, 18083)] },
    });
    squatter.stop(true);
    expect(taken.json.Err).toStartWith(`endpoint ${b.slice(0, 12)}: cannot publish 0.0.0.0:18083/tcp: `);
    expect(taken.json.Err).toMatch(/EADDRINUSE|in use/i);
    expect(fw.list()).toEqual(rules);
    expect((await call("NetworkDriver.RevokeExternalConnectivity", { NetworkID: "net1", EndpointID: a })).json).toEqual(
      {},
    );
    expect(fw.list().filter((r) => r.includes("-j DNAT") || r.includes("--dport"))).toEqual([]);
    const freed = Bun.listen({ hostname: "0.0.0.0", port: 18080, socket: { data() {} } }); // the proxy let go
    freed.stop(true);
  });

  test("leave and delete: the switch lets go, veths, gateway, rules and chains are gone", async () => {
    const { call, state, a, b, gw, fw } = lifecycle;
    const { host } = vethNames(b);
    expect((await call("NetworkDriver.DeleteNetwork", { NetworkID: "net1" })).json.Err).toMatch(/still has 2 endpoint/);
    expect((await call("NetworkDriver.Leave", { NetworkID: "net1", EndpointID: a })).json).toEqual({});
    expect(dp.ports).toEqual([gw.sw, vethNames(b).host]);
    for (const id of [a, b])
      expect((await call("NetworkDriver.DeleteEndpoint", { NetworkID: "net1", EndpointID: id })).json).toEqual({});
    expect(linkExists(host)).toBe(false);
    expect((await call("NetworkDriver.DeleteNetwork", { NetworkID: "net1" })).json).toEqual({});
    expect(state.networks()).toEqual([]);
    expect(listOurs()).toEqual(lifecycle.before);
    expect(linkExists(gw.host)).toBe(false);
    expect(fw.list()).toEqual([]); // the last network took our chains and jumps with it
    expect(sh("iptables-save").stdout).not.toContain("BUNMAP");
  });

  test("checksum offload is turned off through SIOCETHTOOL (no ethtool binary), and checked", () => {
    createVeth("vhc0ffee0c0ffe", "vcc0ffee0c0ffe", "02:00:00:00:00:01", 1500, { txChecksumOff: true });
    try {
      expect(txChecksum("vcc0ffee0c0ffe")).toBe(false);
      expect(txChecksum("vhc0ffee0c0ffe")).toBe(true);
      const k = sh("ethtool", "-k", "vcc0ffee0c0ffe");
      if (k.status === 0) expect(k.stdout).toMatch(/tx-checksumming: off\n[\s\S]*\ttx-tcp-segmentation: off/); // TSO went with it
      expect(() => setTxChecksum("nosuch0", false)).toThrow("SIOCETHTOOL nosuch0: No such device");
    } finally {
      deleteVeth("vhc0ffee0c0ffe");
    }
  });

  test("a restart finds its networks and endpoints, and removes only veths it can prove it made", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-db-`),
      path = `${dir}/vale.db`;
    tmpDirs.push(dir); // removed after the file, even if an assertion fails first
    const first = setup(path);
    expect((await first.call("NetworkDriver.CreateNetwork", NET)).json).toEqual({});
    const a = EP(4),
      orphan = EP(5);
    created.push(a, orphan);
    await first.call("NetworkDriver.CreateEndpoint", {
      NetworkID: "net1",
      EndpointID: a,
      Interface: { MacAddress: "" },
    });
    await first.call("NetworkDriver.Join", { NetworkID: "net1", EndpointID: a, SandboxKey: "/x" });
    // a crash between creating a veth and writing its row leaves a veth marked ours that no row holds
    const o = vethNames(orphan);
    createVeth(
      o.host,
      o.cont,
      "02:00:00:00:00:05",
      1500,
      {},
      { instance: first.state.instance, kind: "ep", id: orphan },
    );
    // beside it: a link named like ours but unmarked, and one marked by another plugin's state
    const stranger = vethNames(EP(7)),
      other = vethNames(EP(8));
    created.push(EP(7), EP(8));
    expect(sh("ip", "link", "add", stranger.host, "type", "veth", "peer", "name", stranger.cont).status).toBe(0);
    createVeth(
      other.host,
      other.cont,
      "02:00:00:00:00:08",
      1500,
      {},
      { instance: "0123456789ab", kind: "ep", id: EP(8) },
    );
    first.state.close();

    const second = setup(path);
    const r = await second.driver.restore();
    expect(r).toEqual({ networks: 1, endpoints: 1, orphansRemoved: 1, cnfPorts: 0, problems: [] });
    expect(linkExists(o.host)).toBe(false);
    expect(linkExists(stranger.host) && linkExists(other.host)).toBe(true); // not proven ours: untouched
    // an endpoint whose ID starts like a live one's gets other names; removing it leaves the live one
    const twin = `${a.slice(0, 12)}${"f".repeat(52)}`;
    const tw = await second.call("NetworkDriver.CreateEndpoint", {
      NetworkID: "net1",
      EndpointID: twin,
      Interface: { Address: "198.18.0.9/24", MacAddress: "" },
    });
    expect(tw.json).toEqual({ Interface: { MacAddress: "02:42:c6:12:00:09" } });
    const twinIf = second.driver.view()[0].endpoints.find((e: { id: string }) => e.id === twin)!.host_interface;
    expect(twinIf).not.toBe(vethNames(a).host);
    expect(linkExists(twinIf)).toBe(true);
    // and an unmarked interface holding a name is skipped, not deleted
    const squat = vethNames(EP(9));
    created.push(EP(9));
    expect(sh("ip", "link", "add", squat.host, "type", "veth", "peer", "name", "squatpeer").status).toBe(0);
    expect(
      (
        await second.call("NetworkDriver.CreateEndpoint", {
          NetworkID: "net1",
          EndpointID: EP(9),
          Interface: { MacAddress: "" },
        })
      ).json.Interface,
    ).toBeDefined();
    expect(sh("ip", "link", "show", squat.host).stdout).toContain(`${squat.host}@squatpeer`);
    for (const id of [twin, EP(9)])
      expect((await second.call("NetworkDriver.DeleteEndpoint", { NetworkID: "net1", EndpointID: id })).json).toEqual(
        {},
      );
    expect(linkExists(vethNames(a).host) && linkExists(squat.host)).toBe(true);
    expect(linkExists(vethNames(a).host)).toBe(true);
    expect(FakeDatapath.made.at(-1)!.ports).toEqual([gatewayNames("net1").sw, vethNames(a).host]); // the switch is rebuilt
    const view = second.driver.view();
    expect(view[0].endpoints[0]).toMatchObject({ id: a, joined: true });
    await second.call("NetworkDriver.DeleteEndpoint", { NetworkID: "net1", EndpointID: a });
    await second.call("NetworkDriver.DeleteNetwork", { NetworkID: "net1" });
    expect(second.state.networks()).toEqual([]);
    for (const x of [stranger, other]) sh("ip", "link", "del", x.host);
    sh("ip", "link", "del", squat.host);
  });
});

describe("kernel VALE datapath (requests checked, no /dev/netmap needed)", () => {
  test("forces the emulated adapter, attaches joined veths, detaches the ones that leave", async () => {
    const sys = mkdtempSync(`${tmpdir()}/bunmap-sys-`);
    mkdirSync(`${sys}/module/netmap/parameters`, { recursive: true });
    writeFileSync(`${sys}/module/netmap/parameters/admode`, "0");
    const sent: { reqtype: number; name: string; mode: number }[] = [];
    const ctl = {
      request(reqtype: number, name: string, body: Uint8Array) {
        sent.push({
          reqtype,
          name,
          mode: reqtype === REQ.VALE_ATTACH ? new DataView(body.buffer).getUint32(REG.nr_mode, true) : -1,
        });
        return { errno: 0, name, body };
      },
    };
    const v = new ValeSwitch("vale7", ctl, sys);
    expect(readFileSync(`${sys}/module/netmap/parameters/admode`, "utf8")).toBe("2");
    await v.setPorts(["vh000000000001", "vh000000000002"]);
    await v.setPorts(["vh000000000002"]);
    await v.stop();
    expect(sent).toEqual([
      { reqtype: REQ.VALE_ATTACH, name: "vale7:vh000000000001", mode: NR_REG.ALL_NIC },
      { reqtype: REQ.VALE_ATTACH, name: "vale7:vh000000000002", mode: NR_REG.ALL_NIC },
      { reqtype: REQ.VALE_DETACH, name: "vale7:vh000000000001", mode: -1 },
      { reqtype: REQ.VALE_DETACH, name: "vale7:vh000000000002", mode: -1 },
    ]);
    expect(() => new ValeSwitch("vale7", ctl, `${sys}/nothing`)).toThrow(/netmap module not loaded/);
    rmSync(sys, { recursive: true, force: true });
  });
});
