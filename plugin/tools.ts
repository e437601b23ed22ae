// The system tools the driver runs (iproute2, iptables), found on PATH at each call: a missing one is
// one sentence naming the package, never a spawn error or a stack trace, and never taken for "the
// command failed". tc is not among them: the fast path loads its programs through libbpf.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { Refused } from "./refused.ts";

/** Each tool, the Debian package that brings it, and what the driver needs it for. */
export const TOOLS = {
  ip: { pkg: "iproute2", for: "veths, gateways and routes" },
  bridge: { pkg: "iproute2", for: "the VXLAN uplink's peers" },
  iptables: { pkg: "iptables", for: "NAT and published ports" },
  "iptables-restore": { pkg: "iptables", for: "NAT and published ports" },
  "iptables-save": { pkg: "iptables", for: "NAT and published ports" },
  nsenter: { pkg: "util-linux", for: "setting up a CNI container's interface in its namespace" },
} as const;
export type Tool = keyof typeof TOOLS;

/** A tool that is not installed (or not on PATH): the refusal says how to get it. */
export class ToolMissing extends Refused {
  constructor(readonly tool: Tool) {
    const t = TOOLS[tool];
    super(`${tool} is not installed (needed for ${t.for}): install ${t.pkg} (apt-get install ${t.pkg})`);
  }
}

export interface Ran {
  ok: boolean;
  out: string;
  err: string;
}

/** Run a tool, with `prefix` in front (tests: ["ip", "netns", "exec", NS]); throws ToolMissing. */
export function run(tool: Tool, args: string[], opts: { input?: string; prefix?: string[] } = {}): Ran {
  const argv = [...(opts.prefix ?? []), tool, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", input: opts.input, timeout: 60_000 });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") throw new ToolMissing(tool);
  if (r.error) return { ok: false, out: "", err: `${tool}: ${r.error.message}` };
  return { ok: r.status === 0, out: r.stdout ?? "", err: (r.stderr ?? "").trim() };
}

/** Is the tool on PATH (where spawn looks for it)? */
export function have(tool: Tool): boolean {
  for (const dir of (process.env.PATH ?? "").split(":").filter(Boolean)) {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Refuse, before anything is changed, a call that needs a tool that is not there. */
export function need(...tools: Tool[]): void {
  for (const t of tools) if (!have(t)) throw new ToolMissing(t);
}
