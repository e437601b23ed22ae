// Swarm-scoped vale networks, on Docker 20.10 as Debian packages it. On a host of its own
// (docker/host-ns.sh: a namespace with its own engine, made a one-node swarm) with a Linux vxlan host
// R behind an underlay veth:
// - the legacy (socket-file) plugin is refused in swarm mode, with Docker's reason;
// - the managed plugin (docker/managed-plugin.sh, built offline) with BUNMAP_PLUGIN_SCOPE=global serves
//   a `--scope swarm` network: the swarm manager allocates the addresses (--subnet/--ip-range), the -o
//   options reach the node through AllocateNetwork, a container and a service's tasks join it and
//   reach a station behind Linux's vxlan over the network's uplink.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { ensureImage, IMAGE } from "./helpers/docker-image.ts";
import { privateEngineUnavailable } from "./helpers/netns.ts";

setDefaultTimeout(240_000);
const repo = `${import.meta.dir}/..`;
const why = privateEngineUnavailable();
if (why) console.warn(`SKIP swarm test: ${why}`);

const S = `bm${process.pid}S`,
  R = `bm${process.pid}R`,
  C = `bm${process.pid}C`;
const PLUGIN = `bunmap/vale:t${process.pid}`;
const sh = (cmd: string[], timeout = 120_000) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout });
const must = (cmd: string[]) => {
  const r = sh(cmd);
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr || r.stdout}`);
  return r.stdout;
};
const sock = `/tmp/bunmap-host-${S}/docker.sock`;
const d = (...a: string[]) => sh(["docker", "-H", `unix://${sock}`, ...a]);

beforeAll(() => {
  if (why) return;
  must(["ip", "netns", "add", S]);
  must(["ip", "netns", "add", R]);
  must(["ip", "netns", "add", C]);
  must(["ip", "link", "add", "u", "netns", S, "type", "veth", "peer", "name", "u", "netns", R]);
  must(["ip", "-n", R, "addr", "add", "198.18.142.2/30", "dev", "u"]);
  must(["ip", "-n", R, "link", "set", "u", "up"]);
  // the station behind Linux's vxlan 91 (UDP 4790: swarm's own overlay holds 4789 on its nodes)
  must(["ip", "link", "add", "c", "netns", C, "type", "veth", "peer", "name", "hc", "netns", R]);
  must(["ip", "-n", C, "addr", "add", "198.18.161.200/24", "dev", "c"]);
  must(["ip", "-n", C, "link", "set", "c", "mtu", "1450", "up"]);
  for (const cmd of [
    "link add vx91 type vxlan id 91 remote 198.18.142.1 local 198.18.142.2 dstport 4790 dev u",
    "link add br91 type bridge",
    "link set vx91 master br91",
    "link set hc master br91",
    "link set vx91 up",
    "link set br91 up",
    "link set hc up",
  ])
    must(["ip", "-n", R, ...cmd.split(" ")]);
  must([`${repo}/docker/host-ns.sh`, "up", S, "u", "198.18.142.1/30"]);
  ensureImage(sock);
  must(["docker", "-H", `unix://${sock}`, "swarm", "init", "--advertise-addr", "198.18.142.1"]);
});

afterAll(() => {
  if (why) return;
  d("service", "rm", "svc");
  const ids = d("ps", "-aq").stdout.split(/\s+/).filter(Boolean);
  if (ids.length) d("rm", "-f", ...ids);
  d("swarm", "leave", "--force");
  d("plugin", "disable", "-f", PLUGIN);
  d("plugin", "rm", "-f", PLUGIN);
  sh([`${repo}/docker/host-ns.sh`, "down", S]);
  for (const n of [C, R, S]) sh(["ip", "netns", "del", n]);
});

describe.skipIf(!!why)("swarm-scoped vale networks", () => {
  test("the legacy plugin is refused in swarm mode (Docker's rule, not ours)", () => {
    const r = d("network", "create", "-d", "vale", "--scope", "swarm", "legacy");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("legacy plugin vale of type NetworkDriver is not supported in swarm mode");
  });

  test("the managed plugin serves a swarm network: swarm allocates, containers and service tasks reach the uplink", () => {
    must([`${repo}/docker/managed-plugin.sh`, PLUGIN, sock]);
    expect(d("plugin", "set", PLUGIN, "BUNMAP_PLUGIN_SCOPE=global").status).toBe(0);
    expect(d("plugin", "enable", PLUGIN).stderr).toBe("");
    const mk = d(
      ...["network", "create", "-d", PLUGIN, "--scope", "swarm", "--attachable"],
      ...["--subnet", "198.18.161.0/24", "--ip-range", "198.18.161.0/25"],
      ...["-o", "vni=91", "-o", "peers=198.18.142.2,198.18.142.1", "-o", "vxlan_port=4790", "gnet"],
    );
    expect(mk.stderr).toBe("");
    expect(d("network", "inspect", "gnet", "--format", "{{.Scope}}").stdout.trim()).toBe("swarm");
    expect(d("run", "-d", "--name", "g1", "--network", "gnet", IMAGE).stderr).toBe("");
    const link = d("exec", "g1", "ip", "addr", "show", "eth0").stdout;
    expect(link).toContain("mtu 1450"); // the uplink's room, from the -o options AllocateNetwork passed on
    expect(link).toMatch(/inet 198\.18\.161\.(\d|[1-9]\d|1[01]\d|12[0-7])\/24/); // from the swarm's --ip-range
    const ping = (c: string) =>
      Number(/(\d+) packets received/.exec(d("exec", c, "ping", "-c", "3", "-W", "2", "198.18.161.200").stdout)?.[1]);
    expect(ping("g1")).toBe(3);

    const svc = d(
      "service",
      "create",
      "--detach=false",
      "--name",
      "svc",
      "--network",
      "gnet",
      "--replicas",
      "2",
      IMAGE,
    );
    expect(svc.status).toBe(0);
    const tasks = d("ps", "-q", "--filter", "label=com.docker.swarm.service.name=svc")
      .stdout.split(/\s+/)
      .filter(Boolean);
    expect(tasks.length).toBe(2);
    const addrs = tasks.map((t) =>
      d("inspect", t, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").stdout.trim(),
    );
    expect(new Set(addrs).size).toBe(2);
    for (const t of tasks) expect(ping(t)).toBe(3);
  });
});
