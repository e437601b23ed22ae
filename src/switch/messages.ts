// What the engine's main thread and its workers say to each other: typed once, used on both sides.
// Commands go by postMessage; the worker may be asleep in epoll_wait, so the sender also bumps the
// `posted` counter in the worker's control words and rings its doorbell (an eventfd).
import type { FastPathFds } from "./fastpath.ts";

/** A switch as one worker runs it. */
export interface SwitchSpec {
  sw: number;
  /** Which ring of every port this worker opens (-1: the port as named, every ring). */
  ring: number;
  /** Workers that share the switch (ring r of each port to worker r). */
  rings: number;
  fdb: SharedArrayBuffer;
  age: number;
  lookup: string | null;
  /** Learn source MACs (false: the lookup decides alone, nothing written to the table). */
  learn: boolean;
  burst: number;
  /** Counter blocks, one per ring (layout.ts counterBlock); this worker writes block `ring`. */
  counters: SharedArrayBuffer;
  maxPorts: number;
  /** The kernel fast path's map and programs (fastpath.ts), or null: every frame through user space. */
  fast: FastPathFds | null;
}

export type Command =
  | { t: "addSwitch"; seq: number; spec: SwitchSpec }
  | { t: "removeSwitch"; seq: number; sw: number }
  | { t: "addPort"; seq: number; sw: number; id: number; name: string; stations?: string[] }
  | { t: "removePort"; seq: number; sw: number; id: number }
  | { t: "stop"; seq: number };

export interface WorkerInit {
  t: "init";
  /** eventfd the main thread rings after posting a command. */
  doorbell: number;
  /** Int32 control words (CTL). */
  ctl: SharedArrayBuffer;
  /** How long an idle worker keeps polling its rings before it sleeps in epoll_wait. */
  spinUs: number;
  /** CPU to pin the worker to, or -1 (the scheduler chooses). */
  cpu: number;
}

export type Reply =
  | { t: "ready" }
  | { t: "done"; seq: number; error?: string }
  | { t: "fatal"; error: string }
  /** A port's sync failed: the worker took it off its switch and closed it. */
  | { t: "portFailed"; sw: number; id: number; error: string };

/** Int32 control words shared with a worker. */
export const CTL = { posted: 0, size: 4 } as const;
