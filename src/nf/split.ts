// One graph, several parts: `split` names the NFs each part runs (one Worker or one process per
// part). A packet that leads to an NF or a port of another part goes there over an shm: pipe, one per
// (part, part, target): the sending part gets the pipe's master end as an output port, the receiving
// part its slave end, whose packets enter at the target. A port belongs to the part of the NF its
// packets enter (from), else of the first NF that leads to it, else to part 0. Pure: no port opens here.
import { CompiledGraph, GraphError, type GraphSpec, type NfNode } from "./graph.ts";

/** Where a split graph's pipes are: a region of their own (created with as many pipes as needed),
 * or `splitPipes: "shm:REGION{FIRST"` (pipes FIRST, FIRST+1, ... of a region the graph's own shm
 * ports share, so packets cross between parts by buffer swap instead of a copy). */
export interface SplitPipes {
  region: string;
  first: number;
  /** A region of the split's own (its ends say @conf:pipes=N), not the user's. */
  own: boolean;
}

/** The name a pipe end has in its part's port list: "pipe FROM>TO TARGET". */
export const pipeKey = (from: number, to: number, target: string) => `pipe ${from}>${to} ${target}`;

/** Each part as a graph of its own (same NF objects, `to` and `from` rewritten), in `split`'s order. */
export function splitGraph(spec: GraphSpec, id: string): GraphSpec[] {
  new CompiledGraph(spec); // names, outputs and cycles checked on the whole graph first
  const split = spec.split;
  if (split === undefined) return [spec];
  if (!Array.isArray(split) || !split.length || !split.every((p) => Array.isArray(p) && p.length))
    throw new GraphError('split: expected the NFs of each part, e.g. split: [["fw"], ["lb", "sink"]]');
  const partOfNf = new Map<string, number>();
  for (const [k, names] of split.entries())
    for (const n of names) {
      if (typeof n !== "string" || !(n in spec.nfs))
        throw new GraphError(`split[${k}]: no NF named '${String(n)}' (NFs ${Object.keys(spec.nfs).join(", ")})`);
      if (partOfNf.has(n)) throw new GraphError(`split: '${n}' is in two parts: name each NF once`);
      partOfNf.set(n, k);
    }
  const missing = Object.keys(spec.nfs).filter((n) => !partOfNf.has(n));
  if (missing.length) throw new GraphError(`split: ${missing.join(", ")} in no part: name every NF once`);
  const pipes = parsePipes(spec.splitPipes, id);

  const from = spec.from ?? {};
  const ownerOfPort = (p: string): number => {
    const f = from[p];
    if (f !== undefined && partOfNf.has(f)) return partOfNf.get(f) as number;
    for (const [n, node] of Object.entries(spec.nfs)) if (node.to.includes(p)) return partOfNf.get(n) as number;
    return 0;
  };
  const partOf = (t: string): number => partOfNf.get(t) ?? ownerOfPort(t);

  const parts: GraphSpec[] = split.map(() => ({ ports: {}, nfs: {}, from: {} }));
  for (const p of Object.keys(spec.ports)) parts[ownerOfPort(p)].ports[p] = spec.ports[p];
  const made = new Map<string, number>();
  const ends: [number, number, string, number][] = [];
  /** The name part `src` gives target `t`: its own, or the pipe that leads there. */
  const via = (src: number, t: string): string => {
    const dst = partOf(t);
    if (dst === src) return t;
    const key = pipeKey(src, dst, t);
    if (!made.has(key)) {
      made.set(key, made.size);
      ends.push([src, dst, t, made.size - 1]);
    }
    return key;
  };
  for (const [n, node] of Object.entries(spec.nfs)) {
    const k = partOfNf.get(n) as number;
    parts[k].nfs[n] = { ...node, to: node.to.map((t) => via(k, t)) } satisfies NfNode;
  }
  for (const [p, t] of Object.entries(from)) {
    const k = ownerOfPort(p);
    parts[k].from[p] = via(k, t);
  }
  const total = ends.length;
  for (const [src, dst, t, i] of ends) {
    const key = pipeKey(src, dst, t);
    const conf = pipes.own ? `@conf:pipes=${total}` : "";
    parts[src].ports[key] = `shm:${pipes.region}{${pipes.first + i}${conf}`;
    parts[dst].ports[key] = `shm:${pipes.region}}${pipes.first + i}${conf}`;
    parts[dst].from[key] = t;
  }
  return parts;
}

function parsePipes(given: string | undefined, id: string): SplitPipes {
  if (given === undefined) return { region: `nfsplit-${id}`, first: 0, own: true };
  const m = typeof given === "string" ? /^shm:([A-Za-z0-9_.-]+)\{(\d+)$/.exec(given) : null;
  if (!m)
    throw new GraphError(
      `splitPipes: expected "shm:REGION{FIRST" (the first pipe the parts may use), got ${JSON.stringify(given)}`,
    );
  return { region: m[1], first: Number(m[2]), own: false };
}
