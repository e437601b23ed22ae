// NAT and published ports for vale networks, in iptables chains of our own (Debian 12: iptables with
// the nft backend). The whole wanted rule set is computed from the driver's state and written in one
// iptables-restore --noflush: declaring a chain there empties it, so applying is idempotent (a
// restarted plugin writes the same rules again) and Docker's own chains are never touched. Our
// chains are entered by one jump each from the built-in chains, added once and removed with the last
// network.
import { need, type Ran, run, type Tool } from "./tools.ts";

/** A network with a gateway that is routed (not --internal). */
export interface RoutedNet {
  /** the gateway's host-stack interface (vg…) */
  bridge: string;
  /** IPv4 subnet, "a.b.c.d/len" */
  subnet: string;
  /** Accept every connection that came through a DNAT, not only our published ports': a network
   * with CNI containers, whose ports a chained portmap plugin publishes in rules of its own. */
  anyDnat?: boolean;
}

/** One published port: HOST_IP:HOST_PORT on the host to IP:PORT in a container. */
export interface Published {
  bridge: string;
  proto: "tcp" | "udp" | "sctp";
  /** "" = every local address */
  hostIp: string;
  hostPort: number;
  ip: string;
  port: number;
}

/** Our chains, named with the plugin state's identity (State.instance): two plugins with their own
 * state never touch each other's rules. */
export const chains = (instance: string) => ({
  forward: `BUNMAP-FWD-${instance}`,
  postrouting: `BUNMAP-POST-${instance}`,
  dnat: `BUNMAP-DNAT-${instance}`,
});
type Chains = ReturnType<typeof chains>;

/** The jumps into our chains: [table, built-in chain, rule]. FORWARD's goes first (position 1) so
 * that our isolation rules see a packet before any ACCEPT further down. */
const jumps = (CHAIN: Chains): [string, string, string[]][] => [
  ["filter", "FORWARD", ["-j", CHAIN.forward]],
  ["nat", "POSTROUTING", ["-j", CHAIN.postrouting]],
  ["nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", CHAIN.dnat]],
  ["nat", "OUTPUT", ["!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", CHAIN.dnat]],
];

