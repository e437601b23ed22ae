// A process running one part of a split graph: bun part-process.ts FILE PART ID (parts.ts spawns it).
// Reports are JSON lines on stdout; the parent's SIGTERM stops it (kept until its counters are out,
// so a second one cannot cut them off). SIGINT is ignored: a ^C reaches the whole process group, and
// the parent stops the parts in order (upstream first, so what is in flight is delivered).

import { GraphPart, loadGraph } from "./part.ts";
import type { PartReport } from "./part-messages.ts";

const [file, partArg, id] = process.argv.slice(2);
const say = (m: PartReport) => process.stdout.write(`${JSON.stringify(m)}\n`);
const n = Number(partArg);
let part: GraphPart | null = null;
let stopAsked = false;
const stop = () => {
  stopAsked = true;
  part?.stop();
};
process.on("SIGTERM", stop);
process.on("SIGINT", () => {});
try {
  part = new GraphPart(await loadGraph(file), n, id);
} catch (e) {
  say({ t: "error", part: n, message: (e as Error).message });
  process.exit(1);
}
say({ t: "ready", part: n });
if (stopAsked) part.stop();
const quiet = part.reportEvery(say);
const done = await part.run({ signals: false });
quiet();
say(done);
process.exit(0);
