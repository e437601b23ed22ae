// What every backend offers: netmap-style rings over one memory region, synced once per batch.
import * as libc from "../../ffi/libc.ts";
import type { Ring } from "../ring/ring.ts";

export interface Port {
  /** The name it was opened with. */
  readonly name: string;
  /** Backend: shm, netmap, xdp, packet, pcap. */
  readonly kind: string;
  /** The region holding rings and buffers; slots index buffers in it. */
  readonly mem: ArrayBufferLike;
  /** Ports with equal memId (in one thread) share `mem`: buffers can be swapped between them. */
  readonly memId: string;
  readonly txRings: Ring[];
  readonly rxRings: Ring[];
  /** Rings the device has in each direction, bound or not (pkt-gen's "N queues"). */
  readonly deviceRings: number;
  readonly bufSize: number;
  /** Buffers may be swapped between this port's rings (and other ports with the same memId). */
  readonly zeroCopy: boolean;
  /** Hardware address if the port has one (all zero otherwise). */
  readonly mac: Uint8Array;
  /**
   * Bytes of virtio-net header in front of every frame in this port's buffers (netmap's nr_hdr_len:
   * 0, or 10 when GSO and checksum state travel with the frame). Slot len counts them.
   */
  readonly hdrLen: number;
  /** A file descriptor that polls readable (epoll) when rx has packets; -1 when the port waits another way. */
  readonly pollFd: number;
  /** Hand [old head, head) of every tx ring to the other side and refresh tail (NIOCTXSYNC). */
  txsync(): void;
  /** Release [old head, head) of every rx ring and refresh tail (NIOCRXSYNC). */
  rxsync(): void;
  /**
   * Packets the kernel dropped on their way into this port's rx ring for want of room (AF_PACKET's
   * tp_drops, AF_XDP's ring-full and fill-ring-empty drops), since the port opened; 0 where nothing
   * is counted. A control-path call (a syscall), not for the datapath.
   */
  rxDrops(): number;
  /**
   * When the kernel received the packet in slot `slot` of rx ring 0 (not yet released), on
   * performance.now()'s clock (ms); absent where the backend has no such time (AF_PACKET's V2 ring
   * keeps one per frame).
   */
  rxTime?(slot: number): number;
  /**
   * Ports whose peer wakes pollFd only when asked (a shm pipe end with an eventfd doorbell): call
   * arm() before sleeping on pollFd (true: packets already wait, do not sleep), disarm() after.
   */
  arm?(): boolean;
  disarm?(): void;
  /** Sync, then wait up to timeoutMs (-1: forever) until POLLIN/POLLOUT is ready; returns ready events. */
  poll(events: number, timeoutMs: number): number;
  close(): void;
}

/** A port could not be opened or used: the message is one sentence saying what and how to fix. */
export class PortError extends Error {
  override name = "PortError";
}

/** Undo a half-done open (release what `undo` frees, close the fds opened so far) and throw a
 * PortError naming the port. */
export function abandonOpen(spec: string, e: unknown, fds: number[], undo?: () => void): never {
  undo?.();
  for (const fd of fds) if (fd >= 0) libc.close(fd);
  throw e instanceof PortError ? e : new PortError(`${spec}: ${(e as Error).message}`);
}
