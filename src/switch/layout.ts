// Facts the switch's threads share: how a port id is made, and where counters sit in shared memory.
// A port id is (generation << SLOT_BITS) | slot: the slot indexes per-port arrays, the generation
// changes every time a slot is reused, so a learning-table entry naming a removed port can never
// match the port that takes its slot later.

export const SLOT_BITS = 12;
/** Ports a switch can hold at once. */
export const MAX_PORTS = 1 << SLOT_BITS;
export const SLOT_MASK = MAX_PORTS - 1;
const MAX_GEN = (1 << (31 - SLOT_BITS)) - 1;

export const portId = (gen: number, slot: number) => ((gen & MAX_GEN) << SLOT_BITS) | slot;
export const slotOf = (id: number) => id & SLOT_MASK;

/** Per-switch counters, f64 each: one block per worker that runs the switch. `dropped` is every drop;
 * the drop* ones say why a frame went nowhere (to its own port, the lookup's DROP, shorter than a
 * header); learned/moved: stations new to the table, stations that changed port; busyUs: time in
 * rounds that moved packets. */
export const SW_CTR = {
  forwarded: 0,
  flooded: 1,
  dropped: 2,
  rounds: 3,
  learned: 4,
  moved: 5,
  dropSamePort: 6,
  dropLookup: 7,
  dropRunt: 8,
  busyUs: 9,
  stride: 10,
} as const;
/** Per-port counters, f64 each, after the switch block: port slot s at SW_CTR.stride + s * PORT_CTR.stride. */
export const PORT_CTR = {
  rx: 0,
  tx: 1,
  dropped: 2,
  /** bytes of frames, without a virtio-net header */
  rxBytes: 3,
  txBytes: 4,
  /** why frames for this port were dropped (their sum is `dropped`): its tx ring full, longer than it
   * takes, an offload it cannot be given (a multi-slot frame across headers, UDP GSO) */
  dropNoRoom: 5,
  dropTooLong: 6,
  dropOffload: 7,
  stride: 8,
} as const;

type Names<T> = Exclude<keyof T, "stride">;
export type SwitchCounters = Record<Names<typeof SW_CTR>, number>;
export type PortCounters = Record<Names<typeof PORT_CTR>, number>;

/** Add the counters of one block at f[at...] into `into`, by the layout's own names (control path). */
export function addCounters<L extends Record<string, number>>(
  layout: L,
  f: Float64Array,
  at: number,
  into: Record<Names<L>, number>,
): Record<Names<L>, number> {
  for (const k of Object.keys(layout) as (keyof L)[]) if (k !== "stride") into[k as Names<L>] += f[at + layout[k]];
  return into;
}

/** Every counter of a layout at 0. */
export function zeroCounters<L extends Record<string, number>>(layout: L): Record<Names<L>, number> {
  const z = {} as Record<Names<L>, number>;
  for (const k of Object.keys(layout) as (keyof L)[]) if (k !== "stride") z[k as Names<L>] = 0;
  return z;
}

/** f64 count of one worker's counter block for a switch of `maxPorts` slots. */
export const counterBlock = (maxPorts: number) => SW_CTR.stride + maxPorts * PORT_CTR.stride;
