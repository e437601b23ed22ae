// A network's uplink as a Linux vxlan device (datapaths with uplinkDevice: packet), made and marked
// by the plugin and switched as a port like a host veth end. The kernel encapsulates and
// decapsulates whole GSO and GRO frames, and the switch's fast path redirects known unicast to and
// from the device in the kernel, as a Linux bridge holding a vxlan device forwards. Frames to unknown
// and broadcast MACs go to every peer (all-zero FDB entries: head-end replication) or to the group;
// the device learns which host a MAC is behind from what arrives, as the switch learns its port.
// The wire format is Linux's own, so Linux's vxlan on the other host needs nothing of ours.
import { run } from "./tools.ts";
import { ip, linkExists, listMarked, type Mark, markOf, markText, quietIpv6 } from "./veth.ts";

export interface UplinkDevice {
  name: string;
  vni: number;
  dstport: number;
  /** The other hosts (unicast peers), or [] with a group. */
  remotes: string[];
  group: string;
  /** The underlay interface (a group needs one), or "". */
  dev: string;
  local: string;
  /** The network's MTU (the device's); 0: the kernel's choice. */
  mtu: number;
}

export const UPLINK_DEV_PREFIX = "bmvx";
/** One VNI, one switch on a host (plan.ts), so the VNI names the device: bmvx1 .. bmvx16777215. */
export const uplinkDeviceName = (vni: number) => `${UPLINK_DEV_PREFIX}${vni}`;

const markFor = (instance: string, vni: number): Mark => ({ instance, kind: "vx", id: String(vni) });

/** Is this address one of this host's own (the uplink skips it: no frames to ourselves)? */
function isLocal(addr: string): boolean {
  const r = ip(["-j", "route", "get", addr]);
  return r.ok && (JSON.parse(r.out) as { type?: string }[])[0]?.type === "local";
}

/**
 * Make the device, or keep the one this instance made for the VNI (made again when `fresh`: the
 * switch is starting, nothing holds it). An interface of that name that is not ours is left alone and
 * refused; a step that fails takes the device away again and says which step.
 */
export function ensureUplinkDevice(d: UplinkDevice, instance: string, fresh: boolean): void {
  const mark = markFor(instance, d.vni);
  if (linkExists(d.name)) {
    const m = markOf(d.name);
    if (!m || markText(m) !== markText(mark))
      throw new Error(
        `interface ${d.name} exists and is not this network's uplink; it is left alone (rename or remove it)`,
      );
    if (!fresh) return;
    ip(["link", "del", d.name]);
  }
  const add = ["link", "add", d.name, "type", "vxlan", "id", String(d.vni), "dstport", String(d.dstport)];
  if (d.local) add.push("local", d.local);
  if (d.dev) add.push("dev", d.dev);
  if (d.group) add.push("group", d.group);
  const steps: { tool: "ip" | "bridge"; args: string[] }[] = [
    { tool: "ip", args: add },
    { tool: "ip", args: ["link", "set", "dev", d.name, "alias", markText(mark)] },
    ...(d.mtu ? [{ tool: "ip" as const, args: ["link", "set", "dev", d.name, "mtu", String(d.mtu)] }] : []),
    ...quietIpv6(d.name).map((args) => ({ tool: "ip" as const, args })), // the host says nothing into the segment
    ...d.remotes
      .filter((r) => !isLocal(r))
      .map((r) => ({
        tool: "bridge" as const,
        args: ["fdb", "append", "00:00:00:00:00:00", "dev", d.name, "dst", r],
      })),
    { tool: "ip", args: ["link", "set", "dev", d.name, "up"] },
  ];
  for (const s of steps) {
    const r = run(s.tool, s.args);
    if (!r.ok) {
      if (s !== steps[0]) ip(["link", "del", d.name]); // nothing half-made stays behind
      throw new Error(`${s.tool} ${s.args.join(" ")}: ${r.err}`);
    }
  }
}

/** Take away every uplink device of this instance whose VNI no network here uplinks now. */
export function sweepUplinkDevices(instance: string, wanted: Set<number>): number {
  let n = 0;
  for (const m of listMarked(instance))
    if (m.kind === "vx" && !wanted.has(Number(m.id)) && m.name === uplinkDeviceName(Number(m.id))) {
      ip(["link", "del", m.name]);
      n++;
    }
  return n;
}
