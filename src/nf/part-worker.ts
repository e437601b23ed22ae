// A Worker running one part of a split graph (parts.ts starts it): start, then ready or error, then
// done once stopped.

import { GraphPart, loadGraph } from "./part.ts";
import type { PartCommand, PartReport } from "./part-messages.ts";

declare const self: Worker;
let part: GraphPart | null = null;
let stopAsked = false;
const say = (m: PartReport) => self.postMessage(m);

self.onmessage = async (ev: MessageEvent<PartCommand>) => {
  const m = ev.data;
  if (m.t === "stop") {
    stopAsked = true;
    part?.stop();
    return;
  }
  try {
    part = new GraphPart(await loadGraph(m.file), m.part, m.id);
  } catch (e) {
    say({ t: "error", part: m.part, message: (e as Error).message });
    return;
  }
  say({ t: "ready", part: m.part });
  if (stopAsked) part.stop();
  const quiet = part.reportEvery(say);
  const done = await part.run({ signals: false });
  quiet();
  say(done);
};
