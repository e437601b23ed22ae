// What a CreateNetwork asks for, worked out without touching anything: the options, IPAM data,
// uplink and slice rules turned into the network's row, or a refusal saying what to change. No I/O:
// what the machine says (the underlay's MTU, ip_forward, /dev/netmap) comes in through PlanContext,
// so every rule is unit-tested without root.
import { BACKEND, type Backend, backendNamed } from "./backends.ts";
import { Refused, short } from "./refused.ts";
import { type CreateNetwork, GENERIC, INTERNAL } from "./schemas.ts";
import type { NetworkRow } from "./state.ts";
import { checkUplink, innerMtu, MIN_UNDERLAY_MTU, type Uplink } from "./uplink.ts";
import { checkMtu, checkOptions, checkPool, MTU_KEY } from "./validate.ts";

export interface PlanContext {
  /** The datapath of a network that does not choose one. */
  defaultBackend: Backend;
  /** The networks there are now. */
  networks: NetworkRow[];
  /** Why a backend cannot run here (a sentence with the fix), or null. */
  unavailable(b: Backend): string | null;
  /** Is the kernel forwarding IPv4 (a routed network's gateway needs it)? */
  ipForwarding: boolean;
  /** The interface an uplink leaves by and its MTU (a lookup in the host's routes). */
  underlay(u: Uplink): { dev: string; mtu: number };
  now: number;
}

export interface NetworkPlan {
  row: NetworkRow;
  uplink: Uplink | null;
  /** Does the network get a gateway port (routed, with an address)? */
  gateway: boolean;
}

/** The uplink of a stored network (its options were checked when it was created). */
export function uplinkOf(n: NetworkRow): Uplink | null {
  const generic = (JSON.parse(n.options) as Record<string, unknown>)[GENERIC] as Record<string, string> | undefined;
  return generic ? checkUplink(generic, n.backend, n.mtu) : null;
}

/** A routed network has a gateway port; an --internal one has none. */
export const hasGateway = (n: NetworkRow) => !n.internal && !!(n.gateway || n.gateway6);

/** The switch a network runs on: -o switch, or its slice, or one of its own. */
function switchName(generic: Record<string, string>, networkId: string): string {
  const sw = generic.switch ?? generic.slice_id ?? `vale${networkId.slice(0, 6)}`;
  const name = sw.startsWith("vale") ? sw : `vale${sw}`;
  if (!/^vale[0-9A-Za-z_]{0,11}$/.test(name))
    throw new Refused(`--opt switch=${sw}: a switch name is vale followed by up to 11 letters, digits or _`);
  return name;
}

/** The MTU the network gets: asked for, or the most its uplink's underlay leaves (1500 at most). */
function mtuOf(generic: Record<string, string>, backend: Backend, uplink: Uplink | null, ctx: PlanContext): number {
  const key = generic[MTU_KEY] !== undefined ? MTU_KEY : "mtu";
  const under = uplink ? ctx.underlay(uplink) : null;
  if (under && under.mtu < MIN_UNDERLAY_MTU)
    throw new Refused(
      `the uplink's interface ${under.dev} has MTU ${under.mtu}: too small for VXLAN (${MIN_UNDERLAY_MTU} at least)`,
    );
  const room = under ? innerMtu(under.mtu) : Number.POSITIVE_INFINITY;
  const mtu = generic[key] === undefined ? Math.min(1500, room) : checkMtu(generic[key], key);
  if (under && mtu > room)
    throw new Refused(
      `--opt ${key}=${mtu}: the uplink leaves by ${under.dev} (MTU ${under.mtu}) and VXLAN adds ${under.mtu - room} bytes: ${room} at most`,
    );
  // what a datapath cannot carry is refused here, never accepted and dropped later
  const max = BACKEND[backend].maxMtu;
  if (mtu > max)
    throw new Refused(
      `--opt ${key}=${mtu}: the ${backend} datapath carries frames of MTU ${max} at most (use backend=packet for larger)`,
    );
  return mtu;
}

/** The network a CreateNetwork asks for, checked against the rules and the networks there are. */
export function planNetwork(b: CreateNetwork, ctx: PlanContext): NetworkPlan {
  const generic = checkOptions(b.Options?.[GENERIC]);
  const backend = generic.backend === undefined ? ctx.defaultBackend : backendNamed(generic.backend);
  const why = ctx.unavailable(backend);
  if (why) throw new Refused(why);
  const uplink = checkUplink(generic, backend);
  const mtu = mtuOf(generic, backend, uplink, ctx);
  for (const [d, family] of [
    [b.IPv4Data, 4],
    [b.IPv6Data, 6],
  ] as const) {
    if ((d?.length ?? 0) > 1)
      throw new Refused(`IPv${family}Data: a vale network takes one IPv${family} subnet (got ${d?.length})`);
    if (d?.[0]) checkPool(d[0].Pool, d[0].Gateway, family, `IPv${family}Data[0]`);
  }
  const name = switchName(generic, b.NetworkID);
  // networks with the same slice_id (or switch) share one switch, as VALE-docker's slices: alike
  const mate = ctx.networks.find((x) => x.switch === name && x.id !== b.NetworkID);
  if (mate && (mate.backend !== backend || mate.mtu !== mtu))
    throw new Refused(
      `--opt slice_id: switch ${name} already carries network ${short(mate.id)} with backend ${mate.backend} and MTU ${mate.mtu}; networks sharing a switch must match (this one: ${backend}, ${mtu})`,
    );
  const linked = uplink && checkUplink(generic, backend, mtu);
  if (mate && uplinkOf(mate)?.key !== linked?.key)
    throw new Refused(
      `--opt slice_id: switch ${name} already carries network ${short(mate.id)} with uplink ${uplinkOf(mate)?.key ?? "none"}; networks sharing a switch share its uplink (this one: ${linked?.key ?? "none"})`,
    );
  const sameVni = uplink && ctx.networks.find((x) => x.switch !== name && uplinkOf(x)?.vni === uplink.vni);
  if (sameVni)
    throw new Refused(
      `--opt vni=${uplink.vni}: network ${short(sameVni.id)} on this host already uplinks that VNI (switch ${sameVni.switch}); give both the same slice_id to share its switch`,
    );
  const internal = b.Options?.[INTERNAL] === true || b.Options?.[INTERNAL] === "true";
  const v4 = b.IPv4Data?.[0],
    v6 = b.IPv6Data?.[0];
  if (!internal && v4 && !ctx.ipForwarding)
    throw new Refused(
      "net.ipv4.ip_forward is 0, so the network's gateway could not route: enable it (sysctl -w net.ipv4.ip_forward=1, as Docker does) or create the network with --internal",
    );
  const row: NetworkRow = {
    id: b.NetworkID,
    switch: name,
    backend,
    mtu,
    gateway: (v4?.Gateway ?? "").split("/")[0],
    options: JSON.stringify(b.Options ?? {}),
    created: ctx.now,
    internal: internal ? 1 : 0,
    pool: v4?.Pool ?? "",
    gateway6: (v6?.Gateway ?? "").split("/")[0],
    pool6: v6?.Pool ?? "",
  };
  return { row, uplink: linked, gateway: hasGateway(row) };
}
