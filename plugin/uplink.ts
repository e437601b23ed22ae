// A network's VXLAN uplink: the `-o` options that make a vale network span hosts, checked and turned
// into a vxlan: port name (src/port/vxlan.ts), and the MTU the underlay leaves for the containers.
//   -o vni=N            the segment (1..16777215); or derived from -o slice_id (sliceVni)
//   -o peers=A,B        the other hosts' underlay addresses (frames to unknown MACs go to each)
//   -o group=G          instead of peers: an IPv4 multicast group, joined on -o vxlan_dev=IF
//   -o vxlan_local=L    the source address (default: the kernel's choice per peer)
//   -o vxlan_port=P     UDP port (default 4789, IANA's; Linux's vxlan default too)

import { IFNAME, ipv4, vxlan } from "../src/index.ts";
import { BACKEND, type Backend, NO_UPLINK } from "./backends.ts";
import { Refused } from "./refused.ts";
import { run } from "./tools.ts";
import { type UplinkDevice, uplinkDeviceName } from "./uplink-dev.ts";

export interface Uplink {
  vni: number;
  /** The port the network's switch opens: bunmap's vxlan: port, or the Linux vxlan device's. */
  port: string;
  /** The uplink's options whole (a vxlan: port name): two networks on one switch must agree on it. */
  key: string;
  /** The Linux vxlan device the port is opened on (datapaths with uplinkDevice), or null. */
  device: UplinkDevice | null;
  /** Where the underlay leads: the peers (this host's own address among them is skipped) or the
   * group, and the interface if given. */
  towards: string[];
  dev: string;
}

/**
 * The VNI of a slice: FNV-1a (32 bits) of the slice_id, mapped onto 1..16777215. Every host computes
 * the same number, so networks created with the same slice_id on different hosts form one segment.
 */
export function sliceVni(sliceId: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(sliceId)) h = Math.imul(h ^ b, 0x01000193);
  return ((h >>> 0) % vxlan.VNI_MAX) + 1;
}

const addr4 = (v: string, key: string) => {
  if (!ipv4.isIPv4(v)) throw new Refused(`--opt ${key}=${v}: not an IPv4 address`);
  return v;
};
const multicast = (a: string) => Number(a.split(".")[0]) >>> 4 === 0xe;

/** The uplink the options ask for, or null (a network of this host only); `mtu`, the network's, once known. */
export function checkUplink(generic: Record<string, string>, backend: Backend, mtu = 0): Uplink | null {
  const { vni: rawVni, peers, group, vxlan_dev: dev = "", vxlan_local: local, vxlan_port: rawPort } = generic;
  const wanted = rawVni !== undefined || peers !== undefined || group !== undefined;
  if (!wanted) {
    for (const k of ["vxlan_dev", "vxlan_local", "vxlan_port"])
      if (generic[k] !== undefined)
        throw new Refused(`--opt ${k} belongs to an uplink: add -o peers=... or -o group=...`);
    return null;
  }
  if (peers === undefined && group === undefined)
    throw new Refused("--opt vni: an uplink needs the other hosts: -o peers=ADDR,ADDR or -o group=MULTICAST");
  if (peers !== undefined && group !== undefined) throw new Refused("--opt peers and group exclude each other");
  const uplinkConf = BACKEND[backend].uplinkConf;
  if (!uplinkConf) throw new Refused(NO_UPLINK);
  let vni: number;
  if (rawVni !== undefined) {
    const n = vxlan.parseVni(rawVni);
    if (!n) throw new Refused(`--opt vni=${rawVni}: expected a decimal integer 1..${vxlan.VNI_MAX}`);
    vni = n;
  } else if (generic.slice_id !== undefined) vni = sliceVni(generic.slice_id);
  else
    throw new Refused("--opt peers/group: give the segment with -o vni=N (or -o slice_id=X, the same on every host)");
  const conf: string[] = [];
  let towards: string[];
  if (peers !== undefined) {
    const list = peers.split(",").map((p) => addr4(p.trim(), "peers"));
    if (!list.length || list.some(multicast))
      throw new Refused(
        `--opt peers=${peers}: unicast addresses of the other hosts (a multicast one goes in -o group=)`,
      );
    if (new Set(list).size !== list.length) throw new Refused(`--opt peers=${peers}: an address appears twice`);
    conf.push(`remote=${list.join("+")}`);
    towards = list;
  } else {
    towards = [addr4(group as string, "group")];
    if (!multicast(towards[0])) throw new Refused(`--opt group=${group}: not a multicast address (224.0.0.0/4)`);
    if (!dev) throw new Refused("--opt group needs -o vxlan_dev=IFACE, the interface that joins it");
    conf.push(`group=${towards[0]}`);
  }
  if (dev) {
    if (!IFNAME.test(dev)) throw new Refused(`--opt vxlan_dev=${dev}: not an interface name`);
    conf.push(`dev=${dev}`);
  }
  if (local !== undefined) conf.push(`local=${addr4(local, "vxlan_local")}`);
  if (rawPort !== undefined) {
    if (!/^[0-9]{1,5}$/.test(rawPort) || Number(rawPort) < 1 || Number(rawPort) > 65535)
      throw new Refused(`--opt vxlan_port=${rawPort}: expected a UDP port 1..65535`);
    conf.push(`dstport=${Number(rawPort)}`);
  }
  const key = `vxlan:${vni}@conf:${conf.join(",")}`;
  conf.push(uplinkConf);
  if (mtu) conf.push(`mtu=${mtu}`);
  const port = `vxlan:${vni}@conf:${conf.join(",")}`;
  if (!BACKEND[backend].uplinkDevice) return { vni, port, key, towards, dev, device: null };
  const name = uplinkDeviceName(vni);
  const device: UplinkDevice = {
    name,
    vni,
    dstport: rawPort === undefined ? vxlan.VXLAN_PORT : Number(rawPort),
    remotes: peers === undefined ? [] : towards,
    group: group ?? "",
    dev,
    local: local ?? "",
    mtu,
  };
  return { vni, port: BACKEND[backend].port?.(name) ?? port, key, towards, dev, device };
}

