// A vale network as a drop-in for a user-defined bridge network, on a real Docker engine: the
// gateway address on a host interface that is a switch port, NAT to an "outside" host (a namespace
// this test makes, joined to the host by a veth on 198.18.250.0/30), published ports (-p, TCP and
// UDP) from the host and from outside, --internal with none of it, IPv6 gateway both ways, and
// nothing of ours left in iptables after removal, also after a plugin crash and restart.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ensureImage, IMAGE } from "./helpers/docker-image.ts";
import { api, docker, dockerUnavailable, PluginProc, removeStaleTestObjects, sh } from "./helpers/plugin-proc.ts";

setDefaultTimeout(120_000);

const why = dockerUnavailable() ?? (sh(["iptables", "-S"]).status !== 0 ? "iptables is not usable here" : null);
if (why) console.warn(`SKIP Docker gateway tests: ${why}`);

const repo = `${import.meta.dir}/..`;
const tag = `bg${process.pid}`;
const OUT = `${tag}out`; // the outside host's namespace
const HOST_IF = `bo${process.pid}`,
  OUT_IF = `bi${process.pid}`;
const HOST_IP = "198.18.250.1",
  OUT_IP = "198.18.250.2";
const WHOAMI = "tests/helpers/whoami.ts";
const plugin = new PluginProc();
const children: ReturnType<typeof Bun.spawn>[] = [];
const containers: string[] = [];
const networks: string[] = [];

/** Run whoami's client where `where` says (host, outside namespace or a container); its one line. */
function ask(where: "host" | "outside" | string, host: string, port: number, proto: "tcp" | "udp"): string {
  const args = ["client", host, String(port), proto];
  const r =
    where === "host"
      ? sh([process.execPath, `${repo}/${WHOAMI}`, ...args])
      : where === "outside"
        ? sh(["ip", "netns", "exec", OUT, process.execPath, `${repo}/${WHOAMI}`, ...args])
        : docker("exec", where, "bun", `/bunmap/${WHOAMI}`, ...args);
  return r.stdout.trim();
}

const run = (name: string, net: string, ip: string, ...extra: string[]) => {
  containers.push(name);
  const r = docker(
    "run",
    "-d",
    "--name",
    name,
    "--network",
    net,
    "--ip",
    ip,
    "-v",
    `${repo}:/bunmap:ro`,
    ...extra,
    IMAGE,
    "bun",
    `/bunmap/${WHOAMI}`,
    "server",
    "9000",
  );
  expect(r.stderr).toBe("");
};
const ids: string[] = [];
const network = (name: string, ...args: string[]) => {
  networks.push(name);
  const r = docker("network", "create", "-d", "vale", ...args, name);
  expect(r.stderr).toBe("");
  ids.push(r.stdout.trim());
  return r.stdout.trim();
};
async function listening(c: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!docker("logs", c).stdout.includes("listening")) {
    if (Date.now() > deadline) throw new Error(`${c}: its server did not start: ${docker("logs", c).stderr}`);
    await Bun.sleep(100);
  }
}
const ours = () =>
  sh(["iptables-save"])
    .stdout.split("\n")
    .filter((l) => l.includes("BUNMAP") && l.includes(plugin.instance));

beforeAll(async () => {
  if (why) return;
  ensureImage();
  const steps = [
    ["ip", "netns", "add", OUT],
    ["ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", OUT_IF, "netns", OUT],
    ["ip", "addr", "add", `${HOST_IP}/30`, "dev", HOST_IF],
    ["ip", "link", "set", HOST_IF, "up"],
    ["ip", "-n", OUT, "addr", "add", `${OUT_IP}/30`, "dev", OUT_IF],
    ["ip", "-n", OUT, "link", "set", OUT_IF, "up"],
    ["ip", "-n", OUT, "link", "set", "lo", "up"],
  ];
  for (const s of steps) expect(sh(s).stderr).toBe("");
  const srv = Bun.spawn(["ip", "netns", "exec", OUT, process.execPath, `${repo}/${WHOAMI}`, "server", "9000"], {
    timeout: 600_000,
    killSignal: "SIGKILL",
    stdout: "pipe",
    stderr: "inherit",
  });
  children.push(srv);
  const r = (srv.stdout as ReadableStream<Uint8Array>).getReader();
  await r.read(); // "listening"
  r.releaseLock();
  await plugin.start();
  removeStaleTestObjects();
});

