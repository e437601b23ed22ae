// Zero-copy ports from inside containers (net:): containers on a vale network that mount only the
// ports socket's directory open ports into the network's switch (or a pipe between two of them) and
// run bunmap's pktgen and an NF there; a kernel container pings the NF; whoever is not in a sandbox
// of that network is refused; the ports go with their process, with the container leaving the
// network, and come back after a plugin crash.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { encodeNetMessage, openPort, unixSocket } from "../src/index.ts";
import { ensureImage, IMAGE } from "./helpers/docker-image.ts";
import { api, docker, dockerUnavailable, PluginProc, removeStaleTestObjects } from "./helpers/plugin-proc.ts";

setDefaultTimeout(180_000);
const why = dockerUnavailable();
if (why) console.warn(`SKIP Docker CNF port tests: ${why}`);

const tag = `bm${process.pid}`;
const NET = `${tag}cn`,
  NET2 = `${tag}cn2`;
const A = `${tag}ca`,
  B = `${tag}cb`,
  K = `${tag}ck`, // a kernel-stack container
  O = `${tag}co`; // on the other network
const repo = `${import.meta.dir}/..`;
const run = mkdtempSync(`${tmpdir()}/bunmap-run-`); // mounted as /run/bunmap in the containers
const SOCK = `${run}/ports.sock`;
const plugin = new PluginProc({ BUNMAP_PORTS_SOCK: SOCK });
let netId = "",
  net2Id = "";
const NF_IP = "198.18.140.50",
  NF_MAC = "02:00:00:00:00:50";

const inCt = (ct: string, cmd: string, timeout = 60_000) =>
  spawnSync("docker", ["exec", ct, "sh", "-c", `cd /bunmap && ${cmd}`], { encoding: "utf8", timeout });
const startCt = (name: string, net: string) =>
  docker(
    "run",
    "-d",
    "--name",
    name,
    "--network",
    net,
    "-v",
    `${run}:/run/bunmap`,
    "-v",
    `${repo}:/bunmap`,
    IMAGE,
    "sleep",
    "100000",
  );
/** Our regions (in the plugin's shm directory) that exist now. */
const regions = () => readdirSync("/dev/shm").filter((f) => f.startsWith(`bunmap-cnf-${plugin.instance}-`));
const shmPorts = async () =>
  ((await api("/bunmap/networks")) as { id: string; ports: { port: string; rx: number; tx: number }[] }[])
    .find((n) => n.id === netId)!
    .ports.filter((p) => p.port.startsWith("shm:"));
const received = (out: string) => Number(/Received (\d+) packets/.exec(out)?.[1] ?? -1);
const pings = (ct: string, n = 3) =>
  Number(
    /(\d+) packets received/.exec(
      spawnSync("docker", ["exec", ct, "ping", "-c", `${n}`, "-W", "2", NF_IP], { encoding: "utf8", timeout: 30_000 })
        .stdout,
    )?.[1] ?? -1,
  );
