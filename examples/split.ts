// examples/graph.ts on two cores: the firewall in one Worker, dedup in another, joined by an shm pipe
// the run makes (bun run nf examples/split.ts; add --processes for one process each).
import type { GraphSpec } from "bunmap";
import graph from "./graph.ts";

export default {
  ...graph,
  ports: { inside: "shm:gs{0@conf:pipes=2", outside: "shm:gs{1" },
  split: [["fw"], ["dedup"]],
} satisfies GraphSpec;
