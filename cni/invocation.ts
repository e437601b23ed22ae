// What a runtime handed the executable: CNI_* variables and the network config on stdin, checked
// against the spec before anything is done. Pure: no I/O but the netns path's existence, given in;
// every refusal is a CniError with the spec's code and a sentence naming the variable or field.
import { Value } from "@sinclair/typebox/value";
import {
  CniError,
  CODE,
  COMMAND_SINCE,
  COMMANDS,
  type Command,
  firstError,
  type NetConf,
  NetConfSchema,
  type Result,
  ResultSchema,
  SUPPORTED_VERSIONS,
  versionAtLeast,
} from "./spec.ts";

export interface Invocation {
  command: Command;
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_PATH's directories, where delegated plugins (IPAM) are found */
  path: string[];
  args: Record<string, string>;
  /** absent for VERSION without a config */
  conf?: NetConf;
  prevResult?: Result;
}

/** The largest network config read from stdin (a conflist entry with a prevResult fits many times). */
export const MAX_CONFIG = 1 << 20;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** What Linux takes as an interface name (dev_valid_name): 1..15 bytes, not . or .., no / : or space. */
const IFNAME = /^[^/:\s]{1,15}$/;

const env = (e: Record<string, string | undefined>, k: string) => e[k] ?? "";

function needEnv(e: Record<string, string | undefined>, k: string, command: string, hint: string): string {
  const v = env(e, k);
  if (!v) throw new CniError(CODE.invalidEnvironment, `${k} is not set: ${command} needs ${hint}`);
  return v;
}

/** CNI_ARGS: "K=V;K=V" (values may be empty, keys may not). */
export function parseArgs(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of raw.split(";")) {
    if (!part) continue;
    const i = part.indexOf("=");
    if (i < 1)
      throw new CniError(CODE.invalidEnvironment, `CNI_ARGS ${JSON.stringify(raw)}: expected K=V pairs separated by ;`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

/** The config's version, or a refusal saying which ones are understood. */
function checkVersion(conf: NetConf, command: Command): void {
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(conf.cniVersion))
    throw new CniError(
      CODE.incompatibleVersion,
      `cniVersion ${JSON.stringify(conf.cniVersion)} is not supported: use one of ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  if (!versionAtLeast(conf.cniVersion, COMMAND_SINCE[command]))
    throw new CniError(
      CODE.incompatibleVersion,
      `${command} needs cniVersion ${COMMAND_SINCE[command]} or later (the config says ${conf.cniVersion})`,
    );
}

/** The cniVersion a VERSION request carries, if it is one this plugin knows. */
function versionOf(stdin: string): string | null {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v) ? v : null;
  } catch {
    return null;
  }
}

function parseConf(stdin: string): NetConf {
  if (stdin.length > MAX_CONFIG)
    throw new CniError(CODE.decode, `the network config on stdin is ${stdin.length} bytes: at most ${MAX_CONFIG}`);
  if (!stdin.trim())
    throw new CniError(CODE.decode, "the network config on stdin is empty: the runtime passes it there");
  let v: unknown;
  try {
    v = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(CODE.decode, `the network config on stdin is not JSON: ${(e as Error).message}`);
  }
  const bad = firstError(NetConfSchema, v);
  if (bad) throw new CniError(CODE.invalidConfig, `network config ${bad}`);
  return v as NetConf;
}

/**
 * Check everything a command needs. `exists` says whether a path is there (the netns); `version`
 * only: VERSION answers without a config too.
 */
export function parseInvocation(
  e: Record<string, string | undefined>,
  stdin: string,
  exists: (path: string) => boolean,
): Invocation {
  const command = env(e, "CNI_COMMAND");
  if (!command)
    throw new CniError(
      CODE.invalidEnvironment,
      `CNI_COMMAND is not set: the runtime sets it to one of ${COMMANDS.join(", ")}`,
    );
  if (!(COMMANDS as string[]).includes(command))
    throw new CniError(
      CODE.invalidEnvironment,
      `CNI_COMMAND=${command} is not a CNI command: use one of ${COMMANDS.join(", ")}`,
    );
  const cmd = command as Command;
  const inv: Invocation = { command: cmd, containerId: "", netns: "", ifName: "", path: [], args: {} };
  if (cmd === "VERSION") {
    // a runtime may send only {"cniVersion": ...}: the answer names the versions this plugin speaks
    const v = versionOf(stdin);
    if (v) inv.conf = { cniVersion: v } as NetConf;
    return inv;
  }
  const conf = parseConf(stdin);
  checkVersion(conf, cmd);
  inv.conf = conf;
  const attach = cmd === "ADD" || cmd === "DEL" || cmd === "CHECK";
  if (attach) {
    inv.containerId = needEnv(e, "CNI_CONTAINERID", cmd, "the container's ID");
    if (!ID.test(inv.containerId) || inv.containerId.length > 256)
      throw new CniError(
        CODE.invalidEnvironment,
        `CNI_CONTAINERID=${JSON.stringify(inv.containerId.slice(0, 80))}: a container ID starts with a letter or digit, then letters, digits, _ . or -`,
      );
    inv.ifName = needEnv(e, "CNI_IFNAME", cmd, "the interface name to make in the container");
    if (!IFNAME.test(inv.ifName) || inv.ifName === "." || inv.ifName === "..")
      throw new CniError(
        CODE.invalidEnvironment,
        `CNI_IFNAME=${JSON.stringify(inv.ifName.slice(0, 80))}: an interface name is 1..15 characters without / : or spaces`,
      );
    inv.netns = cmd === "DEL" ? env(e, "CNI_NETNS") : needEnv(e, "CNI_NETNS", cmd, "the container's network namespace");
    if (inv.netns && !inv.netns.startsWith("/"))
      throw new CniError(
        CODE.invalidEnvironment,
        `CNI_NETNS=${inv.netns}: expected an absolute path (/proc/PID/ns/net, /var/run/netns/NAME)`,
      );
    if (inv.netns && cmd !== "DEL" && !exists(inv.netns))
      throw new CniError(
        CODE.unknownContainer,
        `CNI_NETNS=${inv.netns} does not exist: the container's network namespace is gone`,
      );
  }
  inv.args = parseArgs(env(e, "CNI_ARGS"));
  if (attach || cmd === "GC") {
    if (!conf.ipam && cmd === "ADD")
      throw new CniError(
        CODE.invalidConfig,
        'network config /ipam: missing; addresses come from an IPAM plugin ("ipam": {"type": "host-local", "ranges": [[{"subnet": "..."}]]})',
      );
    if (conf.ipam)
      inv.path = needEnv(e, "CNI_PATH", cmd, `the directories to find the ${conf.ipam.type} IPAM plugin in`)
        .split(":")
        .filter(Boolean);
  }
  if (conf.prevResult !== undefined) {
    const bad = firstError(ResultSchema, conf.prevResult);
    if (bad)
      throw new CniError(CODE.invalidConfig, `network config /prevResult${bad.startsWith("/: ") ? bad.slice(1) : bad}`);
    inv.prevResult = Value.Clone(conf.prevResult) as Result;
  } else if (cmd === "CHECK")
    throw new CniError(CODE.invalidConfig, "network config /prevResult: missing; CHECK is given the result of ADD");
  return inv;
}
