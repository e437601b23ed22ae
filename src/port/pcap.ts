// pcap:FILE — a port over a pcap file. mode=read replays the file through the rx ring (loop=N times,
// 0 forever); mode=write creates the file, or truncates it, and writes what is sent on the tx ring
// (one write per sync). Default: read if the file exists, write otherwise; sending on a port opened
// for reading is an error, never a silent loss. Multi-slot packets (NS_MOREFRAG) both ways when a packet is larger
// than a buffer. The rings live in an ordinary ArrayBuffer: no kernel, no privileges.
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { type PcapFile, parsePcap, pcapGlobalHeader, pcapRecordHeader } from "../packet/pcap.ts";
import { NS_MOREFRAG, POLLIN, POLLOUT } from "../ring/layout.ts";
import type { Ring } from "../ring/ring.ts";
import { align, ringBytes, writeRing } from "./local-rings.ts";
import { type ConfTable, type PortName, readConf } from "./name.ts";

/** @conf keys of a pcap: port (mode: read or write, its default set at open). */
const PCAP_CONF = {
  mode: { oneOf: ["read", "write"], def: "read" },
  loop: { int: [1, 0, 1e9] },
  slots: { int: [1024, 64, 65536] },
  buf_size: { int: [2048, 64, 65536] },
} as const satisfies ConfTable;

import { type Port, PortError } from "./port.ts";

export class PcapPort implements Port {
  readonly kind = "pcap";
  readonly name: string;
  readonly mem: ArrayBuffer;
  readonly memId: string;
  readonly txRings: Ring[];
  readonly rxRings: Ring[];
  readonly deviceRings = 1;
  readonly bufSize: number;
  readonly mac = new Uint8Array(6);
  readonly hdrLen = 0;
  readonly pollFd = -1;
  /** Nothing is dropped on the way in: a full ring holds the sender back. */
  rxDrops(): number {
    return 0;
  }
  readonly zeroCopy = true; // buffers are ours alone: swapping between the two rings is fine
  readonly mode: "read" | "write";
  /** Packets replayed / written so far. */
  packets = 0;
  private readonly file: PcapFile | null = null;
  private rec = 0;
  private fileBase = 0;
  private loopsLeft: number;
  private readonly fd: number = -1;
  private readonly out: Uint8Array;
  private readonly outDv: DataView;
  private lastTx = 0;
  private closed = false;

