// After a restart (or a crash): remove the veths this instance made that its state no longer holds,
// bring back gateways lost with the host's interfaces, and rebuild every switch and the routing from
// the state. What cannot be done now (a tool missing, a rule refused) is reported and skipped, never
// fatal: the switches of every network run whatever else is missing, and the routing is applied
// again later (driver.ts retries it).
import { createGatewayOf, gatewayNames } from "./gateway.ts";
import { hasGateway } from "./plan.ts";
import type { Reconciler } from "./reconcile.ts";
import { short } from "./refused.ts";
import type { State } from "./state.ts";
import { deleteVeth, linkExists, listMarked } from "./veth.ts";

export interface Restored {
  networks: number;
  endpoints: number;
  orphansRemoved: number;
  /** Containers' zero-copy ports whose holders still run, back on their switches. */
  cnfPorts?: number;
  /** What could not be done, one sentence each (with the fix). */
  problems: string[];
}

const message = (e: unknown) => (e as Error).message;

export async function recover(state: State, rec: Reconciler): Promise<Restored> {
  const problems: string[] = [];
  let orphansRemoved = 0;
  try {
    // only interfaces marked with this state's identity, for something the state does not hold
    const eps = new Map(state.endpoints().map((e) => [e.id, e.host_if]));
    const gws = new Set(
      state
        .networks()
        .filter(hasGateway)
        .map((n) => gatewayNames(n.id).sw),
    );
    // (uplink devices: swept by the reconciler, which knows which VNIs are uplinked)
    const orphans = listMarked(state.instance).filter((m) =>
      m.kind === "ep"
        ? eps.get(m.id) !== m.name
        : m.kind === "gw" && !(gws.has(m.name) && gatewayNames(m.id).sw === m.name),
    );
    for (const o of orphans) deleteVeth(o.name);
    orphansRemoved = orphans.length;
  } catch (e) {
    problems.push(`orphan veths not looked for: ${message(e)}`);
  }
  for (const n of state.networks()) {
    // a gateway lost with the host's interfaces (a reboot) comes back with its addresses
    if (!hasGateway(n) || linkExists(gatewayNames(n.id).sw)) continue;
    try {
      createGatewayOf(n, state.instance);
    } catch (e) {
      problems.push(`network ${short(n.id)}: its gateway is not back: ${message(e)}`);
    }
  }
  for (const sw of new Set(state.networks().map((n) => n.switch))) {
    try {
      await rec.reconcile({ switches: [sw], routing: false });
    } catch (e) {
      problems.push(`switch ${sw}: ${message(e)}`);
    }
  }
  try {
    await rec.reconcile({ switches: [] });
  } catch (e) {
    problems.push(`NAT and published ports are not in place: ${message(e)}`);
  }
  return { networks: state.networks().length, endpoints: state.endpoints().length, orphansRemoved, problems };
}
