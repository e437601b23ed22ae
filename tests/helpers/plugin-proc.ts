// The vale plugin as a child process for tests against a real Docker engine: started with its own
// state file, stopped by PID; its management API read over the plugin socket.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

export const SOCK = "/run/docker/plugins/vale.sock";
const repo = `${import.meta.dir}/../..`;
export const sh = (cmd: string[]) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout: 180_000 });
export const docker = (...a: string[]) => sh(["docker", ...a]);

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

  constructor(private readonly env: Record<string, string> = {}) {}

  async start(): Promise<string> {
    const p = Bun.spawn([process.execPath, `${repo}/plugin/main.ts`], {
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
  const p = Bun.spawn(["docker", ...a], { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code: await p.exited, out, err };
}