async function until(f: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return true;
    await Bun.sleep(100);
  }
  return f();
}
/** The responder NF (examples/responder.ts) in container `ct`, on its net:eth0 port, in the background. */
function responder(ct: string, port = "net:eth0") {
  return spawn(
    "docker",
    ["exec", ct, "sh", "-c", `cd /bunmap && exec timeout 120 bun examples/responder.ts ${port} ${NF_IP} ${NF_MAC}`],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
}
/** End the responder inside the container (killing `docker exec` would leave it running there). */
const stopResponder = (ct: string) =>
  spawnSync(
    "docker",
    [
      "exec",
      ct,
      "sh",
      "-c",
      `for p in $(ps | grep '[r]esponder.ts' | sed 's/^ *\\([0-9]*\\).*/\\1/'); do kill $p; done`,
    ],
    { timeout: 30_000 },
  );

beforeAll(async () => {
  if (why) return;
  ensureImage();
  await plugin.start();
  removeStaleTestObjects();
  netId = docker("network", "create", "-d", "vale", "--internal", "--subnet", "198.18.140.0/24", NET).stdout.trim();
  net2Id = docker("network", "create", "-d", "vale", "--internal", "--subnet", "198.18.141.0/24", NET2).stdout.trim();
  for (const [c, n] of [
    [A, NET],
    [B, NET],
    [K, NET],
    [O, NET2],
  ])
    expect(startCt(c, n).status).toBe(0);
});

afterAll(async () => {
  if (why) return;
  docker("rm", "-f", A, B, K, O);
  docker("network", "rm", NET, NET2);
  await plugin.dispose();
  rmSync(run, { recursive: true, force: true });
});

describe.skipIf(!!why)("zero-copy ports from inside containers (net:)", () => {
  test("pktgen tx in one container, rx in another, through the switch: every packet arrives", async () => {
    const rx = spawn(
      "docker",
      [
        "exec",
        B,
        "sh",
        "-c",
        "cd /bunmap && exec timeout 60 bun src/app/pktgen/main.ts -i net:eth0@conf:station=02:00:00:00:00:0b,slots=4096 -f rx -n 50000",
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    rx.stdout.on("data", (d) => (out += d));
    rx.stderr.on("data", (d) => (out += d));
    await until(async () => (await shmPorts()).length === 1);
    expect(regions().length).toBe(1);
    const tx = inCt(
      A,
      "bun src/app/pktgen/main.ts -i net:eth0 -f tx -n 50000 -R 100000 -S 02:00:00:00:00:0a -D 02:00:00:00:00:0b",
    );
    expect(tx.stdout).toContain("Sent 50000 packets");
    await new Promise((r) => rx.on("exit", r));
    // the switch drops what a full ring cannot take (as VALE): a 4096-slot ring at 100 Kpps holds 41 ms
    expect(received(out)).toBe(50000);
    // both processes gone: their ports and memory too
    expect(await until(async () => (await shmPorts()).length === 0 && regions().length === 0)).toBe(true);
  });

  test("a pipe between two containers (net:eth0{3 / }3): lossless, exact counts", async () => {
    const rx = spawn(
      "docker",
      [
        "exec",
        B,
        "sh",
        "-c",
        "cd /bunmap && exec timeout 60 bun src/app/pktgen/main.ts -i 'net:eth0}3' -f rx -n 2000000",
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    rx.stdout.on("data", (d) => (out += d));
    rx.stderr.on("data", (d) => (out += d));
    await until(() => regions().length === 1);
    const tx = inCt(A, "bun src/app/pktgen/main.ts -i 'net:eth0{3' -f tx -n 2000000");
    expect(tx.stdout).toContain("Sent 2000000 packets");
    await new Promise((r) => rx.on("exit", r));
    expect(received(out)).toBe(2000000);
    expect(await until(() => regions().length === 0)).toBe(true);
  });

  test("an NF on a net: port answers ARP and ping from a kernel container; the port goes when the container leaves", async () => {
    const nf = responder(A);
    let log = "";
    nf.stdout.on("data", (d) => (log += d));
    nf.stderr.on("data", (d) => (log += d));
    try {
      expect(await until(async () => (await shmPorts()).length === 1)).toBe(true);
      expect(pings(K)).toBe(3);
      expect(regions().length).toBe(1);
      // a container that joins while the NF runs reaches it too (its first ARP flooded to the port)
      const late = spawnSync(
        "docker",
        ["run", "--rm", "--label", "bunmap-test", "--network", NET, IMAGE, "ping", "-c", "2", "-W", "2", NF_IP],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect(late.stdout).toContain("2 packets received");
      // the container leaves the network: its port goes (memory and all), the NF hears nothing more
      expect(docker("network", "disconnect", NET, A).status).toBe(0);
      expect(await until(async () => (await shmPorts()).length === 0 && regions().length === 0)).toBe(true);
      expect(pings(K, 1)).toBe(0);
    } finally {
      stopResponder(A);
      nf.kill("SIGKILL");
      docker("network", "connect", NET, A);
    }
  });

  test("a plugin crash: the restarted plugin brings the port back and the NF answers again", async () => {
    const nf = responder(A, `net:${netId.slice(0, 12)}`); // by the network's ID (A's interface was renamed by the reconnect)
    let log = "";
    nf.stdout.on("data", (d) => (log += d));
    nf.stderr.on("data", (d) => (log += d));
    try {
      expect((await until(async () => (await shmPorts()).length === 1)) || log).toBe(true);
      expect(pings(K)).toBe(3);
      await plugin.stop("SIGKILL");
      const out = await plugin.start();
      expect(out).toContain("1 container ports restored");
      expect(await until(async () => (await shmPorts()).length === 1)).toBe(true);
      expect(pings(K)).toBe(3);
    } finally {
      stopResponder(A);
      nf.kill("SIGKILL");
    }
    // its process gone (no connection since the restart: the plugin watches its pid)
    expect(await until(async () => (await shmPorts()).length === 0 && regions().length === 0)).toBe(true);
  });

  test("refused, one sentence each: a host process, another network's container, a name that is no network", () => {
    process.env.BUNMAP_PORTS_SOCK = SOCK;
    try {
      expect(() => openPort(`net:${netId.slice(0, 12)}`)).toThrow(/no container attached to a vale network/);
    } finally {
      delete process.env.BUNMAP_PORTS_SOCK;
    }
    const other = inCt(O, `bun src/app/pktgen/main.ts -i net:${netId.slice(0, 12)} -f rx -n 1`);
    expect(other.status).not.toBe(0);
    expect(other.stderr).toContain(`this container is not attached to network ${netId.slice(0, 12)}`);
    expect(other.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const nowhere = inCt(O, "bun src/app/pktgen/main.ts -i net:ffffffffffff -f rx -n 1");
    expect(nowhere.stderr).toContain("ffffffffffff is neither an interface of this container nor a vale network's ID");
    // its own network by ID works for O, and a pipe of the same id as on NET is another region
    const own = inCt(O, `timeout 3 bun src/app/pktgen/main.ts -i 'net:${net2Id.slice(0, 12)}{3' -f tx -n 1`);
    expect(own.stdout).toContain("Sent 1 packets");
    expect(regions().length).toBe(0);
    const noMount = spawnSync(
      "docker",
      [
        "run",
        "--rm",
        "--network",
        NET,
        "-v",
        `${repo}:/bunmap`,
        IMAGE,
        "sh",
        "-c",
        "cd /bunmap && bun src/app/pktgen/main.ts -i net:eth0 -f rx -n 1",
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(noMount.stderr).toContain("-v /run/bunmap:/run/bunmap");
  });

  test("one container holds at most 64 ports; the 65th is refused saying so, and all go with the process", async () => {
    const r = inCt(
      B,
      `bun -e 'import { openPort } from "/bunmap/src/index.ts"; const ps = []; try { for (let i = 0; i < 70; i++) ps.push(openPort("net:eth0@conf:slots=64")); } catch (e) { console.log(ps.length, e.message); }'`,
      120_000,
    );
    expect(r.stdout).toContain("64 net:eth0@conf:slots=64: this container holds 64 ports on network");
    expect(await until(async () => (await shmPorts()).length === 0 && regions().length === 0)).toBe(true);
  });

  test("a second plugin on the same ports socket is refused before it serves, naming the fix", async () => {
    const second = new PluginProc({ BUNMAP_PORTS_SOCK: SOCK, BUNMAP_PLUGIN_SOCK: `${run}/second.sock` });
    try {
      const err = await second.start().then(
        () => "it started",
        (e) => String(e),
      );
      await Bun.sleep(300); // the rest of its stderr
      expect(err + second.stderr).toContain(`another process serves ${SOCK}: stop it, or set BUNMAP_PORTS_SOCK`);
      expect(err + second.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await second.dispose();
    }
    // the first still answers
    expect(inCt(O, `bun src/app/pktgen/main.ts -i net:${netId.slice(0, 12)} -f rx -n 1`).stderr).toContain(
      "not attached to network",
    );
  });

  test("a plugin that cannot see Docker's namespace files refuses ports saying so (the driver in a container without them)", async () => {
    // the same state, served by a plugin whose mount namespace hides /var/run/docker/netns
    await plugin.stop();
    const blind = new PluginProc({ BUNMAP_PORTS_SOCK: SOCK, BUNMAP_PLUGIN_DB: plugin.db }, [
      "unshare",
      "-m",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount -t tmpfs none /var/run/docker/netns && exec "$@"',
      "sh",
    ]);
    try {
      await blind.start();
      const r = inCt(B, "bun src/app/pktgen/main.ts -i net:eth0 -f rx -n 1");
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("the plugin cannot see Docker's namespace files");
    } finally {
      await blind.dispose(); // its own (unused) state directory too
      await plugin.start();
    }
  });

  test("bad requests on the socket (wrong types in every field, not JSON, too long): refused naming the field, nothing made", () => {
    const ask = (raw: Uint8Array) => {
      const fd = unixSocket.connectSeqpacket(SOCK, 5000);
      try {
        unixSocket.sendWithFds(fd, raw);
        const buf = new Uint8Array(8192);
        const got = unixSocket.recvWithFds(fd, buf);
        expect(got.fds).toEqual([]);
        return JSON.parse(new TextDecoder().decode(buf.subarray(0, got.len))) as { ok: boolean; error: string };
      } finally {
        unixSocket.closeFd(fd);
      }
    };
    const j = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const cases: [Uint8Array, RegExp][] = [
      [new TextEncoder().encode("hello"), /not JSON/],
      [j({}), /\/v/],
      [j({ v: 2, network: "x" }), /\/v/],
      [j({ v: 1, network: 5 }), /\/network/],
      [j({ v: 1, network: "a/b" }), /\/network/],
      [j({ v: 1, network: "x", mac: "zz" }), /\/mac/],
      [j({ v: 1, network: "x", pipe: { id: "1", role: "master" } }), /\/pipe\/id/],
      [j({ v: 1, network: "x", pipe: { id: 1, role: "boss" } }), /\/pipe\/role/],
      [j({ v: 1, network: "x", slots: 10 }), /\/slots/],
      [j({ v: 1, network: "x", station: 7 }), /\/station/],
      [j({ v: 1, network: "x", extra: true }), /extra|additional/i],
      [new Uint8Array(5000).fill(32), /longer than/],
    ];
    for (const [raw, m] of cases) {
      const r = ask(raw);
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(m);
    }
    // a well-formed request from this host process: refused (no sandbox), nothing made
    expect(ask(encodeNetMessage({ v: 1, network: netId.slice(0, 12) })).error).toMatch(/no container attached/);
    expect(regions()).toEqual([]);
  });
});
