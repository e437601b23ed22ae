// veth pairs for endpoints, through iproute2. Names come from the endpoint ID, so they never collide
// and a restarted driver finds its own; anything named like ours but unknown is an orphan.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { ifaceIndex, setTxChecksum } from "../src/index.ts";
import { run } from "./tools.ts";

export const HOST_PREFIX = "vh";
export const CONT_PREFIX = "vc";

/** The 12 hex digits that name an object's interfaces (IFNAMSIZ 16: a 2-letter prefix + 12): the
 * ID's own first 12 when they are hex (Docker's IDs: `ip link` matches `docker network ls`), else,
 * or when those are taken (attempt > 0), a hash of the ID and the attempt. */
export function ifSuffix(id: string, attempt = 0): string {
  if (attempt === 0 && /^[0-9a-f]{12}/.test(id)) return id.slice(0, 12);
  return createHash("sha256")
    .update(attempt ? `${id}:${attempt}` : id)
    .digest("hex")
    .slice(0, 12);
}

/** Interface names for an endpoint: host end and container end. */
export function vethNames(endpointId: string, attempt = 0): { host: string; cont: string } {
  const h = ifSuffix(endpointId, attempt);
  return { host: HOST_PREFIX + h, cont: CONT_PREFIX + h };
}

/**
 * The MAC of an endpoint: from its IPv4 address as Docker's bridge does (02:42 + the address), so a
 * container that comes back on the same address keeps its MAC and the neighbours' caches stay right;
 * without one, a locally administered MAC derived from the endpoint ID (stable across restarts).
 */
