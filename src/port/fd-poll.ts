// poll() for ports whose kernel side is a file descriptor (AF_PACKET, AF_XDP): sync first, and only
// when nothing is ready sleep in poll(2) on the fds (one syscall), then sync again.
import * as libc from "../../ffi/libc.ts";
import { POLLIN, POLLOUT } from "../ring/layout.ts";
import type { Port } from "./port.ts";
import { PortError } from "./port.ts";

/** Sync the directions asked for; report the ready ones (single-ring ports). */
export function readyEvents(p: Pick<Port, "txsync" | "rxsync" | "txRings" | "rxRings">, events: number): number {
  let rev = 0;
  if (events & POLLOUT) {
    p.txsync();
    if (!p.txRings[0].empty()) rev |= POLLOUT;
  }
  if (events & POLLIN) {
    p.rxsync();
    if (!p.rxRings[0].empty()) rev |= POLLIN;
  }
  return rev;
}

/** A prepared pollfd array: `fds[k]` waits for the events `want(k, events)` picks. */
export class FdPoller {
  private readonly pfd: Uint8Array;
  private readonly dv: DataView;
  constructor(
    private readonly fds: number[],
    private readonly want: (k: number, events: number) => number,
  ) {
    this.pfd = new Uint8Array(8 * fds.length);
    this.dv = new DataView(this.pfd.buffer);
    for (const [k, fd] of fds.entries()) this.dv.setInt32(8 * k, fd, true);
  }

  poll(
    port: Pick<Port, "name" | "txsync" | "rxsync" | "txRings" | "rxRings">,
    events: number,
    timeoutMs: number,
  ): number {
    let rev = readyEvents(port, events);
    if (rev || timeoutMs === 0) return rev;
    for (let k = 0; k < this.fds.length; k++) this.dv.setInt16(8 * k + 4, this.want(k, events), true);
    const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs;
    for (;;) {
      const left = deadline - performance.now();
      const r = libc.poll(this.pfd, this.fds.length, left === Infinity ? -1 : Math.max(0, Math.ceil(left)));
      if (r < 0 && r !== -4 /* EINTR */) throw new PortError(`${port.name}: poll failed: ${libc.strerror(-r)}`);
      rev = readyEvents(port, events);
      if (rev || performance.now() >= deadline) return rev;
    }
  }
}
