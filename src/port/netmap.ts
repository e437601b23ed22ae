// netmap:IF / valeX:Y — real netmap ports through libnetmap (nmport_open does the NIOCCTRL register
// and the mmap). Everything after that is ours: read struct nmport_d, view the whole netmap region
// as one ArrayBuffer, find the rings from netmap_if's ring_ofs[], and drive them with src/ring.
// Sync is one ioctl (NIOCTXSYNC / NIOCRXSYNC) or one poll() per batch. Thin on purpose: all ring
// logic is shared with the backends that run on machines without /dev/netmap.

import { type Pointer, ptr, read, toArrayBuffer } from "bun:ffi";
import { existsSync } from "node:fs";
import * as libc from "../../ffi/libc.ts";
import { type Libnetmap, libnetmap } from "../../ffi/libnetmap.ts";
import { NIOCRXSYNC, NIOCTXSYNC, NMEM_D, NMPORT_D, REG } from "../../ffi/netmap.ts";
import { NIF, POLLIN, POLLOUT } from "../ring/layout.ts";
import { Ring } from "../ring/ring.ts";
import { ifaceMac } from "./iface.ts";
import type { PortName } from "./name.ts";
import { type Port, PortError } from "./port.ts";

export const DEV_NETMAP = "/dev/netmap";

/** What nmport_open left in struct nmport_d, read through a pointer. */
export interface Descriptor {
  fd: number;
  memBase: number;
  memSize: number;
  memId: number;
  nifp: number;
  firstTx: number;
  lastTx: number;
  firstRx: number;
  lastRx: number;
}

export function readDescriptor(d: Pointer): Descriptor {
  const mem = read.ptr(d, NMPORT_D.mem) as Pointer;
  if (!mem) throw new Error("nmport_d has no memory region (nmport_mmap not done)");
  return {
    fd: read.i32(d, NMPORT_D.fd),
    memBase: read.ptr(mem, NMEM_D.mem) as number,
    memSize: Number(read.u64(d, NMPORT_D.reg + REG.nr_memsize)),
    memId: read.u16(mem, NMEM_D.mem_id),
    nifp: read.ptr(d, NMPORT_D.nifp) as number,
    firstTx: read.u16(d, NMPORT_D.first_tx_ring),
    lastTx: read.u16(d, NMPORT_D.last_tx_ring),
    firstRx: read.u16(d, NMPORT_D.first_rx_ring),
    lastRx: read.u16(d, NMPORT_D.last_rx_ring),
  };
}

/**
 * The bound rings of a netmap_if at `nifpOff` in `mem`: NETMAP_TXRING(nifp, i) = nifp + ring_ofs[i],
 * NETMAP_RXRING(nifp, i) = nifp + ring_ofs[i + ni_tx_rings + ni_host_tx_rings].
 */
export function ringsFromNifp(
  mem: ArrayBufferLike,
  nifpOff: number,
  d: Pick<Descriptor, "firstTx" | "lastTx" | "firstRx" | "lastRx">,
): { tx: Ring[]; rx: Ring[] } {
  const dv = new DataView(mem);
  const txTotal = dv.getUint32(nifpOff + NIF.ni_tx_rings, true) + dv.getUint32(nifpOff + NIF.ni_host_tx_rings, true);
  const ringAt = (i: number) => nifpOff + Number(dv.getBigInt64(nifpOff + NIF.ring_ofs + 8 * i, true));
  const tx: Ring[] = [],
    rx: Ring[] = [];
  for (let i = d.firstTx; i <= d.lastTx; i++) tx.push(new Ring(mem, ringAt(i)));
  for (let i = d.firstRx; i <= d.lastRx; i++) rx.push(new Ring(mem, ringAt(i + txTotal)));
  return { tx, rx };
}

