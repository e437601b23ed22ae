// A Worker sending some of a profile's streams on its own ring (threads.ts starts it): start, then
// ready or error, "second" reports while it runs, done with its streams' counts.
import { openPort } from "../port/open.ts";
import type { Port } from "../port/port.ts";
import type { GenCommand, GenReport } from "./gen-messages.ts";
import { Generator } from "./generator.ts";
import { compileProfile, loadProfile } from "./profile.ts";

declare const self: Worker;
const say = (m: GenReport) => self.postMessage(m);
let gen: Generator | null = null;
let stopAsked = false;

self.onmessage = async (ev: MessageEvent<GenCommand>) => {
  const m = ev.data;
  if (m.t === "stop") {
    stopAsked = true;
    gen?.stop();
    return;
  }
  let port: Port;
  try {
    port = openPort(m.port);
    const all = compileProfile(await loadProfile(m.file), port.bufSize - port.hdrLen, m.totalPps);
    gen = new Generator(
      m.ids.map((id) => all[id]),
      port,
      null,
      {
        count: m.count,
        seconds: m.seconds,
        burst: m.burst,
        onSecond: (g) => say({ t: "second", sent: g.tx.map((s, i) => [m.ids[i], s.sent]) }),
      },
    );
  } catch (e) {
    say({ t: "error", message: (e as Error).message.split("\n")[0] });
    return;
  }
  say({ t: "ready" });
  if (stopAsked) gen.stop();
  await gen.run();
  say({
    t: "done",
    startMs: gen.startMs,
    endMs: gen.endMs,
    streams: gen.tx.map((s, i) => ({
      id: m.ids[i],
      name: s.name,
      sent: s.sent,
      bytes: s.bytes,
      behind: s.behind,
      perSecond: s.perSecond,
      lateness: {
        counts: s.lateness.counts,
        count: s.lateness.count,
        min: s.lateness.min,
        max: s.lateness.max,
        sum: s.lateness.sum,
      },
    })),
  });
  port.close();
};
