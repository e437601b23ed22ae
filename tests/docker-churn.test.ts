// vale networks while containers come and go (real Docker engine, packet datapath): a 10 ms ping
// flow loses nothing while 30 other containers start and stop; a newly joined container sees no
// unicast addressed to others; containers started in parallel reach a target on the first try;
// MTU 9000 carries whole 9000-byte pings and TCP (GSO frames cross the switch); many networks on
// one plugin stay separate. Only addresses in 198.18.0.0/15, only containers this test made.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ensureImage, IMAGE } from "./helpers/docker-image.ts";
import {
  api,
  docker,
  dockerAsync,
  dockerUnavailable,
  PluginProc,
  removeStaleTestObjects,
} from "./helpers/plugin-proc.ts";

setDefaultTimeout(240_000);

const why = dockerUnavailable();
if (why) console.warn(`SKIP Docker churn tests: ${why}`);

const tag = `bmc${process.pid}`;
const repo = `${import.meta.dir}/..`;
const plugin = new PluginProc();
const made = { containers: new Set<string>(), networks: new Set<string>() };

async function net(name: string, subnet: string, ...opts: string[]): Promise<string> {
  const r = await dockerAsync("network", "create", "-d", "vale", "--subnet", subnet, ...opts, name);
  if (r.code !== 0) throw new Error(`network create ${name}: ${r.err}`);
  made.networks.add(name);
  return name;
}
/** A long-running container with the repository mounted (for the bun helpers). */
async function box(name: string, network: string, ip: string): Promise<string> {
  const r = await dockerAsync(
    "run",
    "-d",
    "--name",
    name,
    "--network",
    network,
    "--ip",
    ip,
    "-v",
    `${repo}:/bunmap:ro`,
    IMAGE,
  );
  if (r.code !== 0) throw new Error(`run ${name}: ${r.err}`);
  made.containers.add(name);
  return name;
}
const macOf = (c: string) => docker("exec", c, "cat", "/sys/class/net/eth0/address").stdout.trim();
const lossOf = (out: string) => {
  const m = /(\d+) packets transmitted, (\d+) packets received/.exec(out);
  if (!m) throw new Error(`no ping summary in: ${out}`);
  return { sent: Number(m[1]), got: Number(m[2]) };
};

beforeAll(async () => {
  if (why) return;
  ensureImage();
  await plugin.start();
  removeStaleTestObjects();
});
afterAll(async () => {
  if (why) return;
  if (made.containers.size) docker("rm", "-f", ...made.containers);
  for (const n of made.networks) docker("network", "rm", n);
  await plugin.dispose();
});