/** The iptables-restore input for the wanted state (pure: tests compare it). */
export function ruleset(CHAIN: Chains, nets: RoutedNet[], pubs: Published[]): string {
  const f: string[] = ["*filter", `:${CHAIN.forward} - [0:0]`];
  const n: string[] = ["*nat", `:${CHAIN.postrouting} - [0:0]`, `:${CHAIN.dnat} - [0:0]`];
  for (const net of nets) {
    const b = net.bridge;
    // into the network: replies, then connections to published ports that came through their DNAT
    // (a client routing straight to the container's port is refused), nothing else
    f.push(`-A ${CHAIN.forward} -o ${b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
    for (const p of pubs.filter((x) => x.bridge === b)) {
      f.push(
        `-A ${CHAIN.forward} -d ${p.ip}/32 ! -i ${b} -o ${b} -p ${p.proto} -m conntrack --ctstate DNAT -m ${p.proto} --dport ${p.port} -j ACCEPT`,
      );
    }
    if (net.anyDnat) f.push(`-A ${CHAIN.forward} ! -i ${b} -o ${b} -m conntrack --ctstate DNAT -j ACCEPT`);
    f.push(`-A ${CHAIN.forward} ! -i ${b} -o ${b} -j DROP`);
    // out of the network: anywhere (other vale networks drop it above, as new traffic into them)
    f.push(`-A ${CHAIN.forward} -i ${b} ! -o ${b} -j ACCEPT`);
    n.push(`-A ${CHAIN.postrouting} -s ${net.subnet} ! -o ${b} -j MASQUERADE`);
  }
  for (const p of pubs) {
    const dst = p.hostIp ? `-d ${p.hostIp}/32 ` : "";
    n.push(
      `-A ${CHAIN.dnat} ${dst}! -i ${p.bridge} -p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination ${p.ip}:${p.port}`,
    );
  }
  return [...f, "COMMIT", ...n, "COMMIT", ""].join("\n");
}

export class Firewall {
  private readonly CHAIN: Chains;
  private readonly JUMPS: [string, string, string[]][];
  /** @param instance the plugin state's identity; @param prefix runs the tools through this (tests: ["ip", "netns", "exec", NS]) */
  constructor(
    instance: string,
    private readonly prefix: string[] = [],
  ) {
    this.CHAIN = chains(instance);
    this.JUMPS = jumps(this.CHAIN);
  }

  /** iptables or iptables-restore (a missing one throws ToolMissing, which names the package). */
  private run([tool, ...args]: [Tool, ...string[]], input?: string): Ran {
    return run(tool, args, { input, prefix: this.prefix });
  }

  /** Make our chains hold exactly these networks' rules; with none left, remove chains and jumps. */
  apply(nets: RoutedNet[], pubs: Published[]): void {
    // both tools or neither: rules written without their jumps would be half a firewall
    need("iptables", "iptables-restore");
    if (!nets.length) {
      this.remove();
      return;
    }
    const r = this.run(["iptables-restore", "--noflush"], ruleset(this.CHAIN, nets, pubs));
    if (!r.ok) throw new Error(`iptables-restore: ${r.err}`);
    // the jumps there are, read at once (a process each costs milliseconds on every change); one not
    // seen as printed is checked with -C before it is added, so a jump is never doubled
    const seen = this.saved();
    for (const [table, chain, rule] of this.JUMPS) {
      if (seen.has(`${table} -A ${chain} ${rule.join(" ")}`)) continue;
      if (this.run(["iptables", "-w", "-t", table, "-C", chain, ...rule]).ok) continue;
      const add = chain === "FORWARD" ? ["-I", chain, "1"] : ["-A", chain];
      const a = this.run(["iptables", "-w", "-t", table, ...add, ...rule]);
      if (!a.ok) throw new Error(`iptables -t ${table} ${add.join(" ")} ${rule.join(" ")}: ${a.err}`);
    }
  }

  /** Every rule as iptables-save prints it, "TABLE -A CHAIN ...", or none if it cannot say. */
  private saved(): Set<string> {
    const out = new Set<string>();
    let r: Ran;
    try {
      r = this.run(["iptables-save"]);
    } catch {
      return out; // not installed: -C answers instead
    }
    let table = "";
    for (const l of r.ok ? r.out.split("\n") : []) {
      if (l.startsWith("*")) table = l.slice(1);
      else if (l.startsWith("-A ")) out.add(`${table} ${l}`);
    }
    return out;
  }

  /** Remove our jumps and chains (nothing of anyone else's). */
  remove(): void {
    for (const [table, chain, rule] of this.JUMPS) {
      while (this.run(["iptables", "-w", "-t", table, "-C", chain, ...rule]).ok) {
        const d = this.run(["iptables", "-w", "-t", table, "-D", chain, ...rule]);
        if (!d.ok) throw new Error(`iptables -t ${table} -D ${chain}: ${d.err}`);
      }
    }
    for (const [table, names] of [
      ["filter", [this.CHAIN.forward]],
      ["nat", [this.CHAIN.postrouting, this.CHAIN.dnat]],
    ] as const) {
      for (const c of names) {
        if (!this.run(["iptables", "-w", "-t", table, "-S", c]).ok) continue; // not there
        const x = this.run(["iptables", "-w", "-t", table, "-F", c]);
        const y = x.ok ? this.run(["iptables", "-w", "-t", table, "-X", c]) : x;
        if (!y.ok) throw new Error(`iptables -t ${table} -X ${c}: ${y.err}`);
      }
    }
  }

  /** Our rules as iptables -S prints them (tests, diagnostics). */
  list(): string[] {
    const out: string[] = [];
    for (const [table, c] of [
      ["filter", this.CHAIN.forward],
      ["nat", this.CHAIN.postrouting],
      ["nat", this.CHAIN.dnat],
    ]) {
      const r = this.run(["iptables", "-w", "-t", table, "-S", c]);
      if (r.ok)
        out.push(
          ...r.out
            .trim()
            .split("\n")
            .map((l) => `${table} ${l}`),
        );
    }
    for (const [table, chain, rule] of this.JUMPS)
      if (this.run(["iptables", "-w", "-t", table, "-C", chain, ...rule]).ok) out.push(`${table} jump ${chain}`);
    return out;
  }
}
