// plugin/plan.ts without root or I/O: what a CreateNetwork becomes (switch, MTU, gateway, uplink)
// and every rule that refuses one, with the machine's answers (underlay MTU, ip_forward, netmap)
// given by the test.
import { describe, expect, test } from "bun:test";
import type { Backend } from "../plugin/backends.ts";
import { type PlanContext, planNetwork } from "../plugin/plan.ts";
import type { CreateNetwork } from "../plugin/schemas.ts";
import type { NetworkRow } from "../plugin/state.ts";

const G = "com.docker.network.generic";
const ctx = (over: Partial<PlanContext> = {}): PlanContext => ({
  defaultBackend: "packet",
  networks: [],
  unavailable: (b: Backend) => (b === "vale" ? "no netmap here" : null),
  ipForwarding: true,
  underlay: () => ({ dev: "eth9", mtu: 1500 }),
  now: 1234,
  ...over,
});
const body = (generic: Record<string, string> = {}, extra: Partial<CreateNetwork> = {}): CreateNetwork => ({
  NetworkID: "abcdef0123456789",
  Options: { [G]: generic },
  IPv4Data: [{ Pool: "198.18.8.0/24", Gateway: "198.18.8.1/24" }],
  ...extra,
});
const refused = (b: CreateNetwork, c: PlanContext, msg: string) => expect(() => planNetwork(b, c)).toThrow(msg);

describe("a network's plan", () => {
  test("defaults: its own switch, MTU 1500, a gateway, no uplink", () => {
    const p = planNetwork(body(), ctx());
    expect(p.row).toEqual({
      id: "abcdef0123456789",
      switch: "valeabcdef",
      backend: "packet",
      mtu: 1500,
      gateway: "198.18.8.1",
      options: JSON.stringify({ [G]: {} }),
      created: 1234,
      internal: 0,
      pool: "198.18.8.0/24",
      gateway6: "",
      pool6: "",
    });
    expect(p.gateway).toBe(true);
    expect(p.uplink).toBeNull();
  });

  test("options: Docker's MTU key or ours, a switch or slice name, --internal in either spelling", () => {
    expect(planNetwork(body({ "com.docker.network.driver.mtu": "9000" }), ctx()).row.mtu).toBe(9000);
    expect(planNetwork(body({ mtu: "1400", switch: "blue" }), ctx()).row).toMatchObject({
      mtu: 1400,
      switch: "valeblue",
    });
    expect(planNetwork(body({ slice_id: "vale7" }), ctx()).row.switch).toBe("vale7");
    for (const flag of [true, "true"] as const) {
      const p = planNetwork(body({}, { Options: { "com.docker.network.internal": flag } }), ctx());
      expect([p.row.internal, p.gateway]).toEqual([1, false]);
    }
  });

  test("an uplink: the MTU leaves the underlay's 50 bytes, and a larger one is refused", () => {
    const up = { vni: "42", peers: "198.18.0.2" };
    const p = planNetwork(body(up), ctx());
    expect(p.row.mtu).toBe(1450);
    expect(p.uplink?.key).toBe("vxlan:42@conf:remote=198.18.0.2");
    expect([p.uplink?.device?.name, p.uplink?.device?.mtu]).toEqual(["bmvx42", 1450]);
    expect(planNetwork(body(up), ctx({ underlay: () => ({ dev: "eth9", mtu: 9000 }) })).row.mtu).toBe(1500);
    refused(
      body({ ...up, mtu: "1451" }),
      ctx(),
      "--opt mtu=1451: the uplink leaves by eth9 (MTU 1500) and VXLAN adds 50 bytes: 1450 at most",
    );
    refused(
      body(up),
      ctx({ underlay: () => ({ dev: "eth9", mtu: 117 }) }),
      "the uplink's interface eth9 has MTU 117: too small for VXLAN (118 at least)",
    );
  });

  test("what a datapath cannot do is refused", () => {
    refused(body({ backend: "dpdk" }), ctx(), "--opt backend=dpdk: use packet, xdp, vale");
    refused(body({ backend: "vale" }), ctx(), "no netmap here");
    refused(
      body({ backend: "xdp", mtu: "4000" }),
      ctx(),
      "--opt mtu=4000: the xdp datapath carries frames of MTU 3504 at most (use backend=packet for larger)",
    );
    refused(
      body({ backend: "vale", vni: "5", peers: "198.18.0.2" }),
      ctx({ unavailable: () => null }),
      "an uplink (-o peers/group) runs on bunmap's switch: use -o backend=packet or xdp",
    );
  });

  test("IPAM, routing and names", () => {
    refused(
      body({}, { IPv4Data: [{ Pool: "198.18.8.0/24" }, { Pool: "198.18.9.0/24" }] }),
      ctx(),
      "IPv4Data: a vale network takes one IPv4 subnet (got 2)",
    );
    refused(
      body(),
      ctx({ ipForwarding: false }),
      "net.ipv4.ip_forward is 0, so the network's gateway could not route: enable it (sysctl -w net.ipv4.ip_forward=1, as Docker does) or create the network with --internal",
    );
    refused(body({ switch: "a-b" }), ctx(), "--opt switch=a-b: a switch name is vale followed by up to 11 letters");
  });

  test("networks sharing a switch must match; one VNI per switch on a host", () => {
    const mate: NetworkRow = { ...planNetwork(body({ slice_id: "s1" }), ctx()).row, id: "other0123456789" };
    refused(
      body({ slice_id: "s1", mtu: "1400" }),
      ctx({ networks: [mate] }),
      "--opt slice_id: switch vales1 already carries network other0123456 with backend packet and MTU 1500; networks sharing a switch must match (this one: packet, 1400)",
    );
    expect(planNetwork(body({ slice_id: "s1" }), ctx({ networks: [mate] })).row.switch).toBe("vales1");
    const linked: NetworkRow = {
      ...planNetwork(body({ vni: "7", peers: "198.18.0.2" }), ctx()).row,
      id: "linked012345678",
    };
    refused(
      body({ vni: "7", peers: "198.18.0.3", switch: "x" }),
      ctx({ networks: [linked] }),
      "--opt vni=7: network linked012345 on this host already uplinks that VNI (switch valeabcdef); give both the same slice_id to share its switch",
    );
  });
});
