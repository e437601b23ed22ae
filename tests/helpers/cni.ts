// The CNI executable as a runtime runs it: built once with bun build --compile into a directory that
// also holds the reference plugins (host-local, portmap, bandwidth, loopback from
// containernetworking-plugins), and run with a clean environment, CNI_* variables and a config on
// stdin. `chain` runs a conflist's plugins in order, each given the previous result, as libcni does.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { buildCni } from "../../cni/build.ts";

/** Where Debian's containernetworking-plugins puts the reference plugins. */
export const REFERENCE_PLUGINS = "/usr/lib/cni";

/** Why CNI tests cannot run here, or null. */
export function cniUnavailable(): string | null {
  if (!existsSync(`${REFERENCE_PLUGINS}/host-local`))
    return "containernetworking-plugins is not installed (apt-get install containernetworking-plugins; .ci/run does)";
  if (spawnSync("nsenter", ["--version"]).status !== 0) return "nsenter (util-linux) is not installed";
  return null;
}

/** A directory with the compiled executable (as `bunmap`) and the reference plugins. */
export function buildCniDir(): string {
  const dir = mkdtempSync(`${tmpdir()}/bunmap-cni-bin-`);
  buildCni(`${dir}/bunmap`);
  for (const p of ["host-local", "portmap", "bandwidth", "loopback"])
    symlinkSync(`${REFERENCE_PLUGINS}/${p}`, `${dir}/${p}`);
  return dir;
}

export const removeDir = (d: string) => rmSync(d, { recursive: true, force: true });

export interface Ran {
  code: number;
  /** stdout as JSON (null if none or not JSON) */
  json: Record<string, unknown> | null;
  out: string;
  err: string;
}

/** The command line of a plugin run with exactly this environment (plus PATH, as runtimes pass it), in netns `host`. */
const argvOf = (file: string, env: Record<string, string>, host?: string) => [
  ...(host ? ["ip", "netns", "exec", host] : []),
  "env",
  "-i",
  `PATH=${process.env.PATH}`,
  ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
  file,
];
function ran(code: number, out: string, err: string): Ran {
  let json: Record<string, unknown> | null = null;
  try {
    json = out.trim() ? JSON.parse(out) : null;
  } catch {}
  return { code, json, out, err };
}

/** Run one plugin executable as a runtime does. */
export function runPlugin(file: string, env: Record<string, string>, stdin: string, host?: string): Ran {
  const argv = argvOf(file, env, host);
  const r = spawnSync(argv[0], argv.slice(1), { input: stdin, encoding: "utf8", timeout: 180_000 });
  return ran(r.status ?? -1, r.stdout, r.stderr);
}

/** The same, without blocking: for runtimes that run plugins for many containers at once. */
export async function runPluginAsync(
  file: string,
  env: Record<string, string>,
  stdin: string,
  host?: string,
): Promise<Ran> {
  const p = Bun.spawn(argvOf(file, env, host), {
    stdin: Buffer.from(stdin),
    stdout: "pipe",
    stderr: "pipe",
    timeout: 180_000,
  });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return ran(await p.exited, out, err);
}

export interface Attach {
  command: "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "VERSION";
  container?: string;
  netns?: string;
  ifName?: string;
}

/** The CNI_* environment of a command. */
export const cniEnv = (dir: string, a: Attach): Record<string, string> => ({
  CNI_COMMAND: a.command,
  ...(a.container ? { CNI_CONTAINERID: a.container } : {}),
  ...(a.netns ? { CNI_NETNS: a.netns } : {}),
  ...((a.ifName ?? (a.container ? "eth0" : "")) ? { CNI_IFNAME: a.ifName ?? "eth0" } : {}),
  CNI_PATH: dir,
});

/** A conflist's plugins run for one command, as libcni does: ADD in order, each given the result so far;
 * DEL and CHECK in reverse (CHECK and DEL with the ADD's result). Returns the last answer. */
export function chain(
  dir: string,
  conflist: { cniVersion: string; name: string; plugins: Record<string, unknown>[] },
  a: Attach,
  host: string,
  runtimeConfig: Record<string, unknown> = {},
  prevResult?: unknown,
): Ran {
  const plugins = a.command === "ADD" ? conflist.plugins : [...conflist.plugins].reverse();
  let prev = prevResult;
  let last: Ran = { code: 0, json: null, out: "", err: "" };
  for (const p of plugins) {
    const caps = Object.fromEntries(
      Object.entries(runtimeConfig).filter(([k]) => (p.capabilities as Record<string, boolean> | undefined)?.[k]),
    );
    const conf = {
      ...p,
      cniVersion: conflist.cniVersion,
      name: conflist.name,
      ...(Object.keys(caps).length ? { runtimeConfig: caps } : {}),
      ...(prev !== undefined ? { prevResult: prev } : {}),
    };
    last = runPlugin(`${dir}/${p.type}`, cniEnv(dir, a), JSON.stringify(conf), host);
    if (last.code !== 0) return last;
    if (a.command === "ADD") prev = last.json;
  }
  return last;
}
