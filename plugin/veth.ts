// veth pairs for endpoints, through iproute2. Names come from the endpoint ID, so they never collide
// and a restarted driver finds its own; anything named like ours but unknown is an orphan.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";

export const HOST_PREFIX = "vh";
export const CONT_PREFIX = "vc";

/** Interface names for an endpoint (IFNAMSIZ 16: 2 + 12 hex). */
export function vethNames(endpointId: string): { host: string; cont: string } {
  const h = /^[0-9a-f]{12}/.test(endpointId) ? endpointId.slice(0, 12) : createHash("sha256").update(endpointId).digest("hex").slice(0, 12);
  return { host: HOST_PREFIX + h, cont: CONT_PREFIX + h };
}

/** A locally administered unicast MAC derived from the endpoint ID (stable across restarts). */
export function macFor(endpointId: string): string {
  const d = createHash("sha256").update(`bunmap-mac:${endpointId}`).digest();
  d[0] = (d[0] & 0xfc) | 0x02;
  return Array.from(d.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(":");
}

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.error) return { ok: false, err: `ip: ${r.error.message}` };
  return { ok: r.status === 0, err: (r.stderr || "").trim() };
}

export function linkExists(name: string): boolean {
  return ip(["link", "show", "dev", name]).ok;
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
 */
export function createVeth(host: string, cont: string, mac: string, mtu: number, opts: VethOptions = {}): void {
  const gso = ["numtxqueues", "1", "numrxqueues", "1", ...(opts.gsoMaxSize ? ["gso_max_size", String(opts.gsoMaxSize), "gro_max_size", String(opts.gsoMaxSize)] : [])];
  const steps: string[][] = [
    ["link", "add", host, "mtu", String(mtu), ...gso, "type", "veth", "peer", "name", cont, "mtu", String(mtu), ...gso],
    ["link", "set", "dev", cont, "address", mac],
    ["link", "set", "dev", host, "up"],
  ];
  for (const s of steps) {
    const r = ip(s);
    if (!r.ok) {
      if (s !== steps[0]) ip(["link", "del", host]); // nothing half-made stays behind
      throw new Error(`ip ${s.join(" ")}: ${r.err}`);
    }
  }
  if (opts.txChecksumOff) spawnSync("ethtool", ["-K", cont, "tx", "off"], { encoding: "utf8" }); // best effort: without ethtool TCP/UDP checksums may be left to offload
  spawnSync("sysctl", ["-qw", `net.ipv6.conf.${host}.disable_ipv6=1`]); // the host end stays silent
}

export function deleteVeth(host: string): void {
  if (linkExists(host)) ip(["link", "del", host]);
}

/** Our host-side veths that exist now. */
export function listOurs(): string[] {
  const r = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
  return (r.stdout || "").split("\n").map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? "").filter((n) => n.startsWith(HOST_PREFIX) && /^vh[0-9a-f]{12}$/.test(n));
}
