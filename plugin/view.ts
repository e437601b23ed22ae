// The management view (GET /bunmap/networks): every network as the state holds it, with its
// endpoints, published ports, uplink and per-port packet counters, and what keeps its routing out.
import { gatewayNames } from "./gateway.ts";
import { hasGateway, uplinkOf } from "./plan.ts";
import type { Reconciler } from "./reconcile.ts";
import type { State } from "./state.ts";

export function networkView(state: State, rec: Reconciler) {
  return state.networks().map((n) => ({
    id: n.id,
    switch: n.switch,
    backend: n.backend,
    mtu: n.mtu,
    gateway: n.gateway,
    gateway6: n.gateway6,
    internal: !!n.internal,
    gateway_interface: hasGateway(n) ? gatewayNames(n.id).host : null,
    uplink: uplinkOf(n),
    /** null while NAT and published ports are in place; else why not (a missing tool, with the fix) */
    routing_problem: hasGateway(n) ? rec.routingProblem : null,
    endpoints: state.endpoints(n.id).map((e) => ({
      id: e.id,
      host_interface: e.host_if,
      mac: e.mac,
      address: e.address,
      joined: !!e.joined,
      ports: state.ports(e),
    })),
    ports: rec.counters(n.switch),
  }));
}
