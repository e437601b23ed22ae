// The "vale" driver with a real Docker engine: network on 198.18.0.0/24, two containers ping each
// other and exchange UDP through bunmap's switch, the plugin restarts and they still can, then
// everything is removed and no veth or state remains.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { libxdp } from "../ffi/xsk.ts";
import { ensureImage, IMAGE } from "./helpers/docker-image.ts";
import { api, docker, dockerUnavailable, PluginProc, removeStaleTestObjects, sh } from "./helpers/plugin-proc.ts";

setDefaultTimeout(120_000);

const why = dockerUnavailable();
const noXdp = (() => {
  try {
    libxdp();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
})();
if (why) console.warn(`SKIP Docker tests: ${why}`);

const tag = `bm${process.pid}`;
const NET = `${tag}net`;
const C1 = `${tag}c1`,
  C2 = `${tag}c2`;
const repo = `${import.meta.dir}/..`;
const plugin = new PluginProc();
const startPlugin = () => plugin.start();
const stopPlugin = () => plugin.stop();

beforeAll(async () => {
  if (why) return;
  ensureImage();
  await startPlugin();
  removeStaleTestObjects();
});
afterAll(async () => {
  if (why) return;
  docker("rm", "-f", C1, C2);
  docker("network", "rm", NET);
  await plugin.dispose();
});

describe.skipIf(!!why)("docker network create -d vale", () => {
  test("two containers ping and exchange UDP; a plugin restart keeps them connected; removal leaves nothing", async () => {
    const mk = docker(
      "network",
      "create",
      "-d",
      "vale",
      "--subnet",
      "198.18.0.0/24",
      "--gateway",
      "198.18.0.1",
      "-o",
      "com.docker.network.driver.mtu=1400",
      NET,
    );
    expect(mk.stderr).toBe("");
    for (const [c, ip] of [
      [C1, "198.18.0.10"],
      [C2, "198.18.0.11"],
    ]) {
      const r = docker("run", "-d", "--name", c, "--network", NET, "--ip", ip, "-v", `${repo}:/bunmap:ro`, IMAGE);
      expect(r.stderr).toBe("");
    }
    // the container side: eth0 with our MAC, the address and MTU Docker gave it
    const link = docker("exec", C1, "ip", "addr", "show", "eth0").stdout;
    expect(link).toContain("inet 198.18.0.10/24");
    expect(link).toContain("mtu 1400");
    const view = await api("/bunmap/networks");
    expect(view).toHaveLength(1);
    expect(view[0].endpoints.map((e: { joined: boolean }) => e.joined)).toEqual([true, true]);
    expect(link).toContain(view[0].endpoints.find((e: { address: string }) => e.address === "198.18.0.10/24").mac);

    const ping = () => docker("exec", C1, "ping", "-c", "3", "-W", "2", "198.18.0.11").stdout;
    expect(ping()).toMatch(/3 packets transmitted, 3 packets received/);

    const udp = async () => {
      docker("exec", "-d", C2, "bun", "/bunmap/tests/helpers/udp-echo.ts", "server", "7000");
      await Bun.sleep(700);
      return docker("exec", C1, "bun", "/bunmap/tests/helpers/udp-echo.ts", "client", "198.18.0.11", "7000", "3")
        .stdout.trim()
        .split("\n");
    };
    expect(await udp()).toEqual([
      "echo hello 0 from 198.18.0.11",
      "echo hello 1 from 198.18.0.11",
      "echo hello 2 from 198.18.0.11",
    ]);
    const counted = (await api("/bunmap/networks"))[0].ports.filter((p: { port: string }) => p.port.startsWith("vh"));
    expect(counted.length).toBe(2); // the containers' ports (beside them, the gateway's)
    for (const p of counted) expect(p.rx).toBeGreaterThan(0);

    // restart the plugin: state comes back from SQLite, the switch is rebuilt on the same veths
    await stopPlugin();
    const out = await startPlugin();
    expect(out).toContain("restored 1 networks, 2 endpoints");
    expect(ping()).toMatch(/3 packets transmitted, 3 packets received/);

    // a container that exits gives its endpoint back: its veth goes, the other one stays
    const vethsBefore = plugin.interfaces().length;
    expect(docker("stop", "-t", "1", C1).status).toBe(0);
    const deadline = Date.now() + 10_000;
    while (plugin.interfaces().length !== vethsBefore - 1 && Date.now() < deadline) await Bun.sleep(100);
    expect(plugin.interfaces().length).toBe(vethsBefore - 1);
    expect((await api("/bunmap/networks"))[0].endpoints.length).toBe(1);

    // remove everything: no veth, no state
    expect(docker("rm", "-f", C1, C2).status).toBe(0);
    expect(docker("network", "rm", NET).status).toBe(0);
    expect(plugin.interfaces()).toEqual([]);
    expect(await api("/bunmap/networks")).toEqual([]);
  });

  test("-o slice_id: networks with the same slice share one switch (one L2 segment); others stay apart", async () => {
    const nets = [`${NET}s1`, `${NET}s2`, `${NET}s3`];
    const boxes = [`${tag}s1`, `${tag}s2`, `${tag}s3`];
    try {
      expect(
        docker("network", "create", "-d", "vale", "--subnet", "198.18.20.0/24", "-o", "slice_id=7", nets[0]).stderr,
      ).toBe("");
      expect(
        docker("network", "create", "-d", "vale", "--subnet", "198.18.21.0/24", "-o", "slice_id=7", nets[1]).stderr,
      ).toBe("");
      expect(docker("network", "create", "-d", "vale", "--subnet", "198.18.22.0/24", nets[2]).stderr).toBe("");
      // a network that could not share the switch is refused, saying why
      const bad = docker(
        "network",
        "create",
        "-d",
        "vale",
        "--subnet",
        "198.18.23.0/24",
        "-o",
        "slice_id=7",
        "-o",
        "com.docker.network.driver.mtu=9000",
        `${NET}s4`,
      );
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toContain("networks sharing a switch must match (this one: packet, 9000)");
      const view = await api("/bunmap/networks");
      expect(view.filter((n: { switch: string }) => n.switch === "vale7").length).toBe(2);
      for (const [i, c] of boxes.entries()) {
        expect(
          docker(
            "run",
            "-d",
            "--name",
            c,
            "--cap-add",
            "NET_ADMIN",
            "--network",
            nets[i],
            "--ip",
            `198.18.2${i}.10`,
            IMAGE,
          ).stderr,
        ).toBe("");
        // an address on a segment of their own, beside the one Docker gave: only L2 can carry it
        expect(docker("exec", c, "ip", "addr", "add", `198.18.29.${i + 1}/24`, "dev", "eth0").status).toBe(0);
      }
      expect(docker("exec", boxes[0], "ping", "-c", "2", "-W", "2", "198.18.29.2").stdout).toContain(
        "2 packets received",
      ); // same slice
      expect(docker("exec", boxes[0], "ping", "-c", "2", "-W", "1", "198.18.29.3").stdout).toContain(
        "0 packets received",
      ); // another switch
    } finally {
      docker("rm", "-f", ...boxes);
      for (const n of [...nets, `${NET}s4`]) docker("network", "rm", n);
    }
    expect(plugin.interfaces()).toEqual([]);
  });

  test.skipIf(!!noXdp)("-o backend=xdp: the switch opens the host veth ends as AF_XDP ports", async () => {
    const net = `${NET}x`;
    expect(
      docker("network", "create", "-d", "vale", "--subnet", "198.18.1.0/24", "-o", "backend=xdp", net).stderr,
    ).toBe("");
    try {
      for (const [c, ip] of [
        [C1, "198.18.1.10"],
        [C2, "198.18.1.11"],
      ])
        expect(docker("run", "-d", "--name", c, "--network", net, "--ip", ip, IMAGE).stderr).toBe("");
      const view = (await api("/bunmap/networks"))[0];
      expect(view.backend).toBe("xdp");
      // libxdp attached its program to the host ends the switch opened
      for (const e of view.endpoints) expect(sh(["ip", "link", "show", e.host_interface]).stdout).toContain("xdp");
      expect(docker("exec", C1, "ping", "-c", "3", "-W", "2", "198.18.1.11").stdout).toMatch(
        /3 packets transmitted, 3 packets received/,
      );
      // the gateway port is an AF_XDP port too: container -> gateway and host -> container
      expect(docker("exec", C1, "ping", "-c", "2", "-W", "2", "198.18.1.1").stdout).toMatch(/2 packets received/);
      expect(sh(["ping", "-c", "2", "-W", "2", "198.18.1.10"]).stdout).toMatch(/2 received/);
    } finally {
      docker("rm", "-f", C1, C2);
      docker("network", "rm", net);
    }
    expect(plugin.interfaces()).toEqual([]);
  });
});
