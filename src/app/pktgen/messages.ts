// What pktgen's main thread and its threads (Workers) say to each other, typed once.
// main -> {init}; thread -> {ready, info} | {error}; main -> {go}; thread -> {done, error?}.
import type { Config } from "./args.ts";

/** What a thread reports of its port once open (the banner lines pkt-gen prints). */
export interface ThreadInfo {
  queues: number;
  mac: string;
  rings: [string, number, number, number][];
  memsize: number;
}

export type ToThread = { t: "init"; cfg: Config; idx: number; sab: SharedArrayBuffer } | { t: "go" };
export type FromThread =
  | { t: "ready"; info: ThreadInfo }
  | { t: "error"; error: string }
  | { t: "done"; error?: string };
