// NFs joined into a graph (Snabb's app network, in one thread): each port's packets enter a named NF
// (or go straight to a port), each NF's outputs lead to another NF or to a port. A packet walks the
// graph within one call (no queue between NFs: the next one sees the same Packet), until it reaches a
// port, is dropped with a reason, or is consumed. Checked before anything opens: unknown names, an
// output that leads nowhere, a cycle. Counted per NF: packets in and out, drops by reason. A graph
// with `split` runs as parts, one Worker or process each, joined by shm: pipes (split.ts, parts.ts).
import { CONSUMED, drop, type NfFunction, type Packet } from "./runner.ts";

export interface NfNode {
  /** The function: the index of an output in `to`, drop(k) (reason k of `reasons`), or CONSUMED. */
  nf: NfFunction;
  /** Where each output leads: a port's or another NF's name. */
  to: string[];
  reasons?: string[];
}

export interface GraphSpec {
  /** The ports by name (port names: shm:…, packet:IF, xdp:IF, netmap:…, pcap:…, vxlan:…). */
  ports: Record<string, string>;
  nfs: Record<string, NfNode>;
  /** Where the packets of each port go first: an NF's or a port's name; a port not named here is
   * an output only (what arrives on it is dropped, counted). */
  from: Record<string, string>;
  /** The NFs of each part, when the graph runs as several (one Worker or process each; split.ts). */
  split?: string[][];
  /** The pipes between parts: "shm:REGION{FIRST" (default: a region of their own). */
  splitPipes?: string;
}

export class GraphError extends Error {}

export interface NfNodeCounters {
  name: string;
  packets: number;
  forwarded: number;
  drops: Record<string, number>;
}

/** The graph as one function over the runner's ports (their order: Object.keys(spec.ports)). */
export class CompiledGraph {
  /** The runner's drop reasons (each NF's reasons, as "nf: reason", then the graph's own). */
  readonly reasons: string[] = [];
  private readonly names: string[];
  private readonly fns: NfFunction[];
  /** Per NF, per output: >= 0 a port index, < 0 -(NF index + 1). */
  private readonly to: Int32Array[];
  /** Per NF, the first of its reasons in `reasons`. */
  private readonly reasonBase: Int32Array;
  private readonly nReasons: Int32Array;
  /** Per port: where its packets enter (as `to`'s entries), or OUTPUT_ONLY. */
  private readonly entry: Int32Array;
  private readonly inCount: Float64Array;
  /** Per NF, packets it consumed or gave a verdict naming nothing it has (passed on = in - these -
   * dropped: one count less per hop than counting what it passed on). */
  private readonly consumed: Float64Array;
  private readonly outputOnly: number;
  private readonly noOutput: number;

