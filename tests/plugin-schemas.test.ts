// Every field of every route's body, given a value of the wrong type, is refused with 400 {"Err"}
// naming the field, and nothing changes: state rows, interfaces (`ip -o link`), firewall rules and
// the switch's ports are compared before and after each call. The fields and their types are listed
// here, by hand from Docker's protocol (libnetwork drivers/remote/api), not derived from
// plugin/schemas.ts, so a field the schema forgets is caught. At the end the valid bodies are sent,
// and each one does change something: the wrong-typed ones were refused, not ignored.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { makeApp } from "../plugin/app.ts";
import type { Backend } from "../plugin/backends.ts";
import type { Datapath } from "../plugin/datapath.ts";
import { Driver } from "../plugin/driver.ts";
import { Firewall } from "../plugin/firewall.ts";
import { State } from "../plugin/state.ts";
import { enterPrivateNetns, type PrivateNetns } from "./helpers/private-netns.ts";

setDefaultTimeout(120_000);

const root = process.getuid?.() === 0 && spawnSync("ip", ["-V"], { timeout: 60_000 }).status === 0;
if (!root) console.warn("SKIP plugin body tests: need root and iproute2 (the driver makes real veths)");

class RecordingDatapath implements Datapath {
  ports: string[] = [];
  constructor(readonly kind: Backend) {}
  async setPorts(p: string[]) {
    this.ports = [...p].sort();
  }
  counters() {
    return [];
  }
  metrics() {
    return null;
  }
  async stop() {
    this.ports = [];
  }
}

type Kind = "string" | "object" | "array" | "integer" | "flag";
/** Values of the wrong type for a field of each kind (null only where null is not allowed). */
const WRONG: Record<Kind, unknown[]> = {
  string: [5, true, {}, ["a"]],
  object: ["str", [1, 2], 5, true],
  array: ["str", { 0: "a" }, 5, true],
  integer: ["6", 1.5, true, {}, [6]],
  flag: ["yes", 1, {}],
};
/** What the answer says is expected, per kind (in the words Docker users see). */
const EXPECTED: Record<Kind, string> = {
  string: "a string",
  object: "an object",
  array: "an array",
  integer: "an integer",
  flag: "true or ",
};
type Field = [path: (string | number)[], kind: Kind, nullable?: boolean];

const pid = process.pid.toString(16).padStart(6, "0");
const EP = (n: number) => `${pid}${n.toString(16).padStart(6, "0")}${"0".repeat(52)}`;
const A = EP(1),
  B = EP(2);
const G = "com.docker.network.generic",
  PM = "com.docker.network.portmap";

const ipam = (pool: string, gw: string) => [
  { AddressSpace: "LocalDefault", Pool: pool, Gateway: gw, AuxAddresses: {} },
];
const ipamFields = (k: string): Field[] => [
  [[k], "array", true],
  [[k, 0], "object"],
  [[k, 0, "AddressSpace"], "string"],
  [[k, 0, "Pool"], "string"],
  [[k, 0, "Gateway"], "string"],
  [[k, 0, "AuxAddresses"], "object"],
  [[k, 0, "AuxAddresses", "x"], "string"],
];
const ref: Field[] = [
  [["NetworkID"], "string"],
  [["EndpointID"], "string"],
];

