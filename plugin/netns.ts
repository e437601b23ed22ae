// A container end of a veth in a network namespace given by its path (what CNI runtimes and Docker's
// SandboxKey name) renamed, addressed and routed there; and what is there now, for CHECK.
// Through iproute2, inside the namespace by nsenter (util-linux).
import { existsSync } from "node:fs";
import { need, run } from "./tools.ts";
import { ipBatch } from "./veth.ts";

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

/** Set up `link`, already in the namespace, as the container's interface: renamed, addressed, up,
 * routed, in one process (ip -batch). On failure nothing stays there (the link is deleted, and its
 * host end with it). */
export function setUpInside(link: string, netns: string, want: Inside): void {
  need("ip", "nsenter");
  const steps: string[][] = [
    ["link", "set", "dev", link, "name", want.name],
    ["link", "set", "dev", want.name, "mtu", String(want.mtu)],
    ...want.addresses.map((a) => ["addr", "add", a, "dev", want.name]),
    ["link", "set", "dev", want.name, "up"],
    ...want.routes.map((r) => ["route", "add", r.dst, ...(r.gw ? ["via", r.gw] : []), "dev", want.name]),
  ];
  const at = ["nsenter", `--net=${netns}`];
  const r = ipBatch(steps, at);
  if (r.failed < 0) return;
  run("ip", ["link", "del", r.failed === 0 ? link : want.name], { prefix: at });
  if (r.failed === 0 && /exists/i.test(r.err))
    throw new Error(`the container already has an interface ${want.name}: give another CNI_IFNAME, or remove it`);
  throw new Error(`in ${netns}: ip ${steps[r.failed].join(" ")}: ${r.err}`);
}
