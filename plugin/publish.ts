// Published ports (-p): Docker's port map for an endpoint turned into bindings with their host
// ports chosen, checked against what other endpoints hold. Pure: the rules and proxies that carry
// the bindings are written by reconcile.ts from the state.
import { Refused, short } from "./refused.ts";
import type { PortBinding } from "./schemas.ts";
import type { Binding, EndpointRow, NetworkRow } from "./state.ts";

/** Where a host port is chosen when -p gives none (Docker's own ephemeral range). */
const EPHEMERAL = [49153, 60999] as const;
const PROTO: Record<number, Binding["proto"]> = { 6: "tcp", 17: "udp", 132: "sctp" };

/** A binding held by an endpoint. */
export type Held = Binding & { ep: string };

/** The bindings an endpoint gets for Docker's port map, or the refusal (nothing is chosen then). */
export function planBindings(portmap: PortBinding[], e: EndpointRow, n: NetworkRow, taken: Held[]): Binding[] {
  const want = portmap.filter((p) => !(p.HostIP ?? "").includes(":")); // IPv6 host addresses: IPv4 NAT only (README)
  if (want.length && (n.internal || !n.pool))
    throw new Refused(`network ${short(n.id)} is internal: it publishes no ports`);
  if (want.length && !e.address) throw new Refused(`endpoint ${short(e.id)} has no IPv4 address to publish ports to`);
  const chosen: Binding[] = [];
  for (const p of want) chosen.push(bindPort(p, [...taken, ...chosen.map((c) => ({ ...c, ep: e.id }))]));
  return chosen;
}

/** A binding with its host port: the one asked for, or the first free one in its range (or ours). */
function bindPort(p: PortBinding, taken: Held[]): Binding {
  const proto = PROTO[p.Proto];
  if (!proto)
    throw new Refused(`Options.com.docker.network.portmap: protocol ${p.Proto} is not tcp (6), udp (17) or sctp (132)`);
  const hostIp = p.HostIP === "0.0.0.0" ? "" : (p.HostIP ?? "");
  const [lo, hi] = p.HostPort ? [p.HostPort, Math.max(p.HostPort, p.HostPortEnd ?? 0)] : EPHEMERAL;
  const clash = (port: number) =>
    taken.find((t) => t.proto === proto && t.hostPort === port && (!t.hostIp || !hostIp || t.hostIp === hostIp));
  for (let port = lo; port <= hi; port++) if (!clash(port)) return { proto, hostIp, hostPort: port, port: p.Port };
  const c = clash(lo) as Held;
  throw new Refused(
    lo === hi
      ? `port ${hostIp || "0.0.0.0"}:${lo}/${proto} is already published for endpoint ${short(c.ep)}`
      : `no free host port in ${lo}-${hi}/${proto}`,
  );
}
