// The plugin's uplink options (-o vni/peers/group, plugin/uplink.ts): the vxlan: port they become,
// the slice_id -> VNI map, and what is refused.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { checkUplink, innerMtu, MIN_UNDERLAY_MTU, sliceVni, underlayMtu } from "../plugin/uplink.ts";
import { parsePortName, vxlanConf } from "../src/index.ts";

describe("the plugin's uplink options (-o vni/peers/group)", () => {
  test("turn into the port the network's switch opens: a Linux vxlan device (packet), a vxlan: port (xdp)", () => {
    const u = checkUplink({ vni: "42", peers: "198.18.0.2,198.18.0.3", vxlan_port: "8472" }, "packet", 1450)!;
    expect(u.vni).toBe(42);
    expect(u.key).toBe("vxlan:42@conf:remote=198.18.0.2+198.18.0.3,dstport=8472");
    expect(u.device).toEqual({
      name: "bmvx42",
      vni: 42,
      dstport: 8472,
      remotes: ["198.18.0.2", "198.18.0.3"],
      group: "",
      dev: "",
      local: "",
      mtu: 1450,
    });
    expect(u.port).toStartWith("packet:bmvx42@conf:vnet=1,"); // switched like a host veth end
    expect(vxlanConf(parsePortName(u.key)).remotes.length).toBe(2); // the key is a vxlan: name too
    const x = checkUplink({ vni: "42", peers: "198.18.0.2" }, "xdp", 1450)!;
    expect([x.device, x.port]).toEqual([null, "vxlan:42@conf:remote=198.18.0.2,buf_size=4096,slots=512,mtu=1450"]);
    expect(vxlanConf(parsePortName(x.port)).remotes.length).toBe(1); // the port accepts what the plugin writes
    const g = checkUplink({ slice_id: "blue", group: "239.1.1.1", vxlan_dev: "eth0" }, "xdp")!;
    expect(g.vni).toBe(16512592); // FNV-1a of "blue" mod 16777215, + 1 (worked out apart, in Python)
    expect(vxlanConf(parsePortName(g.port)).group).toBe(0xef010101);
    const gp = checkUplink({ vni: "7", group: "239.1.1.1", vxlan_dev: "eth0", vxlan_local: "198.18.0.1" }, "packet")!;
    expect(gp.device).toMatchObject({ name: "bmvx7", dstport: 4789, remotes: [], group: "239.1.1.1", dev: "eth0" });
    expect(gp.device?.local).toBe("198.18.0.1");
    expect(checkUplink({ backend: "packet" }, "packet")).toBeNull();
  });
  test("slice ids map onto 1..16777215, the same on every host", () => {
    // FNV-1a (32 bits) of the UTF-8 bytes, mod 16777215, + 1: values worked out apart (Python)
    expect(["blue", "green", "red", "tenant7", "tenant-a"].map(sliceVni)).toEqual([
      16512592, 1961150, 16023837, 345543, 3354127,
    ]);
    for (const s of ["", "a", "tenant7", "x".repeat(64)]) {
      expect(sliceVni(s)).toBeGreaterThanOrEqual(1);
      expect(sliceVni(s)).toBeLessThanOrEqual(16777215);
    }
  });
  test("refusals", () => {
    const bad = (g: Record<string, string>, m: RegExp, backend: "packet" | "vale" = "packet") =>
      expect(() => checkUplink(g, backend)).toThrow(m);
    bad({ vni: "5" }, /needs the other hosts/);
    bad({ vni: "5", peers: "198.18.0.2", group: "239.1.1.1" }, /exclude each other/);
    bad({ vni: "5", peers: "198.18.0.2" }, /backend=packet or xdp/, "vale");
    bad({ vni: "0", peers: "198.18.0.2" }, /1..16777215/);
    bad({ vni: "5", peers: "198.18.0.2,198.18.0.2" }, /appears twice/);
    bad({ vni: "5", peers: "239.1.1.1" }, /multicast one goes in -o group/);
    bad({ vni: "5", group: "198.18.0.1", vxlan_dev: "eth0" }, /not a multicast address/);
    bad({ vni: "5", peers: "198.18.0.2", vxlan_port: "70000" }, /UDP port 1..65535/);
    bad({ vni: "5", peers: "198.18.0.2", vxlan_dev: "a b" }, /not an interface name/);
    bad({ vxlan_local: "198.18.0.1" }, /belongs to an uplink/);
  });
});

describe("the underlay's room", () => {
  test("VXLAN takes 50 bytes of the underlay's MTU (IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14)", () => {
    expect(innerMtu(1500)).toBe(1450);
    expect(innerMtu(9000)).toBe(8950);
    expect(MIN_UNDERLAY_MTU).toBe(118); // IPv4's minimum MTU 68 + 50
  });
});

const root = process.getuid?.() === 0 && spawnSync("ip", ["-V"], { timeout: 60_000 }).status === 0;
if (!root)
  console.warn("SKIP the underlay lookup: needs root and iproute2 (interfaces in a namespace of the test's own)");

describe.skipIf(!root)("the underlay's MTU, looked up where the plugin runs", () => {
  test("this host's own address among the peers is skipped; the smallest MTU on the way counts", async () => {
    const { enterPrivateNetns } = await import("./helpers/private-netns.ts");
    const ns = enterPrivateNetns("ul");
    try {
      const ip = (...a: string[]) => expect(spawnSync("ip", a, { timeout: 60_000 }).status).toBe(0);
      for (const [dev, mtu, addr] of [
        ["u0", "1500", "198.18.140.1/24"],
        ["u1", "1400", "198.18.141.1/24"],
      ]) {
        ip("link", "add", dev, "mtu", mtu, "type", "veth", "peer", "name", `${dev}p`); // (no dummy module here)
        ip("addr", "add", addr, "dev", dev);
        ip("link", "set", dev, "up");
        ip("link", "set", `${dev}p`, "up");
      }
      const up = (peers: string, more: Record<string, string> = {}) =>
        checkUplink({ vni: "7", peers, ...more }, "packet") as NonNullable<ReturnType<typeof checkUplink>>;
      // the README's two-host example on host A: its own address first (it once gave lo's MTU, 65536)
      expect(underlayMtu(up("198.18.140.1,198.18.140.2"))).toEqual({ dev: "u0", mtu: 1500 });
      expect(underlayMtu(up("198.18.140.2,198.18.141.2"))).toEqual({ dev: "u1", mtu: 1400 });
      expect(underlayMtu(up("198.18.140.2", { vxlan_dev: "u1" }))).toEqual({ dev: "u1", mtu: 1400 });
      expect(() => underlayMtu(up("198.18.140.1"))).toThrow(
        "--opt peers=198.18.140.1: every peer is this host's own address; name the other hosts",
      );
      expect(() => underlayMtu(up("198.18.140.2", { vxlan_dev: "nosuch0" }))).toThrow(
        "--opt vxlan_dev=nosuch0: no such interface here",
      );
    } finally {
      ns.leave();
    }
  });
});