export class NetmapPort implements Port {
  readonly kind = "netmap";
  readonly name: string;
  readonly mem: ArrayBuffer;
  readonly memId: string;
  readonly txRings: Ring[];
  readonly rxRings: Ring[];
  readonly deviceRings: number;
  readonly bufSize: number;
  /** netmap:IF: the interface's address (what netmap's pkt-gen sends from); zeros for VALE ports and pipes */
  readonly mac: Uint8Array;
  readonly zeroCopy = true;
  readonly fd: number;
  readonly hdrLen = 0;
  get pollFd(): number {
    return this.fd;
  }
  /** netmap counts its drops in the kernel (per adapter), not per open port: none to read here. */
  rxDrops(): number {
    return 0;
  }
  private readonly pfd = new Uint8Array(8);
  private readonly pfdv = new DataView(this.pfd.buffer);
  private closed = false;

  /** Open by name: checks /dev/netmap and libnetmap first, so a missing piece is one clear sentence. */
  static open(pn: PortName): NetmapPort {
    if (!existsSync(DEV_NETMAP)) {
      throw new PortError(
        `${pn.spec}: ${DEV_NETMAP} is missing: load the netmap kernel module (insmod netmap.ko, built from netmap's LINUX/ tree) on a kernel that accepts modules`,
      );
    }
    let lib: Libnetmap;
    try {
      lib = libnetmap();
    } catch (e) {
      throw new PortError(`${pn.spec}: ${(e as Error).message}`);
    }
    const d = lib.nmport_open(Buffer.from(`${pn.spec}\0`));
    if (!d) throw new PortError(`${pn.spec}: nmport_open failed: ${libc.strerror(libc.errno())}`);
    return new NetmapPort(pn.spec, d, lib, pn.backend === "netmap" ? ifaceMac(pn.ifname) : new Uint8Array(6));
  }

  constructor(
    spec: string,
    private readonly d: Pointer,
    private readonly lib: Pick<Libnetmap, "nmport_close" | "ioctl" | "nmport_inject">,
    mac = new Uint8Array(6),
  ) {
    this.name = spec;
    this.mac = mac;
    const desc = readDescriptor(d);
    this.fd = desc.fd;
    // the whole region once: slots index buffers anywhere in it
    this.mem = toArrayBuffer(desc.memBase as Pointer, 0, desc.memSize);
    this.memId = `netmap:mem${desc.memId}`;
    const { tx, rx } = ringsFromNifp(this.mem, desc.nifp - desc.memBase, desc);
    this.txRings = tx;
    this.rxRings = rx;
    this.deviceRings = new DataView(this.mem).getUint32(desc.nifp - desc.memBase + NIF.ni_tx_rings, true);
    this.bufSize = (tx[0] ?? rx[0])?.bufSize ?? 0;
    this.pfdv.setInt32(0, this.fd, true);
  }

  txsync(): void {
    const r = this.lib.ioctl(this.fd, NIOCTXSYNC, null);
    if (r < 0) throw new PortError(`${this.name}: NIOCTXSYNC: ${libc.strerror(-r)}`);
  }

  rxsync(): void {
    const r = this.lib.ioctl(this.fd, NIOCRXSYNC, null);
    if (r < 0) throw new PortError(`${this.name}: NIOCRXSYNC: ${libc.strerror(-r)}`);
  }

  /**
   * libnetmap's nmport_inject: copy one packet into the current tx ring (multi-slot if it exceeds a
   * buffer); no sync. For control-plane sends (ARP, a probe); the datapath writes slots directly.
   */
  inject(pkt: Uint8Array): boolean {
    return this.lib.nmport_inject(this.d, ptr(pkt), pkt.byteLength) === pkt.byteLength;
  }

  /** poll() on the netmap fd syncs the rings as a side effect (netmap(4)). */
  poll(events: number, timeoutMs: number): number {
    this.pfdv.setInt16(4, events & (POLLIN | POLLOUT), true);
    this.pfdv.setInt16(6, 0, true);
    const r = libc.poll(this.pfd, 1, timeoutMs);
    if (r < 0 && r !== -4) throw new PortError(`${this.name}: poll: ${libc.strerror(-r)}`);
    return r > 0 ? this.pfdv.getInt16(6, true) & (POLLIN | POLLOUT) : 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lib.nmport_close(this.d);
  }
}