  constructor(spec: GraphSpec) {
    const ports = Object.keys(spec.ports);
    this.names = Object.keys(spec.nfs);
    if (!ports.length) throw new GraphError("the graph has no ports: add ports: { name: 'shm:x{0', ... }");
    for (const p of ports)
      if (typeof spec.ports[p] !== "string" || !spec.ports[p])
        throw new GraphError(`ports.${p}: expected a port name (shm:x{0, packet:eth0, xdp:eth0, ...)`);
    if (spec.from !== undefined && (typeof spec.from !== "object" || spec.from === null || Array.isArray(spec.from)))
      throw new GraphError("from: expected { port: 'nf or port', ... }");
    for (const n of this.names)
      if (n in spec.ports) throw new GraphError(`'${n}' names both a port and an NF: give them different names`);
    const known = `ports ${ports.join(", ")}; NFs ${this.names.join(", ") || "(none)"}`;
    const target = (name: string, where: string): number => {
      const p = ports.indexOf(name);
      if (p >= 0) return p;
      const f = this.names.indexOf(name);
      if (f >= 0) return -(f + 1);
      throw new GraphError(`${where}: no port or NF named '${name}' (${known})`);
    };
    this.fns = this.names.map((n) => {
      if (typeof spec.nfs[n]?.nf !== "function") throw new GraphError(`nfs.${n}.nf: expected a function of a packet`);
      return spec.nfs[n].nf;
    });
    this.to = this.names.map((n) => {
      const to = spec.nfs[n].to;
      if (!Array.isArray(to) || !to.length)
        throw new GraphError(`nfs.${n}.to: expected the names its outputs lead to, e.g. to: ["out"]`);
      return Int32Array.from(to, (t, i) => {
        if (typeof t !== "string" || !t) throw new GraphError(`nfs.${n}.to[${i}] leads nowhere: name a port or an NF`);
        return target(t, `nfs.${n}.to[${i}]`);
      });
    });
    for (const p of Object.keys(spec.from ?? {}))
      if (!ports.includes(p)) throw new GraphError(`from.${p}: no port named '${p}' (ports ${ports.join(", ")})`);
    this.entry = Int32Array.from(ports, (p) =>
      spec.from?.[p] === undefined ? 0x7fffffff : target(spec.from[p], `from.${p}`),
    );
    this.findCycle();
    this.reasonBase = new Int32Array(this.names.length);
    this.nReasons = new Int32Array(this.names.length);
    for (const [k, n] of this.names.entries()) {
      const rs = spec.nfs[n].reasons?.length ? (spec.nfs[n].reasons as string[]) : ["dropped"];
      this.reasonBase[k] = this.reasons.length;
      this.nReasons[k] = rs.length;
      for (const r of rs) this.reasons.push(`${n}: ${r}`);
    }
    this.outputOnly = this.reasons.push("arrived on an output-only port") - 1;
    this.noOutput = this.reasons.push("an NF named no output it has") - 1;
    this.inCount = new Float64Array(this.names.length);
    this.consumed = new Float64Array(this.names.length);
  }

  /** A packet must always leave: no NF may lead back to itself through others. */
  private findCycle(): void {
    const state = new Int8Array(this.names.length); // 0 new, 1 on the path, 2 done
    const path: number[] = [];
    const visit = (f: number): void => {
      state[f] = 1;
      path.push(f);
      for (const t of this.to[f]) {
        if (t >= 0) continue;
        const g = -t - 1;
        if (state[g] === 1) {
          const loop = [...path.slice(path.indexOf(g)), g].map((k) => this.names[k]).join(" -> ");
          throw new GraphError(`${loop}: a cycle; a packet must reach a port (lead one of these outputs to a port)`);
        }
        if (state[g] === 0) visit(g);
      }
      path.pop();
      state[f] = 2;
    };
    for (let f = 0; f < this.names.length; f++) if (state[f] === 0) visit(f);
  }

  /** The runner's function: walks the packet through the graph. */
  readonly process = (p: Packet): number => {
    let t = this.entry[p.input];
    if (t === 0x7fffffff) return drop(this.outputOnly);
    while (t < 0) {
      const f = -t - 1;
      this.inCount[f]++;
      const v = this.fns[f](p);
      const to = this.to[f];
      if (v >= 0 && v < to.length && (v | 0) === v) {
        t = to[v];
      } else if (v === CONSUMED) {
        this.consumed[f]++;
        return CONSUMED;
      } else {
        const r = -1 - v;
        const ok = r >= 0 && r < this.nReasons[f] && (r | 0) === r;
        if (!ok) this.consumed[f]++; // (counted as gone from this NF; the runner counts the reason)
        const k = ok ? this.reasonBase[f] + r : this.noOutput;
        return drop(k);
      }
    }
    return t;
  };

  /** Per NF: packets in, passed on, dropped by its reasons (the runner counts the drops: give them). */
  counters(runnerDrops: Record<string, number>): NfNodeCounters[] {
    return this.names.map((name, k) => {
      const drops = Object.fromEntries(
        this.reasons
          .slice(this.reasonBase[k], this.reasonBase[k] + this.nReasons[k])
          .map((r) => [r.slice(name.length + 2), runnerDrops[r] ?? 0]),
      );
      const dropped = Object.values(drops).reduce((a, b) => a + b, 0);
      return { name, packets: this.inCount[k], forwarded: this.inCount[k] - this.consumed[k] - dropped, drops };
    });
  }
}