/**
 * The MTU the uplink's frames meet on their way (vxlan_dev's, or the smallest over the routes to
 * every peer that is not this host's own address), looked up where the plugin runs, which is where
 * the uplink's socket lives (its network namespace); or the refusal saying why it is unknown.
 */
export function underlayMtu(u: Uplink): { dev: string; mtu: number } {
  const linkMtu = (dev: string, what: string) => {
    const r = run("ip", ["-j", "link", "show", "dev", dev]);
    const mtu = r.ok ? (JSON.parse(r.out) as { mtu?: number }[])[0]?.mtu : undefined;
    if (!mtu) throw new Refused(`${what}: no such interface here`);
    return mtu;
  };
  if (u.dev) return { dev: u.dev, mtu: linkMtu(u.dev, `--opt vxlan_dev=${u.dev}`) };
  let best: { dev: string; mtu: number } | null = null;
  for (const to of u.towards) {
    const r = run("ip", ["-j", "route", "get", to]);
    if (!r.ok) throw new Refused(`no route to ${to} (the uplink's peer): ${r.err}`);
    const [route] = JSON.parse(r.out) as { type?: string; dev?: string; metrics?: { mtu?: number }[] }[];
    if (route?.type === "local") continue; // this host's own address: the uplink skips it too
    if (!route?.dev) throw new Refused(`no route to ${to} (the uplink's peer)`);
    const routeMtu = route.metrics?.find((m) => m.mtu)?.mtu ?? 0;
    const dev = linkMtu(route.dev, `the route to ${to} leaves by ${route.dev}, which`);
    const mtu = routeMtu ? Math.min(routeMtu, dev) : dev;
    if (!best || mtu < best.mtu) best = { dev: route.dev, mtu };
  }
  if (!best)
    throw new Refused(
      `--opt peers=${u.towards.join(",")}: every peer is this host's own address; name the other hosts`,
    );
  return best;
}

/** The largest inner MTU an underlay MTU carries: outer IPv4 + UDP + VXLAN (36 bytes) and the inner
 * Ethernet header (14) ride inside the underlay's packet: VXLAN_OVERHEAD, 50 bytes, as Linux's
 * vxlan reckons (the outer Ethernet header is not part of the underlay's MTU, the inner one is). */
export function innerMtu(underlay: number): number {
  return underlay - vxlan.VXLAN_OVERHEAD;
}

/** The smallest underlay MTU that carries a network of the smallest MTU (68, IPv4's minimum). */
export const MIN_UNDERLAY_MTU = 68 + vxlan.VXLAN_OVERHEAD;