  constructor(pn: PortName) {
    this.name = pn.spec;
    // mode defaults to read when the file exists, write otherwise
    const c = readConf(pn, {
      ...PCAP_CONF,
      mode: { oneOf: ["read", "write"], def: existsSync(pn.ifname) ? "read" : "write" },
    });
    const mode = c.mode;
    this.mode = mode;
    const slots = c.slots;
    this.bufSize = c.buf_size;
    this.loopsLeft = c.loop || Infinity;
    let data: Uint8Array | null = null;
    if (mode === "read") {
      try {
        data = readFileSync(pn.ifname);
      } catch (e) {
        throw new PortError(
          `${pn.spec}: cannot read ${pn.ifname}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
        );
      }
    } else {
      try {
        this.fd = openSync(pn.ifname, "w");
      } catch (e) {
        throw new PortError(`${pn.spec}: cannot write ${pn.ifname}: ${(e as Error).message}`);
      }
      writeSync(this.fd, pcapGlobalHeader(65535));
    }
    // region: [tx ring][rx ring][tx buffers][rx buffers]
    const txOff = 0,
      rxOff = ringBytes(slots),
      bufBase = align(rxOff + ringBytes(slots), 64);
    const fileBase = bufBase + 2 * slots * this.bufSize; // read mode: the file's bytes follow the buffers
    // rounded up: the ring views are 32-bit arrays over the whole region, whatever the file's length
    this.mem = new ArrayBuffer(align(fileBase + (data?.length ?? 0), 8));
    if (data) {
      const inMem = new Uint8Array(this.mem, fileBase, data.length);
      inMem.set(data);
      try {
        this.file = parsePcap(inMem, pn.ifname);
      } catch (e) {
        throw new PortError(`${pn.spec}: ${(e as Error).message}`);
      }
      if (this.file.linktype !== 1) throw new PortError(`${pn.spec}: link type ${this.file.linktype} is not Ethernet`);
      this.fileBase = fileBase;
    }
    this.memId = `pcap:${pn.ifname}:${Math.random().toString(36).slice(2)}`;
    this.txRings = [
      writeRing(this.mem, txOff, { slots, bufBase, bufStride: this.bufSize, dir: 0, ringid: 0, firstBuf: 0 }),
    ];
    this.rxRings = [
      writeRing(this.mem, rxOff, { slots, bufBase, bufStride: this.bufSize, dir: 1, ringid: 0, firstBuf: slots }),
    ];
    // one write per sync: room for a full ring of max-size records
    this.out = new Uint8Array(slots * (this.bufSize + 16));
    this.outDv = new DataView(this.out.buffer);
  }

  /** Read mode: more packets to come? */
  get more(): boolean {
    return !!this.file && this.file.records.length > 0 && (this.rec < this.file.records.length || this.loopsLeft > 1);
  }

  rxsync(): void {
    const ring = this.rxRings[0],
      n = ring.numSlots;
    // released slots need nothing: the buffers are ours
    const f = this.file;
    if (!f?.records.length) return;
    let tail = ring.tail;
    let free = (ring.head + n - 1 - tail) % n;
    const u8 = ring.u8;
    while (free > 0) {
      if (this.rec === f.records.length) {
        if (--this.loopsLeft <= 0) break;
        this.rec = 0;
      }
      const r = f.records[this.rec];
      const nslots = Math.max(1, Math.ceil(r.caplen / this.bufSize));
      if (nslots > free) break;
      for (let k = 0, off = 0; k < nslots; k++, off += this.bufSize) {
        const len = Math.min(this.bufSize, r.caplen - off);
        const from = this.fileBase + r.offset + off;
        u8.copyWithin(ring.buf(tail), from, from + len);
        ring.setLenFlags(tail, len, k < nslots - 1 ? NS_MOREFRAG : 0);
        tail = tail + 1 === n ? 0 : tail + 1;
      }
      free -= nslots;
      this.rec++;
      this.packets++;
    }
    ring.tail = tail;
  }

  txsync(): void {
    const ring = this.txRings[0],
      n = ring.numSlots,
      head = ring.head,
      u8 = ring.u8;
    if (this.mode === "read" && head !== this.lastTx) {
      throw new PortError(
        `${this.name}: opened for reading (the file exists), so packets sent on it would be lost; to overwrite the file, open it with @conf:mode=write`,
      );
    }
    // only whole packets are written: stop after the last slot without NS_MOREFRAG
    let end = this.lastTx;
    for (let k = this.lastTx; k !== head; k = k + 1 === n ? 0 : k + 1)
      if (!(ring.flags(k) & NS_MOREFRAG)) end = k + 1 === n ? 0 : k + 1;
    const now = Date.now();
    const sec = Math.floor(now / 1000),
      usec = (now % 1000) * 1000;
    let j = this.lastTx,
      w = 0,
      recStart = -1,
      recLen = 0;
    while (j !== end) {
      const len = ring.len(j),
        b = ring.buf(j);
      if (recStart < 0) {
        recStart = w;
        w += 16;
        recLen = 0;
      }
      if (this.fd >= 0) this.out.set(u8.subarray(b, b + len), w); // the file is the slow side: a view per slot is fine
      w += len;
      recLen += len;
      if (!(ring.flags(j) & NS_MOREFRAG)) {
        pcapRecordHeader(this.outDv, recStart, sec, usec, recLen, recLen);
        recStart = -1;
        this.packets++;
        if (w + 16 + this.bufSize * 64 > this.out.length) {
          this.flush(w);
          w = 0;
        }
      }
      j = j + 1 === n ? 0 : j + 1;
    }
    this.flush(w);
    this.lastTx = end;
    ring.tail = end === 0 ? n - 1 : end - 1; // everything written is free again
  }

  private flush(w: number): void {
    if (this.fd >= 0 && w) writeSync(this.fd, this.out, 0, w);
  }

  poll(events: number, timeoutMs: number): number {
    let rev = 0;
    if (events & POLLOUT) {
      this.txsync();
      if (!this.txRings[0].empty()) rev |= POLLOUT;
    }
    if (events & POLLIN) {
      this.rxsync();
      if (!this.rxRings[0].empty()) rev |= POLLIN;
    }
    if (!rev && timeoutMs !== 0) Bun.sleepSync(Math.min(timeoutMs < 0 ? 10 : timeoutMs, 10)); // a file never wakes anyone
    return rev;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd >= 0) {
      this.txsync();
      closeSync(this.fd);
    }
  }
}
