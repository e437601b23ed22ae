// What the generator's main thread and its sending Workers say to each other (bun run pktgen
// --profile -p N), typed once. Each Worker loads the profile itself (its streams are functions) and
// sends the streams it is given, by their ids, on its own ring.
export interface GenStart {
  t: "start";
  file: string;
  /** The streams this Worker sends (ids: their places in the profile). */
  ids: number[];
  /** Its port (ring i of the port: pkt-gen's -p naming). */
  port: string;
  count: number;
  seconds: number;
  totalPps?: number;
  burst: number;
}

/** A stream's sending side, as it crosses postMessage. */
export interface StreamTxData {
  id: number;
  name: string;
  sent: number;
  bytes: number;
  behind: number;
  perSecond: number[];
  lateness: { counts: Float64Array; count: number; min: number; max: number; sum: number };
}

export type GenReport =
  | { t: "ready" }
  | { t: "error"; message: string }
  /** About once a second: packets sent so far, by stream id. */
  | { t: "second"; sent: [number, number][] }
  | { t: "done"; startMs: number; endMs: number; streams: StreamTxData[] };

export type GenCommand = GenStart | { t: "stop" };