/** Each route: a valid body that would change something, and its fields. */
const ROUTES: [string, Record<string, unknown>, Field[]][] = [
  [
    "NetworkDriver.CreateNetwork",
    {
      NetworkID: "net2",
      Options: { [G]: { mtu: "1400" }, "com.docker.network.internal": false, "com.docker.network.enable_ipv6": false },
      IPv4Data: ipam("198.18.5.0/24", "198.18.5.1/24"),
      IPv6Data: ipam("fd00:5::/64", "fd00:5::1/64"),
    },
    [
      [["NetworkID"], "string"],
      [["Options"], "object"],
      [["Options", G], "object", true],
      [["Options", G, "mtu"], "string"],
      [["Options", "com.docker.network.internal"], "flag"],
      [["Options", "com.docker.network.enable_ipv6"], "flag"],
      ...ipamFields("IPv4Data"),
      ...ipamFields("IPv6Data"),
    ],
  ],
  [
    "NetworkDriver.AllocateNetwork",
    { NetworkID: "net2", Options: { mtu: "1400" }, IPv4Data: ipam("198.18.5.0/24", "198.18.5.1/24"), IPv6Data: [] },
    [
      [["NetworkID"], "string"],
      [["Options"], "object", true],
      [["Options", "mtu"], "string"],
      ...ipamFields("IPv4Data"),
    ],
  ],
  ["NetworkDriver.DeleteNetwork", { NetworkID: "net0" }, [[["NetworkID"], "string"]]],
  ["NetworkDriver.FreeNetwork", { NetworkID: "net0" }, [[["NetworkID"], "string"]]],
  [
    "NetworkDriver.CreateEndpoint",
    {
      NetworkID: "net1",
      EndpointID: EP(3),
      Options: {},
      Interface: { Address: "198.18.4.3/24", AddressIPv6: "", MacAddress: "" },
    },
    [
      ...ref,
      [["Options"], "object", true],
      [["Interface"], "object", true],
      [["Interface", "Address"], "string"],
      [["Interface", "AddressIPv6"], "string"],
      [["Interface", "MacAddress"], "string"],
    ],
  ],
  ["NetworkDriver.EndpointOperInfo", { NetworkID: "net1", EndpointID: A }, ref],
  ["NetworkDriver.DeleteEndpoint", { NetworkID: "net1", EndpointID: B }, ref],
  [
    "NetworkDriver.Join",
    { NetworkID: "net1", EndpointID: B, SandboxKey: "/var/run/docker/netns/x", Options: {} },
    [...ref, [["SandboxKey"], "string"], [["Options"], "object", true]],
  ],
  ["NetworkDriver.Leave", { NetworkID: "net1", EndpointID: A }, ref],
  [
    "NetworkDriver.ProgramExternalConnectivity",
    {
      NetworkID: "net1",
      EndpointID: B,
      Options: { [PM]: [{ Proto: 6, IP: "", Port: 80, HostIP: "", HostPort: 18090, HostPortEnd: 18090 }] },
    },
    [
      ...ref,
      [["Options"], "object", true],
      [["Options", PM], "array", true],
      [["Options", PM, 0], "object"],
      [["Options", PM, 0, "Proto"], "integer"],
      [["Options", PM, 0, "IP"], "string"],
      [["Options", PM, 0, "Port"], "integer"],
      [["Options", PM, 0, "HostIP"], "string"],
      [["Options", PM, 0, "HostPort"], "integer"],
      [["Options", PM, 0, "HostPortEnd"], "integer"],
    ],
  ],
  ["NetworkDriver.RevokeExternalConnectivity", { NetworkID: "net1", EndpointID: A }, ref],
  ["NetworkDriver.DiscoverNew", { DiscoveryType: 1, DiscoveryData: {} }, [[["DiscoveryType"], "integer"]]],
  ["NetworkDriver.DiscoverDelete", { DiscoveryType: 1, DiscoveryData: {} }, [[["DiscoveryType"], "integer"]]],
];

function withValue(body: unknown, path: (string | number)[], v: unknown): unknown {
  const copy = structuredClone(body) as Record<string | number, unknown>;
  let at = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  at[path[path.length - 1]] = v;
  return copy;
}

