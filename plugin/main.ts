// bun run plugin: the "vale" Docker network driver on /run/docker/plugins/vale.sock, datapath in the
// same process (switch Workers). State in BUNMAP_PLUGIN_DB (default /var/lib/bunmap/vale.db). One
// plugin per state directory and per socket; files and socket private to root whatever the umask.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type ListenAddr, netSockPath, parseListenAddr } from "../src/index.ts";
import { makeApp, makeManagementApp } from "./app.ts";
import { type Backend, backendNamed } from "./backends.ts";
import { Driver } from "./driver.ts";
import { claimSocket, lockStateDir, releaseSocket, secureSocket } from "./instance.ts";
import { State } from "./state.ts";

const sock = process.env.BUNMAP_PLUGIN_SOCK ?? "/run/docker/plugins/vale.sock";
// containers' ports socket: /run/bunmap/ports.sock, or beside a plugin socket given elsewhere (so two
// plugins of a test never share one)
const portsSock =
  process.env.BUNMAP_PORTS_SOCK ??
  (process.env.BUNMAP_PLUGIN_SOCK ? `${process.env.BUNMAP_PLUGIN_SOCK}.ports` : netSockPath());
const dbPath = process.env.BUNMAP_PLUGIN_DB ?? "/var/lib/bunmap/vale.db";
const group = process.env.BUNMAP_PLUGIN_GROUP || undefined;
// global: Docker's swarm managers allocate the networks' addresses across nodes (managed plugin only)
const scope = process.env.BUNMAP_PLUGIN_SCOPE ?? "local";
const say = (msg: string) => process.stderr.write(`plugin: ${msg}\n`);
const fail = (msg: string): never => {
  say(msg);
  process.exit(1);
};
let serving = false;
// One handler for whatever nothing else caught: one line, never a trace. Before the plugin serves,
// it stops (exit 1, nothing touched that it does not clean up); once it serves, the switches carry
// every network's traffic, so it says what failed and goes on (each operation either completed or
// was undone before the error could escape).
const uncaught = (e: unknown) => {
  const msg = `internal error: ${(e as Error)?.message ?? String(e)}`;
  if (!serving) fail(`${msg} (nothing was changed; run it again, and report it if it repeats)`);
  say(`${msg} (the plugin goes on serving; report it if it repeats)`);
};
process.on("uncaughtException", uncaught);
process.on("unhandledRejection", uncaught);

let backend: Backend | undefined;
try {
  const b = process.env.BUNMAP_PLUGIN_BACKEND;
  backend = b ? backendNamed(b, "BUNMAP_PLUGIN_BACKEND") : undefined;
} catch (e) {
  fail((e as Error).message);
}
if (scope !== "local" && scope !== "global") fail(`BUNMAP_PLUGIN_SCOPE=${scope}: use local or global`);
// metrics and the web view on TCP: only when asked, loopback unless asked for more
let http: ListenAddr | null = null;
try {
  const h = process.env.BUNMAP_PLUGIN_HTTP;
  if (h)
    http = parseListenAddr(
      h,
      "BUNMAP_PLUGIN_HTTP",
      process.env.BUNMAP_PLUGIN_HTTP_PUBLIC === "1",
      "BUNMAP_PLUGIN_HTTP_PUBLIC=1",
    );
} catch (e) {
  fail((e as Error).message);
}

// a socket someone else serves is refused before anything is made (no state directory, no database)
try {
  await claimSocket(sock);
} catch (e) {
  fail((e as Error).message);
}
// everything this process creates (state directory, database, WAL, socket) is the owner's only
process.umask(0o077);
let state: State;
let lock: { release(): void };
try {
  mkdirSync(dirname(dbPath), { recursive: true, mode: 0o700 });
  lock = lockStateDir(dirname(dbPath));
  state = new State(dbPath);
} catch (e) {
  fail(`${dbPath}: ${(e as Error).message}`);
}
const driver = new Driver(state!, {
  defaultBackend: backend,
  scope: scope as "local" | "global",
  log: say,
});
const restored = await driver.restore();
mkdirSync(dirname(sock), { recursive: true });
const app = makeApp(driver).listen({ unix: sock });
let sockIno = 0;
try {
  sockIno = secureSocket(sock, group);
} catch (e) {
  await app.stop();
  fail((e as Error).message);
}
// containers' zero-copy ports (net:): the ports socket, in the one directory a container mounts
try {
  await driver.cnf.start(portsSock);
} catch (e) {
  await app.stop();
  await driver.shutdown();
  fail((e as Error).message);
}
let web: { stop(): Promise<unknown> } | null = null;
let webUrl = "";
if (http) {
  try {
    const w = makeManagementApp(driver).listen({ hostname: http.hostname, port: http.port });
    web = w;
    webUrl = `; metrics and web view on http://${http.hostname.includes(":") ? `[${http.hostname}]` : http.hostname}:${w.server?.port}/`;
  } catch (e) {
    await app.stop();
    await driver.cnf.stop();
    await driver.shutdown();
    fail(
      `BUNMAP_PLUGIN_HTTP=${process.env.BUNMAP_PLUGIN_HTTP}: cannot listen there (${(e as Error).message}); choose another port`,
    );
  }
}
serving = true;
process.stdout.write(
  `vale plugin listening on ${sock} (datapath ${driver.defaultBackend}; restored ${restored.networks} networks, ${restored.endpoints} endpoints, removed ${restored.orphansRemoved} orphan veths; ports socket ${driver.cnf.path}, ${restored.cnfPorts ?? 0} container ports restored${restored.problems.length ? `; ${restored.problems.length} problem(s) on stderr` : ""}${webUrl})\n`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await web?.stop();
  await app.stop();
  await driver.shutdown();
  state.close();
  releaseSocket(sock, sockIno);
  lock.release();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
