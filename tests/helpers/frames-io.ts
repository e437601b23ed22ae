// Frames in and out of a port's first rings, for tests that drive ports by hand: put frames on the
// tx ring and sync once; take every frame the rx ring holds (copies), released.
import type { Port } from "../../src/port/port.ts";

export function sendFrames(p: Port, frames: Uint8Array[]): void {
  const tx = p.txRings[0];
  for (const f of frames) {
    tx.u8.set(f, tx.buf(tx.head));
    tx.setLenFlags(tx.head, f.length, 0);
    tx.advance(tx.next(tx.head));
  }
  p.txsync();
}

export function receiveFrames(p: Port): Uint8Array[] {
  p.rxsync();
  const rx = p.rxRings[0],
    got: Uint8Array[] = [];
  while (!rx.empty()) {
    got.push(rx.packet(rx.head).slice());
    rx.advance(rx.next(rx.head));
  }
  p.rxsync();
  return got;
}
