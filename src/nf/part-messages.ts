// What a split graph's parent and its parts (Workers or processes) say to each other, typed once.
// Workers get commands by postMessage; processes get theirs as argv and SIGTERM. Reports go back by
// postMessage or as JSON lines on the process's stdout (checked against the schema there: it crosses
// a pipe).
import { type Static, Type } from "@sinclair/typebox";
import { PORT_DROPS } from "./runner.ts";

const Count = Type.Number({ minimum: 0 });
export const PortCountersSchema = Type.Object({
  name: Type.String(),
  rxPackets: Count,
  rxBytes: Count,
  txPackets: Count,
  txBytes: Count,
  drops: Type.Object(Object.fromEntries(PORT_DROPS.map((r) => [r, Count]))),
});
export const NfNodeCountersSchema = Type.Object({
  name: Type.String(),
  packets: Count,
  forwarded: Count,
  drops: Type.Record(Type.String(), Count),
});

export const PartReportSchema = Type.Union([
  /** Its ports are open: the next part may start. */
  Type.Object({ t: Type.Literal("ready"), part: Type.Integer() }),
  /** It could not start (a bad module, a port that cannot open): one sentence. */
  Type.Object({ t: Type.Literal("error"), part: Type.Integer(), message: Type.String() }),
  /** Its counters while it runs (each second): what --metrics shows of a split graph. */
  Type.Object({
    t: Type.Literal("counters"),
    part: Type.Integer(),
    ports: Type.Array(PortCountersSchema),
    nfs: Type.Array(NfNodeCountersSchema),
  }),
  /** It stopped: its counters, and what stopped it if a port failed. */
  Type.Object({
    t: Type.Literal("done"),
    part: Type.Integer(),
    ports: Type.Array(PortCountersSchema),
    nfs: Type.Array(NfNodeCountersSchema),
    failed: Type.Union([Type.String(), Type.Null()]),
  }),
]);
export type PartReport = Static<typeof PartReportSchema>;
export type PartDone = Extract<PartReport, { t: "done" }>;
export type PartCounters = Extract<PartReport, { t: "counters" }>;
/** How often a running part reports its counters (ms). */
export const COUNTERS_MS = 1000;

/** Parent to a Worker part. */
export type PartCommand = { t: "start"; file: string; part: number; id: string } | { t: "stop" };
