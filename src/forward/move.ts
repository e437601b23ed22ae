// Moving packets between rings: netmap bridge's rings_move. Zero copy (buffer swap) when both
// ports let their buffers move and share a region (memId), a copy otherwise.

import type { Port } from "../port/port.ts";
import { NS_MOREFRAG } from "../ring/layout.ts";
import type { Ring } from "../ring/ring.ts";

/** Can buffers move between these two ports by swapping indices? */
export function canSwap(a: Port, b: Port): boolean {
  return a.zeroCopy && b.zeroCopy && a.memId === b.memId;
}

/** Move up to `limit` slots from rx to tx; returns slots moved. Oversized packets (len > tx buffer) are dropped as len 0. */
export function moveRings(rx: Ring, tx: Ring, limit: number, swap: boolean, maxLen: number): number {
  let m = rx.space();
  const t = tx.space();
  if (t < m) m = t;
  if (limit < m) m = limit;
  let i = rx.head,
    j = tx.head;
  const nr = rx.numSlots,
    nt = tx.numSlots;
  for (let k = 0; k < m; k++) {
    if (rx.len(i) > maxLen) {
      tx.setLenFlags(j, 0, rx.flags(i) & NS_MOREFRAG);
    } else if (swap) rx.swapTo(i, tx, j);
    else rx.copyTo(i, tx, j);
    i = i + 1 === nr ? 0 : i + 1;
    j = j + 1 === nt ? 0 : j + 1;
  }
  if (m) {
    rx.advance(i);
    tx.advance(j);
  }
  return m;
}
