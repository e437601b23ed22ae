// The pluggable part of the switch (mSwitch's lookup module): given a packet and its input port,
// return an output port id, BROADCAST or DROP. Loaded from a file (`--lookup file.ts`, default export).
import type { Fdb } from "../packet/fdb.ts";

export const BROADCAST = -1;
export const DROP = -2;

export interface SwitchView {
  /** Ports now on the switch. */
  readonly nports: number;
  /** Their ids, in the order they joined: ports[0 .. nports). */
  readonly ports: Int32Array;
  /** Position of a port id in `ports`, or -1 if it is not on the switch. */
  rank(id: number): number;
  readonly fdb: Fdb;
  /** Coarse clock (seconds) the fdb uses. */
  now: number;
}

/**
 * (frame bytes, offset of the Ethernet header, length from there, input port id, switch) ->
 * port id | BROADCAST | DROP. Called per packet: allocate nothing. An id that is not (or no longer)
 * on the switch is treated as unknown: flooded.
 */
export type Lookup = (u8: Uint8Array, off: number, len: number, src: number, sw: SwitchView) => number;

/** VALE's default: multicast/broadcast and unknown destinations flood, known ones go to their port. */
export const learningLookup: Lookup = (u8, off, _len, _src, sw) => {
  if (u8[off] & 1) return BROADCAST;
  const p = sw.fdb.lookup(u8, off, sw.now);
  return p < 0 ? BROADCAST : p;
};

export async function loadLookup(path: string | null): Promise<Lookup> {
  if (!path) return learningLookup;
  const mod = await import(path.startsWith("/") ? path : `${process.cwd()}/${path}`);
  const f = mod.default ?? mod.lookup;
  if (typeof f !== "function") throw new Error(`${path}: export a lookup function (default export or 'lookup')`);
  return f as Lookup;
}
