// Addresses come from an IPAM plugin, as CNI conventions say: the executable named by ipam.type,
// found in CNI_PATH, run with the same CNI_* variables and the same network config on stdin. Its
// result (ADD) or its error object is taken as it came, checked, and named as the IPAM plugin's.
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { CniError, CniErrorSchema, CODE, firstError, type Result, ResultSchema } from "./spec.ts";

/** The plugin's file in the first CNI_PATH directory that has it, or a refusal naming the dirs. */
export function findPlugin(type: string, path: string[]): string {
  for (const dir of path) {
    const f = join(dir, type);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {}
  }
  throw new CniError(
    CODE.invalidConfig,
    `IPAM plugin ${type} not found in CNI_PATH (${path.join(":") || "empty"}): install it there (Debian: containernetworking-plugins, in /usr/lib/cni)`,
  );
}

/** Run the IPAM plugin for a command; ADD returns its result, the others nothing. */
export function delegate(
  type: string,
  path: string[],
  command: "ADD" | "DEL" | "CHECK" | "GC" | "STATUS",
  env: Record<string, string | undefined>,
  stdin: string,
): Result | null {
  const file = findPlugin(type, path);
  const r = Bun.spawnSync([file], {
    env: { ...env, CNI_COMMAND: command } as Record<string, string>,
    stdin: Buffer.from(stdin),
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
  });
  const out = r.stdout.toString();
  const who = `IPAM plugin ${type} (${command})`;
  let v: unknown = null;
  try {
    v = out.trim() ? JSON.parse(out) : null;
  } catch {
    // leave v null: said below
  }
  if (r.exitCode !== 0) {
    if (v && !firstError(CniErrorSchema, v)) {
      const e = v as { code: number; msg: string; details?: string };
      throw new CniError(e.code, `${who}: ${e.msg}`, e.details ?? "");
    }
    const why = r.signalCode ? `killed by ${r.signalCode}` : `exit ${r.exitCode}`;
    throw new CniError(CODE.io, `${who} failed (${why}): ${(out || r.stderr.toString()).trim().slice(0, 300)}`);
  }
  if (command !== "ADD") return null;
  const bad = v === null ? "/: not JSON" : firstError(ResultSchema, v);
  if (bad) throw new CniError(CODE.decode, `${who} answered a result that is not one: ${bad}`);
  return v as Result;
}

/** The versions of the spec the plugin speaks (its answer to VERSION; none if it does not answer one). */
export function versions(type: string, path: string[]): string[] {
  const r = Bun.spawnSync([findPlugin(type, path)], {
    env: { CNI_COMMAND: "VERSION", PATH: process.env.PATH ?? "" },
    stdin: Buffer.from(JSON.stringify({ cniVersion: "1.0.0" })),
    timeout: 10_000,
  });
  try {
    return (JSON.parse(r.stdout.toString()) as { supportedVersions?: string[] }).supportedVersions ?? [];
  } catch {
    return [];
  }
}
