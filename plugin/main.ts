// bun run plugin: the "vale" Docker network driver on /run/docker/plugins/vale.sock, datapath in the
// same process (switch Workers). State in BUNMAP_PLUGIN_DB (default /var/lib/bunmap/vale.db).
import { existsSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { State } from "./state.ts";
import { Driver } from "./driver.ts";
import { makeApp } from "./app.ts";
import type { Backend } from "./datapath.ts";

const sock = process.env.BUNMAP_PLUGIN_SOCK ?? "/run/docker/plugins/vale.sock";
const dbPath = process.env.BUNMAP_PLUGIN_DB ?? "/var/lib/bunmap/vale.db";
const backend = process.env.BUNMAP_PLUGIN_BACKEND as Backend | undefined;
if (backend && !["packet", "xdp", "vale"].includes(backend)) {
  process.stderr.write(`plugin: BUNMAP_PLUGIN_BACKEND=${backend}: use packet, xdp or vale\n`);
  process.exit(1);
}

let state: State;
try {
  state = new State(dbPath);
} catch (e) {
  process.stderr.write(`plugin: cannot open ${dbPath}: ${(e as Error).message}\n`);
  process.exit(1);
}
const driver = new Driver(state, { defaultBackend: backend, log: (m) => process.stderr.write(`plugin: ${m}\n`) });
const restored = await driver.restore();
mkdirSync(dirname(sock), { recursive: true });
if (existsSync(sock)) unlinkSync(sock); // a stale socket from a previous run makes listen fail
const app = makeApp(driver).listen({ unix: sock });
process.stdout.write(`vale plugin listening on ${sock} (datapath ${driver.defaultBackend}; restored ${restored.networks} networks, ${restored.endpoints} endpoints, removed ${restored.orphansRemoved} orphan veths)\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await app.stop();
  await driver.shutdown();
  state.close();
  if (existsSync(sock)) unlinkSync(sock);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