describe.skipIf(!!why)("vale network under churn", () => {
  test("a 10 ms ping flow loses nothing while 30 containers start and stop; a newcomer sees no one else's unicast", async () => {
    const n = await net(`${tag}a`, "198.18.2.0/24");
    const p1 = await box(`${tag}p1`, n, "198.18.2.10"),
      p2 = await box(`${tag}p2`, n, "198.18.2.11");
    expect(lossOf(docker("exec", p1, "ping", "-c", "3", "-W", "2", "198.18.2.11").stdout).got).toBe(3);
    const macs = `${macOf(p1)},${macOf(p2)}`;

    // the flow: 10 ms pings for as long as the churn takes
    const flow = dockerAsync("exec", p1, "ping", "-i", "0.01", "-c", "2500", "-W", "2", "198.18.2.11");
    await Bun.sleep(300);
    // a newcomer joins mid-flow and watches its interface for 3 s: it must see none of p1<->p2
    const watcher = dockerAsync(
      "run",
      "--rm",
      "--name",
      `${tag}w`,
      "--network",
      n,
      "--ip",
      "198.18.2.20",
      "-v",
      `${repo}:/bunmap:ro`,
      IMAGE,
      "bun",
      "/bunmap/tests/helpers/capture.ts",
      "eth0",
      "3000",
      macs,
    );
    made.containers.add(`${tag}w`);
    // its capture window opens when it says so (a loaded machine starts a container slowly)
    for (let t = 0; t < 200 && !docker("logs", `${tag}w`).stdout.includes("capturing"); t++) await Bun.sleep(100);
    docker("exec", p2, "ping", "-c", "2", "-W", "2", "198.18.2.20"); // traffic to the newcomer: it must see that
    // 30 containers start and stop beside the flow, three at a time
    let churned = 0;
    const churner = async (k: number) => {
      for (let i = k; i < 30; i += 3) {
        const r = await dockerAsync("run", "--rm", "--network", n, IMAGE, "true");
        if (r.code === 0) churned++;
      }
    };
    await Promise.all([churner(0), churner(1), churner(2)]);
    const w = await watcher;
    const seen = JSON.parse(w.out.trim().split("\n").at(-1)!);
    const f = await flow;
    expect(churned).toBe(30);
    expect(seen.own).toBeGreaterThanOrEqual(2); // the capture works: it saw the pings addressed to it
    expect(seen.foreign).toBe(0);
    const loss = lossOf(f.out);
    expect(loss.sent).toBe(2500);
    expect(loss.got).toBe(2500);
    // the flow's two ports never left the switch: their counters only grew
    const view = (await api("/bunmap/networks")).find((x: { endpoints: { address: string }[] }) =>
      x.endpoints.some((e) => e.address.startsWith("198.18.2.10")),
    );
    expect(view.endpoints.length).toBe(2);
    const flowPorts = view.ports.filter((p: { port: string }) => p.port.startsWith("vh")); // the containers' (not the gateway's)
    expect(flowPorts.length).toBe(2);
    for (const p of flowPorts) expect(p.rx).toBeGreaterThan(2500);
    expect(plugin.stderr).not.toContain("taken off");
  });

  test("50 containers on one network, 20 at a time, each reaches the target with its first ping", async () => {
    const n = await net(`${tag}b`, "198.18.3.0/24");
    await box(`${tag}t`, n, "198.18.3.10");
    const one = (i: number) =>
      dockerAsync(
        "run",
        "--rm",
        "--network",
        n,
        "--ip",
        `198.18.3.${100 + i}`,
        IMAGE,
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        "198.18.3.10",
      );
    const results: { code: number; out: string }[] = [];
    for (const batch of [20, 20, 10]) {
      const base = results.length;
      results.push(...(await Promise.all(Array.from({ length: batch }, (_, k) => one(base + k)))));
    }
    const failed = results
      .map((r, i) => (r.code === 0 && /1 packets received/.test(r.out) ? -1 : i))
      .filter((i) => i >= 0);
    expect(failed).toEqual([]);
  });

  test("MTU 9000: 8972-byte pings and TCP pass whole; TCP crosses as GSO frames", async () => {
    const n = await net(`${tag}j`, "198.18.4.0/24", "-o", "com.docker.network.driver.mtu=9000");
    const a = await box(`${tag}ja`, n, "198.18.4.10"),
      b = await box(`${tag}jb`, n, "198.18.4.11");
    expect(docker("exec", a, "ip", "link", "show", "eth0").stdout).toContain("mtu 9000");
    expect(lossOf(docker("exec", a, "ping", "-c", "3", "-W", "2", "-s", "8972", "198.18.4.11").stdout).got).toBe(3);
    docker("exec", "-d", b, "sh", "-c", "bun /bunmap/tests/helpers/tcp-xfer.ts server 5001 > /tmp/xfer.out");
    await Bun.sleep(800);
    const before = (await api("/bunmap/networks")).find((x: { mtu: number }) => x.mtu === 9000);
    const bytes = 200_000_000;
    const cl = await dockerAsync(
      "exec",
      a,
      "bun",
      "/bunmap/tests/helpers/tcp-xfer.ts",
      "client",
      "198.18.4.11",
      "5001",
      String(bytes),
    );
    expect(cl.code).toBe(0);
    const [, sent, sum] = cl.out.trim().split(" ");
    expect(Number(sent)).toBe(bytes);
    let got = "";
    for (let t = 0; t < 50 && !got; t++) {
      got =
        docker("exec", b, "cat", "/tmp/xfer.out")
          .stdout.split("\n")
          .find((l) => l.startsWith("got ")) ?? "";
      if (!got) await Bun.sleep(100);
    }
    expect(got).toBe(`got ${bytes} ${sum}`);
    const after = (await api("/bunmap/networks")).find((x: { mtu: number }) => x.mtu === 9000);
    const moved =
      after.ports.reduce((s: number, p: { rx: number }) => s + p.rx, 0) -
      before.ports.reduce((s: number, p: { rx: number }) => s + p.rx, 0);
    // MTU-sized frames would be >= 22,000 for 200 MB; GSO frames of up to 64 KB are fewer than half that
    expect(moved).toBeLessThan(bytes / 9000 / 2);
  });

  test("the xdp datapath refuses an MTU it cannot carry, at network creation", async () => {
    const r = await dockerAsync(
      "network",
      "create",
      "-d",
      "vale",
      "--subnet",
      "198.18.5.0/24",
      "-o",
      "backend=xdp",
      "-o",
      "com.docker.network.driver.mtu=9000",
      `${tag}x`,
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("the xdp datapath carries frames of MTU 3504 at most");
  });

  test("20 networks of 2 containers on one plugin: each pair talks, no network reaches another", async () => {
    const nets: string[] = [];
    for (let i = 0; i < 20; i++) nets.push(await net(`${tag}n${i}`, `198.18.${100 + i}.0/24`));
    await Promise.all(
      nets.map(async (n, i) => {
        await box(`${tag}n${i}a`, n, `198.18.${100 + i}.10`);
        await box(`${tag}n${i}b`, n, `198.18.${100 + i}.11`);
      }),
    );
    const pings = await Promise.all(
      nets.map((_, i) => dockerAsync("exec", `${tag}n${i}a`, "ping", "-c", "2", "-W", "2", `198.18.${100 + i}.11`)),
    );
    expect(pings.map((p) => lossOf(p.out).got)).toEqual(new Array(20).fill(2));
    // layer 2 is separate: an ARP probe finds its own network's peer, never another network's
    // (a ping would prove nothing: another subnet is not routed here)
    const arp = (c: string, ip: string) =>
      /Received (\d+) response/.exec(docker("exec", c, "arping", "-c", "2", "-w", "2", "-I", "eth0", ip).stdout)?.[1];
    expect(Number(arp(`${tag}n0a`, "198.18.100.11"))).toBeGreaterThan(0);
    expect(arp(`${tag}n0a`, "198.18.101.11")).toBe("0");
    expect(arp(`${tag}n7a`, "198.18.108.11")).toBe("0");
    const view = await api("/bunmap/networks");
    expect(view.filter((v: { endpoints: unknown[] }) => v.endpoints.length === 2).length).toBeGreaterThanOrEqual(20);
    for (let i = 0; i < 20; i++) {
      docker("rm", "-f", `${tag}n${i}a`, `${tag}n${i}b`);
      made.containers.delete(`${tag}n${i}a`);
      made.containers.delete(`${tag}n${i}b`);
    }
    for (const n of nets) {
      expect(docker("network", "rm", n).status).toBe(0);
      made.networks.delete(n);
    }
  });

  test("everything removed: no veth of ours is left", async () => {
    docker("rm", "-f", ...made.containers);
    made.containers.clear();
    for (const n of made.networks) docker("network", "rm", n);
    made.networks.clear();
    expect(plugin.interfaces()).toEqual([]);
    expect(await api("/bunmap/networks")).toEqual([]);
  });
});
