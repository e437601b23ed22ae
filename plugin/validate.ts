// What Docker (or anyone on the socket) may send, checked field by field beyond the TypeBox shape:
// every refusal names the field and says what was expected. Pure functions, no I/O.
import { isIPv6 } from "node:net";
import { ipv4 } from "../src/index.ts";
import { Refused } from "./refused.ts";

/** Largest request body accepted (option blobs included). */
export const MAX_BODY = 64 * 1024;

/** The `-o` keys of a VXLAN uplink (plugin/uplink.ts). */
export const UPLINK_KEYS = ["vni", "peers", "group", "vxlan_dev", "vxlan_local", "vxlan_port"] as const;
/** Docker's own -o key for a network's MTU (ours, "mtu", means the same). */
export const MTU_KEY = "com.docker.network.driver.mtu";
/** `-o` keys the driver understands (the MTU under Docker's own key or ours). */
export const OPTION_KEYS = ["backend", "switch", "slice_id", "mtu", MTU_KEY, ...UPLINK_KEYS] as const;

/** The user's `-o` map (its values strings, as the body's schema says): only known keys. */
export function checkOptions(generic: Record<string, string> | null | undefined): Record<string, string> {
  for (const k of Object.keys(generic ?? {}))
    if (!(OPTION_KEYS as readonly string[]).includes(k))
      throw new Refused(`--opt ${k}: unknown option (known: ${OPTION_KEYS.join(", ")})`);
  return { ...generic };
}

/** An MTU: decimal digits only, in range. */
export function checkMtu(raw: string, field: string, min = 68, max = 9000): number {
  if (!/^[0-9]{1,5}$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw new Refused(`--opt ${field}=${raw}: expected a decimal integer ${min}..${max}`);
  return Number(raw);
}

/** A MAC a container may have: six hex pairs, unicast, not all zero. */
export function checkMac(mac: string, field: string): string {
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac))
    throw new Refused(`${field} ${JSON.stringify(mac)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  const b = mac.split(":").map((h) => parseInt(h, 16));
  if (b[0] & 1) throw new Refused(`${field} ${mac} is a multicast address; a container needs a unicast one`);
  if (b.every((x) => x === 0)) throw new Refused(`${field} ${mac} is all zero`);
  return mac.toLowerCase();
}

type Family = 4 | 6;

function toBig(addr: string, family: Family): bigint {
  if (family === 4) return addr.split(".").reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
  // expand "::" and parse 8 groups (an embedded IPv4 tail is turned into two groups)
  let s = addr;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = toBig(v4[1], 4);
    s = `${s.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.split("::");
  const h = head ? head.split(":") : [],
    t = tail !== undefined && tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** "address/len" of the family; returns address, prefix length and the address as a number. */
export function checkCidr(v: string, family: Family, field: string): { addr: string; len: number; n: bigint } {
  const m = /^([^/]+)\/([0-9]{1,3})$/.exec(v);
  const ok = family === 4 ? ipv4.isIPv4 : isIPv6;
  const bits = family === 4 ? 32 : 128;
  if (!m || !ok(m[1]) || Number(m[2]) > bits)
    throw new Refused(`${field} ${JSON.stringify(v)} is not an IPv${family} address/prefix`);
  return { addr: m[1], len: Number(m[2]), n: toBig(m[1], family) };
}

/** A pool and, if given, its gateway ("addr/len", inside the pool). */
export function checkPool(pool: string, gateway: string | undefined, family: Family, field: string): void {
  const p = checkCidr(pool, family, `${field}.Pool`);
  if (!gateway) return;
  const g = checkCidr(gateway, family, `${field}.Gateway`);
  const bits = BigInt(family === 4 ? 32 : 128),
    shift = bits - BigInt(p.len);
  if (g.n >> shift !== p.n >> shift) throw new Refused(`${field}.Gateway ${gateway} is outside the pool ${pool}`);
}
