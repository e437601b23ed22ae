// The vale plugin as a child process for tests against a real Docker engine: started with its own
// state file, stopped by PID; its management API read over the plugin socket.
import { Database } from "bun:sqlite";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { listMarked } from "../../plugin/veth.ts";

export const SOCK = "/run/docker/plugins/vale.sock";
const repo = `${import.meta.dir}/../..`;
export const sh = (cmd: string[]) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout: 180_000 });
/** The same, or a thrown error with the command and what it said on stderr; its stdout. */
export function must(cmd: string[]): string {
  const r = sh(cmd);
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
  return r.stdout;
}
/** Every container and network a test makes carries this label, so a later run can find what an
 * interrupted one left (and only that). */
export const TEST_LABEL = "bunmap-test";
function labelled(a: string[]): string[] {
  if (a[0] === "run" || a[0] === "create") return [a[0], "--label", TEST_LABEL, ...a.slice(1)];
  if (a[0] === "network" && a[1] === "create") return [a[0], a[1], "--label", TEST_LABEL, ...a.slice(2)];
  return a;
}
export const docker = (...a: string[]) => sh(["docker", ...labelled(a)]);

/**
 * Remove the containers and networks an earlier, interrupted test run left (they carry TEST_LABEL);
 * call it with the plugin up, which Docker asks to delete the networks it no longer knows.
 */
export function removeStaleTestObjects(): void {
  const ids = (what: string[]) =>
    sh(["docker", ...what, "-q", "--filter", `label=${TEST_LABEL}`])
      .stdout.split(/\s+/)
      .filter(Boolean);
  const cs = ids(["ps", "-a"]);
  if (cs.length) sh(["docker", "rm", "-f", ...cs]);
  for (const n of ids(["network", "ls"])) sh(["docker", "network", "rm", n]);
}

/** Why Docker tests cannot run here, or null. */
export function dockerUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "not root";
  if (docker("info").status !== 0)
    return "no Docker engine answers (install docker.io and start dockerd; .ci/run does)";
  if (existsSync(SOCK)) return `${SOCK} is in use by another vale plugin`;
  if (!existsSync("/bin/busybox")) return "busybox-static is not installed";
  return null;
}

export class PluginProc {
  private p: ReturnType<typeof Bun.spawn> | null = null;
  // made at the first start, so a test file whose tests are all skipped leaves no directory behind
  private dirPath: string | null = null;
  private get dir(): string {
    this.dirPath ??= mkdtempSync(`${tmpdir()}/bunmap-plugin-`);
    return this.dirPath;
  }
  get db(): string {
    return `${this.dir}/vale.db`;
  }
  /** What the plugin wrote to stderr (datapath events). */
  stderr = "";

  /** @param wrap a command the plugin runs under (e.g. unshare, for a view of the files of its own) */
  constructor(
    private readonly env: Record<string, string> = {},
    private readonly wrap: string[] = [],
  ) {}

  async start(): Promise<string> {
    const p = Bun.spawn([...this.wrap, process.execPath, `${repo}/plugin/main.ts`], {
      timeout: 600_000,
      killSignal: "SIGKILL",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, BUNMAP_PLUGIN_DB: this.db, BUNMAP_PLUGIN_BACKEND: "packet", ...this.env },
    });
    this.p = p;
    (async () => {
      for await (const c of p.stderr as ReadableStream<Uint8Array>) this.stderr += new TextDecoder().decode(c);
    })();
    const r = (p.stdout as ReadableStream<Uint8Array>).getReader();
    let out = "";
    while (!out.includes("listening")) {
      const { value, done } = await r.read();
      if (done) throw new Error(`plugin exited: ${out}${this.stderr}`);
      out += new TextDecoder().decode(value);
    }
    r.releaseLock();
    return out;
  }

  /** The plugin's identity (its state's instance): the mark on its interfaces, the suffix of its chains. */
  get instance(): string {
    const db = new Database(this.db, { readonly: true });
    try {
      return db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'instance'").get()!.value;
    } finally {
      db.close();
    }
  }

  /** The interfaces this plugin made that exist now (by their mark, not their names). */
  interfaces(): string[] {
    return listMarked(this.instance).map((m) => m.name);
  }

  get pid(): number {
    return this.p?.pid ?? -1;
  }

  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    if (!this.p) return;
    this.p.kill(signal);
    await this.p.exited;
    this.p = null;
  }

  /** Stop it and remove its state directory. */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.dirPath) rmSync(this.dirPath, { recursive: true, force: true });
    this.dirPath = null;
  }
}

export const api = async (path: string) =>
  JSON.parse(sh(["curl", "-s", "--unix-socket", SOCK, `http://x${path}`]).stdout);

/** Run docker with the arguments, asynchronously; resolves to exit code and output. */
export async function dockerAsync(...a: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(["docker", ...labelled(a)], {
    timeout: 180_000,
    killSignal: "SIGKILL",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code: await p.exited, out, err };
}