export function macFor(endpointId: string, ipv4 = ""): string {
  const a = /^(\d+)\.(\d+)\.(\d+)\.(\d+)(\/\d+)?$/.exec(ipv4);
  if (a) return ["02", "42", ...a.slice(1, 5).map((x) => Number(x).toString(16).padStart(2, "0"))].join(":");
  const d = createHash("sha256").update(`bunmap-mac:${endpointId}`).digest();
  d[0] = (d[0] & 0xfc) | 0x02;
  return Array.from(d.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * The ip arguments that keep an interface off IPv6 before it goes up: no link-local address, so no
 * router solicitation or DAD from it (IFLA_INET6_ADDR_GEN_MODE over netlink; unlike the
 * disable_ipv6 sysctl it works where /proc/sys is read-only, as in a container). Nothing on a kernel
 * without IPv6.
 */
export function quietIpv6(ifname: string): string[][] {
  return existsSync("/proc/sys/net/ipv6") ? [["link", "set", "dev", ifname, "addrgenmode", "none"]] : [];
}

/** iproute2 (throws ToolMissing when it is not installed). */
export function ip(args: string[]): { ok: boolean; out: string; err: string } {
  return run("ip", args);
}

/**
 * Several ip commands in one process (`ip -batch -`: a spawn costs milliseconds, and a container's
 * veth takes several steps). It stops at the first that fails: `failed` is its index, or -1.
 * `prefix` runs it elsewhere (nsenter --net=PATH). Arguments hold no spaces (names, addresses, marks).
 */
export function ipBatch(lines: string[][], prefix?: string[]): { failed: number; err: string } {
  for (const l of lines)
    if (l.some((a) => /[\s"'\\]/.test(a)))
      throw new Error(`ip -batch: an argument with a space or quote in ${l.join(" ")}`);
  const r = run("ip", ["-batch", "-"], { input: `${lines.map((l) => l.join(" ")).join("\n")}\n`, prefix });
  if (r.ok) return { failed: -1, err: "" };
  const at = /Command failed -:(\d+)/.exec(r.err);
  return {
    failed: at ? Number(at[1]) - 1 : 0,
    err: r.err.replace(/\n?Command failed -:\d+\s*$/, "").trim(),
  };
}

/** Is there an interface of this name here (in the calling thread's network namespace)? */
export function linkExists(name: string): boolean {
  return ifaceIndex(name) > 0;
}

export interface VethOptions {
  /** Bound GSO/GRO frames on both ends (the switch's buffers hold one whole). */
  gsoMaxSize?: number;
  /** Checksum offload off on the container end: a datapath that forwards frames as they are, without
   * their checksum state, needs real checksums in them. */
  txChecksumOff?: boolean;
}

/**
 * Create the pair: the container end gets the MAC and MTU; the host end goes up. One queue each way:
 * with one per CPU, a sender that changes CPU changes queue, and the peer drains both at once.
 * `into`: a network namespace (a path) the container end is made in (CNI), not here: made there at
 * once, as moving a device between namespaces later takes tens of milliseconds.
 */
export function createVeth(
  host: string,
  cont: string,
  mac: string,
  mtu: number,
  opts: VethOptions = {},
  mark?: Mark,
  into?: string,
): void {
  const gso = [
    "numtxqueues",
    "1",
    "numrxqueues",
    "1",
    ...(opts.gsoMaxSize ? ["gso_max_size", String(opts.gsoMaxSize), "gro_max_size", String(opts.gsoMaxSize)] : []),
  ];
  // checksum offload is switched here, by ioctl: that container end is made here and moved after
  const there = into && !opts.txChecksumOff ? ["netns", into, "address", mac] : [];
  const steps: string[][] = [
    [
      "link",
      "add",
      host,
      "mtu",
      String(mtu),
      ...gso,
      "type",
      "veth",
      "peer",
      "name",
      cont,
      ...there,
      "mtu",
      String(mtu),
      ...gso,
    ],
    ...(there.length ? [] : [["link", "set", "dev", cont, "address", mac]]),
    ...(mark ? [["link", "set", "dev", host, "alias", markText(mark)]] : []),
    ...quietIpv6(host), // the switch's end stays silent
    ["link", "set", "dev", host, "up"],
  ];
  const r = ipBatch(steps);
  if (r.failed >= 0) {
    if (r.failed > 0) ip(["link", "del", host]); // nothing half-made stays behind
    throw new Error(`ip ${steps[r.failed].join(" ")}: ${r.err}`);
  }
  if (opts.txChecksumOff) {
    // through SIOCETHTOOL (checked after): a datapath without checksum state needs real checksums
    try {
      setTxChecksum(cont, false);
    } catch (e) {
      ip(["link", "del", host]);
      throw new Error(`turning tx checksum offload off on ${cont}: ${(e as Error).message}`);
    }
  }
  if (into && !there.length) {
    const mv = ip(["link", "set", "dev", cont, "netns", into]);
    if (!mv.ok) {
      ip(["link", "del", host]);
      throw new Error(`ip link set dev ${cont} netns ${into}: ${mv.err}`);
    }
  }
}

export function deleteVeth(host: string): void {
  if (linkExists(host)) ip(["link", "del", host]);
}

/** Delete an interface only if it carries this mark (a name alone proves nothing). */
export function deleteMarked(name: string, mark: Mark): void {
  const m = markOf(name);
  if (m && markText(m) === markText(mark)) ip(["link", "del", name]);
}

/**
 * What marks an interface as made by a plugin: its alias (IFLA_IFALIAS) "bunmap:INSTANCE:KIND:ID", on
 * the end that stays on the host. INSTANCE is the state's identity (State.instance), KIND "ep" for an
 * endpoint's host end, "gw" for a gateway's switch end, "vx" for an uplink's vxlan device, ID the
 * full endpoint or network ID (a VNI for "vx"). The
 * plugin deletes only interfaces whose mark names its own instance and something its state does
 * not hold; a name alone proves nothing.
 */
export interface Mark {
  instance: string;
  kind: "ep" | "gw" | "vx";
  id: string;
}
export const markText = (m: Mark) => `bunmap:${m.instance}:${m.kind}:${m.id}`;
export function parseMark(alias: string | undefined): Mark | null {
  const m = /^bunmap:([0-9a-f]{12}):(ep|gw|vx):([0-9A-Za-z_.-]{1,128})$/.exec(alias ?? "");
  return m ? { instance: m[1], kind: m[2] as Mark["kind"], id: m[3] } : null;
}

/** Interfaces of this network namespace that carry a plugin's mark (of one instance, or any). */
export function listMarked(instance?: string): (Mark & { name: string })[] {
  const r = ip(["-j", "link", "show"]);
  if (!r.ok) throw new Error(`ip -j link show: ${r.err}`);
  const links = JSON.parse(r.out || "[]") as { ifname: string; ifalias?: string }[];
  return links.flatMap((l) => {
    const m = parseMark(l.ifalias);
    return m && (!instance || m.instance === instance) ? [{ ...m, name: l.ifname }] : [];
  });
}

/** The mark an interface carries, or null (no such interface, or not marked). */
export function markOf(name: string): Mark | null {
  if (!linkExists(name)) return null;
  const r = ip(["-j", "link", "show", "dev", name]);
  if (!r.ok) return null;
  return parseMark((JSON.parse(r.out || "[]") as { ifalias?: string }[])[0]?.ifalias);
}

/** Names of every marked interface here (any instance): what tests check is left behind. */
export function listOurs(): string[] {
  return listMarked().map((m) => m.name);
}
