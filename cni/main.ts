// The bunmap CNI plugin: the executable a runtime (containerd, CRI-O, podman) runs from /opt/cni/bin
// for each container, with CNI_* variables and a network config on stdin. It checks what it was
// given, runs the IPAM plugin the config names, and asks the long-lived datapath process (the one
// serving Docker: `bun run plugin`, or the DaemonSet's pod) over its socket to do the rest. It prints
// a result, or a CNI error object (exit 1). One file: `bun run cni:build` (bun build --compile).
import { existsSync, openSync } from "node:fs";
import { type Invocation, parseInvocation } from "./invocation.ts";
import { delegate, versions } from "./ipam.ts";
import { CNI_ROUTE, CniAnswerSchema, type CniCall } from "./proto.ts";
import { CniError, CODE, firstError, LATEST, type Result, SUPPORTED_VERSIONS, versionAtLeast } from "./spec.ts";

/** Where the datapath process serves when the config does not say. */
export const DEFAULT_SOCKET = "/run/docker/plugins/vale.sock";
/** How long an ADD may take in the datapath (a first ADD makes the network: switch, gateway, NAT). */
const TIMEOUT_MS = 120_000;

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

/** Ask the datapath process; a socket nobody serves is "try again later", naming what to start. */
async function ask(socket: string, call: CniCall): Promise<Result> {
  const a = await answer(socket, call);
  if (!("result" in a))
    throw new CniError(CODE.io, `the datapath process on ${socket} asked for an address for ${call.command}`);
  return a.result;
}

async function answer(socket: string, call: CniCall): Promise<CniAnswer> {
  let res: Response;
  try {
    res = await fetch(`http://bunmap${CNI_ROUTE}`, {
      unix: socket,
      method: "POST",
      body: JSON.stringify(call),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    const code = (e as { code?: string }).code ?? (e as Error).name;
    const gone = code === "ENOENT" || code === "ECONNREFUSED" || code === "FailedToOpenSocket";
    throw new CniError(
      // STATUS says "not available" (spec 1.1); the others, "try again later"
      call.command === "STATUS" ? CODE.notAvailable : CODE.tryAgainLater,
      gone
        ? `the bunmap datapath process does not answer on ${socket}: start it (bun run plugin, or the bunmap DaemonSet) and try again`
        : `the bunmap datapath process on ${socket} did not finish ${call.command} (${code}): it repairs a half-done attachment on the next ADD or DEL; try again`,
    );
  }
  const text = await res.text();
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = null;
  }
  if (firstError(CniAnswerSchema, v)) {
    const err = (v as { Err?: string } | null)?.Err;
    throw new CniError(
      CODE.io,
      `the datapath process on ${socket} answered ${res.status}: ${err ?? text.slice(0, 200)}`,
    );
  }
  const a = v as CniAnswer;
  if ("error" in a) throw new CniError(a.error.code, a.error.msg, a.error.details ?? "");
  return a;
}

async function main(inv: Invocation, stdin: string): Promise<void> {
  const conf = inv.conf!;
  const socket = conf.socket ?? DEFAULT_SOCKET;
  // held open for the datapath to reach through /proc (it may not see the runtime's mounts)
  const fd = inv.netns && inv.command !== "DEL" ? openSync(inv.netns, "r") : -1;
  const call = (extra: Partial<CniCall> = {}): CniCall => ({
    command: inv.command as CniCall["command"],
    containerId: inv.containerId,
    netns: inv.netns,
    ...(fd >= 0 ? { netnsFd: { pid: process.pid, fd } } : {}),
    ifName: inv.ifName,
    conf,
    ...(inv.prevResult ? { prevResult: inv.prevResult } : {}),
    ...extra,
  });
  const ipam = conf.ipam?.type;
  switch (inv.command) {
    case "ADD": {
      // there whole already (ADD again): the same result, no second address
      const first = await answer(socket, call());
      if ("result" in first) return print(first.result);
      if (!("needAddress" in first))
        throw new CniError(CODE.io, `the datapath process on ${socket} answered ADD with nothing`);
      // a half-made attachment (a crash) or a broken one: its address goes back before a new one is taken
      if (first.stale)
        try {
          delegate(ipam!, inv.path, "DEL", process.env, stdin);
        } catch {}
      const got = delegate(ipam!, inv.path, "ADD", process.env, stdin)!;
      try {
        print(await ask(socket, call({ ipam: got })));
      } catch (e) {
        // the address goes back: nothing of this ADD stays
        try {
          delegate(ipam!, inv.path, "DEL", process.env, stdin);
        } catch {}
        throw e;
      }
      return;
    }
    case "DEL":
      await ask(socket, call());
      if (ipam) delegate(ipam, inv.path, "DEL", process.env, stdin);
      return;
    case "CHECK":
      // the attachment first: its answer names what broke; then the address, as IPAM sees it
      await ask(socket, call());
      if (ipam) delegate(ipam, inv.path, "CHECK", process.env, stdin);
      return;
    case "GC": {
      const a = await answer(socket, call());
      if (!ipam) return;
      const spoken = versions(ipam, inv.path);
      if (spoken.includes("1.1.0")) delegate(ipam, inv.path, "GC", process.env, stdin);
      else {
        // an IPAM plugin older than spec 1.1 knows no GC: each attachment taken away gives its
        // address back by a DEL on its behalf, in the newest version the plugin speaks
        const newest = spoken
          .filter((v) => versionAtLeast(conf.cniVersion, v))
          .sort((x, y) => (versionAtLeast(x, y) ? -1 : 1))[0];
        const { "cni.dev/valid-attachments": _, ...rest } = JSON.parse(stdin) as Record<string, unknown>;
        const del = JSON.stringify({ ...rest, cniVersion: newest ?? conf.cniVersion });
        for (const r of "removed" in a ? (a.removed ?? []) : [])
          delegate(
            ipam,
            inv.path,
            "DEL",
            { ...process.env, CNI_CONTAINERID: r.containerID, CNI_IFNAME: r.ifname, CNI_NETNS: "" },
            del,
          );
      }
      return;
    }
    case "STATUS":
      await ask(socket, call());
      return;
  }
}

/** No top-level await: the executable is compiled to bytecode (a faster start for every container). */
async function entry(): Promise<never> {
  const stdin = await Bun.stdin.text();
  let version = LATEST;
  try {
    const inv = parseInvocation(process.env, stdin, existsSync);
    version = inv.conf?.cniVersion ?? LATEST;
    if (inv.command === "VERSION") print({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS });
    else await main(inv, stdin);
    process.exit(0);
  } catch (e) {
    const err =
      e instanceof CniError ? e : new CniError(CODE.io, `internal error: ${(e as Error)?.message ?? String(e)}`);
    print(err.object(version));
    process.exit(1);
  }
}
entry();