afterAll(async () => {
  if (why) return;
  for (const c of children) c.kill();
  if (containers.length) docker("rm", "-f", ...containers);
  for (const n of networks) docker("network", "rm", n);
  await plugin.dispose();
  sh(["ip", "link", "del", HOST_IF]);
  sh(["ip", "netns", "del", OUT]);
});

describe.skipIf(!!why)("vale network gateway, NAT and published ports", () => {
  test("gateway both ways, NAT to the outside, -p TCP and UDP from the host and from outside", async () => {
    const id = network(`${tag}n`, "--subnet", "198.18.60.0/24", "--gateway", "198.18.60.1");
    run(`${tag}c1`, `${tag}n`, "198.18.60.10", "-p", "18080:9000", "-p", "18080:9000/udp");
    await listening(`${tag}c1`);
    const view = (await api("/bunmap/networks")).find((n: { id: string }) => n.id === id);
    const gwIf = view.gateway_interface as string;
    expect(sh(["ip", "-o", "addr", "show", "dev", gwIf]).stdout).toContain("inet 198.18.60.1/24");
    // container -> gateway (the host), host -> container
    expect(docker("exec", `${tag}c1`, "ping", "-c", "2", "-W", "2", "198.18.60.1").stdout).toContain(
      "2 packets received",
    );
    expect(sh(["ping", "-c", "2", "-W", "2", "198.18.60.10"]).stdout).toContain("2 received");
    expect(docker("exec", `${tag}c1`, "ip", "route").stdout).toContain("default via 198.18.60.1 dev eth0");
    // container -> outside, through NAT: the outside sees the host's address
    expect(ask(`${tag}c1`, OUT_IP, 9000, "tcp")).toBe(`you are ${HOST_IP}`);
    expect(ask(`${tag}c1`, OUT_IP, 9000, "udp")).toBe(`you are ${HOST_IP}`);
    // -p 18080:9000 and 18080:9000/udp: from the host (its own address) and from outside; the
    // container sees the outside client's own address
    for (const proto of ["tcp", "udp"] as const) {
      expect(ask("host", HOST_IP, 18080, proto)).toBe(`you are ${HOST_IP}`);
      expect(ask("outside", HOST_IP, 18080, proto)).toBe(`you are ${OUT_IP}`);
    }
    // through the proxy: the host's loopback, and the container to its own published port (hairpin);
    // the container sees the gateway's address
    for (const proto of ["tcp", "udp"] as const) {
      expect(ask("host", "127.0.0.1", 18080, proto)).toBe("you are 198.18.60.1");
      expect(ask(`${tag}c1`, HOST_IP, 18080, proto)).toBe("you are 198.18.60.1");
    }
    // a host port some other program holds: docker run fails and says which
    const squatter = Bun.listen({ hostname: "0.0.0.0", port: 18085, socket: { data() {} } });
    containers.push(`${tag}c5`);
    const refused = docker("run", "-d", "--name", `${tag}c5`, "--network", `${tag}n`, "-p", "18085:9000", IMAGE);
    squatter.stop(true);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain("cannot publish 0.0.0.0:18085/tcp");
    expect(ours().filter((r) => r.includes("18085"))).toEqual([]);
    // a port not published is not reachable from outside, and the container is not routable from there
    expect(ask("outside", HOST_IP, 18081, "tcp")).not.toMatch(/^you are/);
    sh(["ip", "-n", OUT, "route", "add", "198.18.60.0/24", "via", HOST_IP]);
    expect(ask("outside", "198.18.60.10", 9000, "tcp")).not.toMatch(/^you are/);
    sh(["ip", "-n", OUT, "route", "del", "198.18.60.0/24"]);

    // the container stops: its ports are unpublished at once
    expect(docker("stop", "-t", "1", `${tag}c1`).status).toBe(0);
    expect(ours().filter((r) => r.includes("-j DNAT"))).toEqual([]);
    expect(ask("outside", HOST_IP, 18080, "tcp")).not.toMatch(/^you are/);
    // started again: published again
    expect(docker("start", `${tag}c1`).status).toBe(0);
    await Bun.sleep(500);
    await listening(`${tag}c1`);
    expect(ask("outside", HOST_IP, 18080, "tcp")).toBe(`you are ${OUT_IP}`);
  });

  test("a second network is isolated from the first through the gateways, as Docker's bridges are", async () => {
    network(`${tag}m`, "--subnet", "198.18.63.0/24");
    run(`${tag}c4`, `${tag}m`, "198.18.63.10");
    await listening(`${tag}c4`);
    expect(docker("exec", `${tag}c4`, "ping", "-c", "1", "-W", "2", "198.18.63.1").stdout).toContain(
      "1 packets received",
    );
    expect(ask(`${tag}c4`, "198.18.60.10", 9000, "tcp")).not.toMatch(/^you are/);
    // but it reaches the first network's published port through the host, masqueraded on the way in
    // as with Docker's bridges (the container sees its own network's gateway)
    expect(ask(`${tag}c4`, HOST_IP, 18080, "tcp")).toBe("you are 198.18.60.1");
  });

  test("--internal: no gateway port, no default route, no NAT, nothing published", async () => {
    const id = network(`${tag}i`, "--internal", "--subnet", "198.18.61.0/24");
    run(`${tag}c2`, `${tag}i`, "198.18.61.10", "-p", "18090:9000");
    run(`${tag}c3`, `${tag}i`, "198.18.61.11");
    await listening(`${tag}c2`);
    const view = (await api("/bunmap/networks")).find((n: { id: string }) => n.id === id);
    expect(view).toMatchObject({ internal: true, gateway_interface: null });
    expect(view.ports.length).toBe(2); // the two containers, no gateway port
    expect(docker("exec", `${tag}c2`, "ip", "route").stdout).not.toContain("default");
    expect(docker("exec", `${tag}c2`, "ping", "-c", "1", "-W", "1", "198.18.61.1").stdout).toContain(
      "0 packets received",
    );
    expect(ask(`${tag}c3`, "198.18.61.10", 9000, "tcp")).toBe("you are 198.18.61.11"); // inside, it switches
    expect(ask(`${tag}c2`, OUT_IP, 9000, "tcp")).not.toMatch(/^you are/);
    expect(ask("outside", HOST_IP, 18090, "tcp")).not.toMatch(/^you are/);
    expect(ours().filter((l) => l.includes("198.18.61.") || l.includes("18090"))).toEqual([]);
  });

  test("IPv6: the gateway holds the network's IPv6 gateway address; container and host reach each other", async () => {
    network(`${tag}6`, "--ipv6", "--subnet", "198.18.62.0/24", "--subnet", "2001:db8:62::/64");
    run(`${tag}c6`, `${tag}6`, "198.18.62.10", "--ip6", "2001:db8:62::10");
    await listening(`${tag}c6`);
    expect(docker("exec", `${tag}c6`, "ip", "-6", "route").stdout).toContain("default via 2001:db8:62::1");
    expect(docker("exec", `${tag}c6`, "ping", "-6", "-c", "2", "-W", "2", "2001:db8:62::1").stdout).toContain(
      "2 packets received",
    );
    expect(sh(["ping", "-6", "-c", "2", "-W", "2", "2001:db8:62::10"]).stdout).toContain("2 received");
  });

  test("a plugin crash and restart restores the same rules; removing everything leaves nothing of ours", async () => {
    const before = ours().sort();
    expect(before.some((r) => r.includes("--dport 18080"))).toBe(true);
    await plugin.stop("SIGKILL");
    await plugin.start();
    expect(ours().sort()).toEqual(before);
    expect(ask("outside", HOST_IP, 18080, "udp")).toBe(`you are ${OUT_IP}`);
    expect(ask(`${tag}c1`, OUT_IP, 9000, "tcp")).toBe(`you are ${HOST_IP}`);
    expect(ask("host", "127.0.0.1", 18080, "tcp")).toBe("you are 198.18.60.1"); // the proxy is back too
    docker("rm", "-f", ...containers.splice(0));
    for (const n of networks.splice(0)) expect(docker("network", "rm", n).status).toBe(0);
    expect(ours()).toEqual([]);
    expect(plugin.interfaces()).toEqual([]);
    for (const id of ids) expect(sh(["ip", "-o", "link"]).stdout).not.toContain(` vg${id.slice(0, 12)}`);
  });
});
