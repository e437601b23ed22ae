// One plugin per state directory and per socket, files private whatever the umask: a second plugin on
// the same state, or on a socket something answers on, fails at once naming what is in the way and
// touches nothing of the first; a stale socket (its plugin killed) is taken over; modes are 0700 /
// 0600 (0660 with BUNMAP_PLUGIN_GROUP). Sockets in a temporary directory: Docker never sees them.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";

setDefaultTimeout(60_000);

const root = process.getuid?.() === 0;
if (!root) console.warn("SKIP plugin instance tests: not root (the plugin runs as root)");
const repo = `${import.meta.dir}/..`;
const dir = mkdtempSync(`${tmpdir()}/bunmap-inst-`);
const procs: ReturnType<typeof Bun.spawn>[] = [];
afterAll(async () => {
  for (const p of procs) {
    p.kill("SIGKILL");
    await p.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  proc: ReturnType<typeof Bun.spawn>;
  out: string;
  err: string;
  code: number | null;
}

/** Start the plugin under umask 000; resolve once it listens, or when it exits (code set). */
async function plugin(db: string, sock: string, env: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn(["sh", "-c", `umask 000; exec "$0" "$1"`, process.execPath, `${repo}/plugin/main.ts`], {
    timeout: 180_000,
    killSignal: "SIGKILL",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BUNMAP_PLUGIN_DB: db, BUNMAP_PLUGIN_SOCK: sock, BUNMAP_PLUGIN_BACKEND: "packet", ...env },
  });
  procs.push(proc);
  const run: Run = { proc, out: "", err: "", code: null };
  (async () => {
    for await (const c of proc.stderr as ReadableStream<Uint8Array>) run.err += new TextDecoder().decode(c);
  })();
  const r = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const exited = proc.exited.then((c) => {
    run.code = c;
  });
  while (!run.out.includes("listening") && run.code === null) {
    const next = await Promise.race([r.read(), exited.then(() => null)]);
    if (!next || next.done) break;
    run.out += new TextDecoder().decode(next.value);
  }
  if (!run.out.includes("listening")) {
    await exited;
    await Bun.sleep(50); // let stderr drain
  }
  return run;
}
const answers = (sock: string) =>
  fetch("http://plugin/Plugin.Activate", { method: "POST", unix: sock } as RequestInit).then(
    (r) => r.json(),
    () => null,
  );
const mode = (p: string) => statSync(p).mode & 0o777;

describe.skipIf(!root)("one plugin per state directory and socket", () => {
  const db = `${dir}/state/vale.db`,
    sock = `${dir}/vale.sock`;
  let first: Run;

  test("under umask 000 the state directory is 0700, the database files and the socket 0600", async () => {
    first = await plugin(db, sock);
    expect(first.out).toContain(`vale plugin listening on ${sock}`);
    expect(mode(`${dir}/state`)).toBe(0o700);
    for (const f of [db, `${db}-wal`, `${db}-shm`, `${dir}/state/vale.lock`])
      if (existsSync(f)) expect(mode(f)).toBe(0o600);
    expect(existsSync(db)).toBe(true);
    expect(mode(sock)).toBe(0o600);
    expect(await answers(sock)).toEqual({ Implements: ["NetworkDriver"] });
  });

  test("a second plugin on the same state directory fails at once, naming the first; the first goes on", async () => {
    const second = await plugin(db, `${dir}/other.sock`);
    expect(second.code).toBe(1);
    expect(second.err.trim()).toBe(
      `plugin: ${db}: another vale plugin (pid ${first.proc.pid}) uses the state directory ${dir}/state; stop it first (one plugin per state directory)`,
    );
    expect(existsSync(`${dir}/other.sock`)).toBe(false);
    expect(await answers(sock)).toEqual({ Implements: ["NetworkDriver"] });
  });

  test("a second plugin on the same socket (its own state) fails at once and leaves the socket alone", async () => {
    const second = await plugin(`${dir}/state2/vale.db`, sock);
    expect(second.code).toBe(1);
    expect(second.err.trim()).toBe(
      `plugin: ${sock} is served by another process (it answered Plugin.Activate): stop that plugin first, or set BUNMAP_PLUGIN_SOCK`,
    );
    expect(existsSync(sock)).toBe(true);
    expect(await answers(sock)).toEqual({ Implements: ["NetworkDriver"] });
    expect(existsSync(`${dir}/state2`)).toBe(false); // refused before it made its state directory or database
  });

  test("after a kill -9 the stale socket and the lock are taken over; BUNMAP_PLUGIN_GROUP makes the socket 0660", async () => {
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    expect(existsSync(sock)).toBe(true); // nobody removed it
    const gid = Number(/^nogroup:[^:]*:(\d+):/m.exec(await Bun.file("/etc/group").text())?.[1] ?? NaN);
    const next = await plugin(db, sock, Number.isNaN(gid) ? {} : { BUNMAP_PLUGIN_GROUP: "nogroup" });
    expect(next.out).toContain("listening");
    if (!Number.isNaN(gid)) {
      expect(mode(sock)).toBe(0o660);
      expect(statSync(sock).gid).toBe(gid);
    }
    expect(await answers(sock)).toEqual({ Implements: ["NetworkDriver"] });
    next.proc.kill("SIGTERM");
    expect(await next.proc.exited).toBe(0);
    expect(existsSync(sock)).toBe(false); // its own socket, removed on the way out
  });
});
