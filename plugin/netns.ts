// A container end of a veth put into a network namespace given by its path (what CNI runtimes and
// Docker's SandboxKey name), renamed, addressed and routed there; and what is there now, for CHECK.
// Through iproute2, inside the namespace by nsenter (util-linux).
import { existsSync } from "node:fs";
import { need, run } from "./tools.ts";

export interface Inside {
  /** the interface's name in the namespace */
  name: string;
  mtu: number;
  /** "a.b.c.d/len" */
  addresses: string[];
  routes: { dst: string; gw?: string }[];
}

const inNs = (netns: string, args: string[]) => run("ip", args, { prefix: ["nsenter", `--net=${netns}`] });

/** What is there: the interface's MAC, state and IPv4 addresses in the namespace, or null. */
export function lookInside(netns: string, name: string): { mac: string; up: boolean; addresses: string[] } | null {
  if (!existsSync(netns)) return null;
  const r = inNs(netns, ["-j", "addr", "show", "dev", name]);
  if (!r.ok) return null;
  const l = (
    JSON.parse(r.out || "[]") as {
      address: string;
      flags: string[];
      addr_info?: { family: string; local: string; prefixlen: number }[];
    }[]
  )[0];
  if (!l) return null;
  return {
    mac: l.address,
    up: l.flags.includes("UP"),
    addresses: (l.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
  };
}

/** Move `link` into the namespace and set it up there; on any failure nothing stays in the namespace
 * (the link is deleted: its host end goes with it, and the caller's state says it is gone). */
export function moveInto(link: string, netns: string, want: Inside): void {
  need("ip", "nsenter");
  if (lookInside(netns, want.name))
    throw new Error(`the container already has an interface ${want.name}: give another CNI_IFNAME, or remove it`);
  const mv = run("ip", ["link", "set", "dev", link, "netns", netns]);
  if (!mv.ok) throw new Error(`ip link set dev ${link} netns ${netns}: ${mv.err}`);
  const steps: string[][] = [
    ["link", "set", "dev", link, "name", want.name],
    ["link", "set", "dev", want.name, "mtu", String(want.mtu)],
    ...want.addresses.map((a) => ["addr", "add", a, "dev", want.name]),
    ["link", "set", "dev", want.name, "up"],
    ...want.routes.map((r) => ["route", "add", r.dst, ...(r.gw ? ["via", r.gw] : []), "dev", want.name]),
  ];
  for (const s of steps) {
    const r = inNs(netns, s);
    if (!r.ok) {
      inNs(netns, ["link", "del", s === steps[0] ? link : want.name]);
      throw new Error(`in ${netns}: ip ${s.join(" ")}: ${r.err}`);
    }
  }
}