describe.skipIf(!root)("every route x field x wrong type: 400 naming the field, nothing changed", () => {
  let ns: PrivateNetns;
  let call: (method: string, body: unknown) => Promise<{ status: number; Err?: string }>;
  let snapshot: () => unknown;
  beforeAll(async () => {
    ns = enterPrivateNetns("body"); // veths, addresses and rules land here, never on the host
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    const state = new State(":memory:");
    const dps: RecordingDatapath[] = [];
    const driver = new Driver(state, {
      defaultBackend: "packet",
      proxies: null,
      makeDatapath: (k) => {
        const d = new RecordingDatapath(k);
        dps.push(d);
        return d;
      },
    });
    const app = makeApp(driver);
    call = async (method, body) => {
      const r = await app.handle(
        new Request(`http://localhost/${method}`, { method: "POST", body: JSON.stringify(body) }),
      );
      return { status: r.status, ...((await r.json()) as { Err?: string }) };
    };
    const fw = new Firewall(state.instance);
    const sh = (...a: string[]) => spawnSync(a[0], a.slice(1), { encoding: "utf8", timeout: 60_000 }).stdout;
    snapshot = () => ({
      networks: state.networks(),
      endpoints: state.endpoints(),
      // names, peers, MTUs, MACs, aliases (the marks), flags: not the counters, which move
      links: sh("ip", "-o", "link")
        .split("\n")
        .map((l) => l.replace(/ qlen \d+/, "")),
      addresses: sh("ip", "-o", "addr"),
      rules: fw.list(),
      switchPorts: dps.map((d) => d.ports),
    });
    // something to lose: a routed network with one joined endpoint publishing a port, one endpoint
    // not joined, and an internal network with nothing on it
    const ok = async (m: string, b: unknown) => expect((await call(m, b)).Err).toBeUndefined();
    await ok("NetworkDriver.CreateNetwork", { NetworkID: "net1", IPv4Data: ipam("198.18.4.0/24", "198.18.4.1/24") });
    await ok("NetworkDriver.CreateNetwork", { NetworkID: "net0", Options: { "com.docker.network.internal": true } });
    for (const [id, n] of [
      [A, 2],
      [B, 3],
    ] as const)
      await ok("NetworkDriver.CreateEndpoint", {
        NetworkID: "net1",
        EndpointID: id,
        Interface: { Address: `198.18.4.${n + 10}/24` },
      });
    await ok("NetworkDriver.Join", { NetworkID: "net1", EndpointID: A, SandboxKey: "/var/run/docker/netns/a" });
    await ok("NetworkDriver.ProgramExternalConnectivity", {
      NetworkID: "net1",
      EndpointID: A,
      Options: { [PM]: [{ Proto: 6, Port: 80, HostPort: 18080, HostPortEnd: 18080 }] },
    });
  });
  afterAll(() => ns?.leave());

  for (const [method, valid, fields] of ROUTES) {
    test(method, async () => {
      const before = snapshot();
      const wrongs: [string, unknown, string][] = [];
      for (const body of ["str", [valid], 5, null])
        wrongs.push(["body", body, "invalid request: body: expected an object"]);
      for (const [path, kind, nullable] of fields) {
        const name = `/${path.join("/")}`;
        for (const v of [...WRONG[kind], ...(nullable ? [] : [null])])
          wrongs.push([name, withValue(valid, path, v), `invalid request: ${name}: expected ${EXPECTED[kind]}`]);
      }
      for (const [field, body, prefix] of wrongs) {
        const r = await call(method, body);
        expect({ field, body, status: r.status, named: r.Err?.startsWith(prefix) ? prefix : r.Err }).toEqual({
          field,
          body,
          status: 400,
          named: prefix,
        });
        expect(snapshot()).toEqual(before);
      }
    });
  }

  test("the valid bodies do change things (so the refusals above were real)", async () => {
    const changes = [
      "NetworkDriver.CreateNetwork",
      "NetworkDriver.DeleteNetwork",
      "NetworkDriver.CreateEndpoint",
      "NetworkDriver.Join",
      "NetworkDriver.ProgramExternalConnectivity",
      "NetworkDriver.RevokeExternalConnectivity",
      "NetworkDriver.Leave",
      "NetworkDriver.DeleteEndpoint",
    ];
    for (const m of changes) {
      const before = snapshot();
      const valid = ROUTES.find(([x]) => x === m)?.[1];
      const r = await call(m, valid);
      expect({ m, status: r.status, Err: r.Err }).toEqual({ m, status: 200, Err: undefined });
      expect(snapshot()).not.toEqual(before);
    }
  });
});
