// packet:IFACE — AF_PACKET with mmap rings, libc only.
// rx: TPACKET_V2 by default: netmap rx slot i *is* kernel frame i (the frame is handed over the
//     moment it lands, no block timer, nothing copied); rxsync gives released frames back.
//     rx=v3 uses TPACKET_V3 blocks instead (fewer wakeups at high rate, but a block is seen only when
//     full or after its timeout); rxsync copies each packet into the netmap rx ring's own buffer.
// rx=copy receives with one recvmmsg per batch into the ring's own buffers: no kernel ring, so memory
//     is spent only on what is queued (skbs up to the socket's rcvbuf), not on frames sized for the
//     largest (GSO) packet; the switch uses it for container ports.
// tx: TPACKET_V2 frames; netmap tx slot i *is* frame i (data written in place, zero copy); txsync
//     marks frames SEND_REQUEST and kicks the socket once per batch; tail follows the frames the
//     kernel has handed back.
// tx=copy sends with one sendmmsg per batch from the ring's own buffers instead: the kernel copies
//     each frame, so a slot is free again at once (a ring frame stays referenced by its skb until
//     the kernel frees it).
// vnet=1 puts a virtio-net header before every frame both ways (PACKET_VNET_HDR; port.hdrLen = 10):
//     GSO frames and their checksum state cross the ring intact, so a kernel sender may keep TSO.
import * as libc from "../../ffi/libc.ts";
import {
  BLOCK,
  ETH_P_ALL,
  HDR_V1,
  PACKET,
  req2,
  req3,
  sockaddrLL,
  TP_STATS,
  TP_STATUS_AVAILABLE,
  TP_STATUS_KERNEL,
  TP_STATUS_SEND_REQUEST,
  TP_STATUS_USER,
  TP_STATUS_WRONG_FORMAT,
  TP2,
  TP3,
  TPACKET_V2,
  TPACKET_V3,
  TX_DATA_OFFSET,
  V2_RX_DATA,
  V2_RX_RESERVE,
  VNET_HDR,
} from "../../ffi/tpacket.ts";
import { POLLIN, POLLOUT } from "../ring/layout.ts";
import type { Ring } from "../ring/ring.ts";
import { FdPoller } from "./fd-poll.ts";
import { ifaceMac } from "./iface.ts";
import { align, PrivateRegion, ringBytes, writeRing } from "./local-rings.ts";
import { type ConfTable, NR_REG, type PortName, readConf } from "./name.ts";
import { abandonOpen, type Port, PortError } from "./port.ts";

export interface PacketConf {
  rxSlots: number;
  txSlots: number;
  bufSize: number;
  blockSize: number;
  blocks: number;
  tovMs: number;
  qdiscBypass: boolean;
  rxV3: boolean;
  rxCopy: boolean;
  /** SO_RCVBUFFORCE bytes, 0 = the kernel's default. */
  rcvbuf: number;
  txCopy: boolean;
  vnet: boolean;
}

/** @conf keys of a packet: port (rx_slots and tx_slots default to slots, except V2 rx: below). */
const PACKET_CONF = {
  slots: { int: [1024, 64, 65536] },
  rx_slots: { int: [0, 64, 65536] },
  tx_slots: { int: [0, 64, 65536] },
  buf_size: { int: [2048, 256, 65536] }, // frame size; payload is 32 bytes less
  block_size: { int: [1 << 18, 4096, 1 << 24] },
  blocks: { int: [64, 2, 4096] },
  tov: { int: [1, 0, 1000] },
  qdisc_bypass: { int: [1, 0, 1] },
  rx: { oneOf: ["v2", "v3", "copy"], def: "v2" },
  tx: { oneOf: ["ring", "copy"], def: "ring" },
  vnet: { int: [0, 0, 1] },
  rcvbuf: { int: [0, 0, 1 << 30] },
} as const satisfies ConfTable;

function confOf(pn: PortName): PacketConf {
  const v = readConf(pn, PACKET_CONF);
  const given = (k: string) => pn.options.conf?.[k] !== undefined;
  const rxV3 = v.rx === "v3",
    rxCopy = v.rx === "copy";
  // V2 rx frames are the only rx buffering: 4096 by default (8 MiB of 2 KiB frames, half of V3's
  // default blocks) rides out a receiver's start-up and pauses at a few hundred kpps
  const rxDefault = given("slots") || rxV3 || rxCopy ? v.slots : 4096;
  const c: PacketConf = {
    rxSlots: given("rx_slots") ? v.rx_slots : rxDefault,
    txSlots: given("tx_slots") ? v.tx_slots : v.slots,
    bufSize: v.buf_size,
    blockSize: v.block_size,
    blocks: v.blocks,
    tovMs: v.tov,
    qdiscBypass: v.qdisc_bypass === 1,
    rxV3,
    rxCopy,
    rcvbuf: v.rcvbuf,
    txCopy: v.tx === "copy",
    vnet: v.vnet === 1,
  };
  if (c.rcvbuf && !rxCopy)
    throw new PortError(`bad port name '${pn.spec}': rcvbuf applies to rx=copy only (a ring is its own buffer)`);
  if (c.bufSize & (c.bufSize - 1) || c.blockSize % 4096)
    throw new PortError(`bad port name '${pn.spec}': buf_size must be a power of two, block_size a multiple of 4096`);
  if (c.txSlots & (c.txSlots - 1)) throw new PortError(`bad port name '${pn.spec}': tx_slots must be a power of two`);
  if (!c.rxV3 && !c.rxCopy && c.rxSlots & (c.rxSlots - 1))
    throw new PortError(`bad port name '${pn.spec}': rx_slots must be a power of two`);
  return c;
}

/**
 * One mmsghdr + iovec per slot of the ring at region offset kMsg, each over the slot's fixed buffer
 * (iov_len = iovLen); returns the offset of the iovec array.
 */
function msgVector(mem: ArrayBuffer, base: number, kMsg: number, ring: Ring, iovLen: number): number {
  const dv = new DataView(mem),
    n = ring.numSlots,
    kIov = kMsg + n * libc.MMSGHDR.size;
  for (let j = 0; j < n; j++) {
    const m = kMsg + j * libc.MMSGHDR.size,
      v = kIov + j * libc.IOVEC.size;
    dv.setBigUint64(m + libc.MSGHDR.msg_iov, BigInt(base + v), true);
    dv.setBigUint64(m + libc.MSGHDR.msg_iovlen, 1n, true);
    dv.setBigUint64(v + libc.IOVEC.iov_base, BigInt(base + ring.buf(j)), true);
    dv.setBigUint64(v + libc.IOVEC.iov_len, BigInt(iovLen), true);
  }
  return kIov;
}

/** Every slot of a packet port keeps its own buffer (a kernel frame, or a fixed send buffer). */
export function ownBuffer(name: string, ring: Ring, j: number, dir: "tx" | "rx"): void {
  if (ring.bufIdx(j) !== j)
    throw new PortError(
      `${name}: ${dir} slot ${j} holds buffer ${ring.bufIdx(j)}; packet ports keep their buffers (copy, do not swap)`,
    );
}

/** The rx slots the app released since `last` (up to head): checked to hold their own buffers.
 * Returns the new mark (head). */
export function takeBackRx(name: string, ring: Ring, last: number): number {
  const head = ring.head,
    n = ring.numSlots;
  if (head === last) return last;
  const bad = ring.badHead(last);
  if (bad) throw new PortError(`rxsync on ${name}: ${bad}`);
  for (let j = last; j !== head; j = j + 1 === n ? 0 : j + 1) ownBuffer(name, ring, j, "rx");
  return head;
}

/** Turn errno from socket setup into one sentence with the fix. */
export function sockError(spec: string, e: unknown, what: string): PortError {
  if (e instanceof libc.SysError && (e.errno === libc.EPERM || e.errno === 13)) {
    return new PortError(`${spec}: ${what} needs CAP_NET_RAW (run as root)`);
  }
  return new PortError(`${spec}: ${what} failed: ${(e as Error).message}`);
}

export class PacketPort implements Port {
  readonly kind = "packet";
  readonly name: string;
  readonly memId: string;
  readonly txRings: Ring[];
  readonly rxRings: Ring[];
  readonly deviceRings = 1;
  readonly bufSize: number;
  readonly mac: Uint8Array;
  /** tx and (V2) rx buffers are kernel frames fixed to their slots: no buffer swaps. */
  readonly zeroCopy = false;
  readonly hdrLen: number;
  readonly ifname: string;
  /** Frames the kernel refused (TP_STATUS_WRONG_FORMAT). */
  txErrors = 0;
  /** Received frames longer than a buffer: delivered with len 0 (the switch and apps drop them). */
  rxTruncated = 0;
  private readonly region: PrivateRegion;
  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;
  private readonly rxfd: number;
  private readonly txfd: number;
  private readonly c: PacketConf;
  private readonly kRx: number; // region offset of the V2 rx frames or V3 blocks
  private readonly kTx: number; // region offset of the V2 tx frames
  private readonly txFrame: number;
  private readonly rxFrame: number; // V2 rx frame size
  private readonly kMsg: number; // tx=copy: region offset of the mmsghdr array
  private readonly kRxMsg: number; // rx=copy: region offset of the mmsghdr array
  private iovLen = 0;
  // V3 rx cursor
  private blk = 0;
  private pktLeft = 0;
  private pktOff = 0;
  // tx bookkeeping
  private lastTx = 0;
  /** tx=copy: head at the last sync (lastTx is the first slot not sent yet, which may lag it). */
  private txHead = 0;
  private pending = 0;
  /** Frames marked SEND_REQUEST that no kick has taken yet (a kick takes them all unless it fails). */
  private unkicked = false;
  private lastRx = 0;
  private readonly poller: FdPoller;
  private closed = false;

  constructor(pn: PortName) {
    if (pn.mode !== NR_REG.ALL_NIC && !(pn.mode === NR_REG.ONE_NIC && pn.ringId === 0)) {
      throw new PortError(`${pn.spec}: AF_PACKET ports have one ring each way (ring 0)`);
    }
    this.name = pn.spec;
    this.ifname = pn.ifname;
    const c = (this.c = confOf(pn));
    const ifindex = libc.ifIndex(pn.ifname);
    if (!ifindex) throw new PortError(`${pn.spec}: no such interface '${pn.ifname}' (ip link show lists them)`);
    this.hdrLen = c.vnet ? VNET_HDR.size : 0;
    // power-of-two frames and blocks tile exactly: frame j sits at base + j * frame, so the netmap
    // buffer index of slot j is simply j (2 KiB frames by default: the kernel maps a tx frame into the
    // skb, and half-page frames run ~15% faster than whole pages on veth)
    this.txFrame = 2 ** Math.ceil(Math.log2(c.bufSize));
    this.rxFrame = this.txFrame;
    if (!this.c.rxV3 && !this.c.rxCopy) this.rxTime = (slot) => this.v2Time(slot);
    const blockFor = (frame: number) => Math.max(frame, 65536);
    const framesPerBlock = blockFor(this.txFrame) / this.txFrame;
    const txBlocks = Math.ceil(c.txSlots / framesPerBlock);
    if (!c.txCopy && txBlocks * framesPerBlock !== c.txSlots)
      throw new PortError(`${pn.spec}: tx_slots ${c.txSlots} must be a multiple of ${framesPerBlock}`);
    const rxBlocks = Math.ceil(c.rxSlots / framesPerBlock);
    const rxOwn = c.rxV3 || c.rxCopy; // the rx ring has buffers of its own
    if (!rxOwn && rxBlocks * framesPerBlock !== c.rxSlots)
      throw new PortError(`${pn.spec}: rx_slots ${c.rxSlots} must be a multiple of ${framesPerBlock}`);
    if (c.rxV3 && c.blockSize < c.bufSize + 128) throw new PortError(`${pn.spec}: block_size must exceed buf_size`);

    // region: [4 KiB][tx ring][rx ring][V3, rx=copy: rx buffers][rx frames or V3 blocks][tx frames]
    //   [tx=copy: mmsghdr and iovec per tx slot][rx=copy: mmsghdr and iovec per rx slot]
    const txRingOff = 4096;
    const rxRingOff = txRingOff + ringBytes(c.txSlots);
    const rxBufOff = align(rxRingOff + ringBytes(c.rxSlots), 4096);
    this.kRx = rxOwn ? align(rxBufOff + c.rxSlots * c.bufSize, 4096) : rxBufOff;
    const rxBytes = c.rxCopy ? 0 : c.rxV3 ? c.blockSize * c.blocks : blockFor(this.rxFrame) * rxBlocks;
    this.kTx = this.kRx + rxBytes;
    const txBytes = c.txCopy ? c.txSlots * this.txFrame : blockFor(this.txFrame) * txBlocks;
    this.kMsg = this.kTx + txBytes;
    this.kRxMsg = this.kMsg + (c.txCopy ? c.txSlots * (libc.MMSGHDR.size + libc.IOVEC.size) : 0);
    const total = this.kRxMsg + (c.rxCopy ? c.rxSlots * (libc.MMSGHDR.size + libc.IOVEC.size) : 0);

    let rxfd = -1,
      txfd = -1,
      region: PrivateRegion | null = null;
    try {
      // protocol 0: the socket receives nothing until bind() names the interface and ETH_P_ALL;
      // opened with ETH_P_ALL it would capture every interface's frames meanwhile (a switch would
      // learn other ports' stations on this one)
      try {
        rxfd = libc.socket(libc.AF_PACKET, libc.SOCK_RAW, 0, "AF_PACKET");
      } catch (e) {
        throw sockError(pn.spec, e, "opening an AF_PACKET socket");
      }
      txfd = libc.socket(libc.AF_PACKET, libc.SOCK_RAW, 0, "AF_PACKET");
      // header options go before the rings: the kernel refuses them once a ring exists
      if (c.vnet) {
        libc.setsockoptInt(rxfd, libc.SOL_PACKET, PACKET.VNET_HDR, 1, "PACKET_VNET_HDR");
        libc.setsockoptInt(txfd, libc.SOL_PACKET, PACKET.VNET_HDR, 1, "PACKET_VNET_HDR");
      }
      if (!c.rxCopy)
        libc.setsockoptInt(rxfd, libc.SOL_PACKET, PACKET.VERSION, c.rxV3 ? TPACKET_V3 : TPACKET_V2, "PACKET_VERSION");
      try {
        libc.setsockoptInt(rxfd, libc.SOL_PACKET, PACKET.IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
      } catch {
        /* kernel < 4.20 */
      }
      if (c.rxCopy) {
        if (c.rcvbuf) {
          try {
            libc.setsockoptInt(rxfd, libc.SOL_SOCKET, libc.SO_RCVBUFFORCE, c.rcvbuf, "SO_RCVBUFFORCE");
          } catch (e) {
            throw sockError(pn.spec, e, `setting rcvbuf=${c.rcvbuf} (SO_RCVBUFFORCE needs CAP_NET_ADMIN)`);
          }
        }
      } else if (c.rxV3) {
        libc.setsockopt(
          rxfd,
          libc.SOL_PACKET,
          PACKET.RX_RING,
          req3(c.blockSize, c.blocks, 2048 /* nominal for V3: packets pack into blocks */, c.tovMs),
          "PACKET_RX_RING",
        );
      } else {
        libc.setsockoptInt(rxfd, libc.SOL_PACKET, PACKET.RESERVE, V2_RX_RESERVE, "PACKET_RESERVE");
        libc.setsockopt(
          rxfd,
          libc.SOL_PACKET,
          PACKET.RX_RING,
          req2(blockFor(this.rxFrame), rxBlocks, this.rxFrame),
          "PACKET_RX_RING",
        );
      }
      if (c.qdiscBypass) libc.setsockoptInt(txfd, libc.SOL_PACKET, PACKET.QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS");
      if (!c.txCopy) {
        libc.setsockoptInt(txfd, libc.SOL_PACKET, PACKET.VERSION, TPACKET_V2, "PACKET_VERSION");
        libc.setsockopt(
          txfd,
          libc.SOL_PACKET,
          PACKET.TX_RING,
          req2(blockFor(this.txFrame), txBlocks, this.txFrame),
          "PACKET_TX_RING",
        );
      }
      region = new PrivateRegion(total);
      if (rxBytes) region.mapFixed(this.kRx, rxBytes, rxfd);
      if (!c.txCopy) region.mapFixed(this.kTx, txBytes, txfd);
      libc.bind(rxfd, sockaddrLL(ifindex, ETH_P_ALL), pn.ifname);
      libc.bind(txfd, sockaddrLL(ifindex, 0), pn.ifname);
    } catch (e) {
      abandonOpen(pn.spec, e, [rxfd, txfd], () => region?.release());
    }
    this.rxfd = rxfd;
    this.txfd = txfd;
    this.region = region;
    const mem = region.mem;
    this.u8 = new Uint8Array(mem);
    this.u32 = new Uint32Array(mem);
    this.memId = `packet:${pn.ifname}:${rxfd}`;
    // the largest frame (virtio-net header included) both directions carry
    this.bufSize = rxOwn
      ? Math.min(this.txFrame - TX_DATA_OFFSET, c.bufSize)
      : this.txFrame - Math.max(TX_DATA_OFFSET, V2_RX_DATA);
    this.mac = ifaceMac(pn.ifname);
    this.txRings = [
      writeRing(mem, txRingOff, {
        slots: c.txSlots,
        bufBase: this.kTx + TX_DATA_OFFSET,
        bufStride: this.txFrame,
        dir: 0,
        ringid: 0,
        firstBuf: 0,
      }),
    ];
    if (c.txCopy) {
      // txsync sets only iov_len
      const kIov = msgVector(mem, region.base as number, this.kMsg, this.txRings[0], 0);
      this.iovLen = kIov / 4 + libc.IOVEC.iov_len / 4; // u32 index of iov[0].iov_len (low word)
    }
    this.rxRings = [
      rxOwn
        ? writeRing(mem, rxRingOff, {
            slots: c.rxSlots,
            bufBase: rxBufOff,
            bufStride: c.bufSize,
            dir: 1,
            ringid: 0,
            firstBuf: 0,
          })
        : writeRing(mem, rxRingOff, {
            slots: c.rxSlots,
            bufBase: this.kRx + V2_RX_DATA,
            bufStride: this.rxFrame,
            dir: 1,
            ringid: 0,
            firstBuf: 0,
          }),
    ];
    if (c.rxCopy) msgVector(mem, region.base as number, this.kRxMsg, this.rxRings[0], this.bufSize); // iov_len: the port's frame limit
    // rx socket for POLLIN, tx socket (its ring) for POLLOUT
    this.poller = new FdPoller([rxfd, txfd], (k, ev) => ev & (k === 0 ? POLLIN : POLLOUT));
  }

  get mem(): ArrayBuffer {
    return this.region.mem;
  }
  get pollFd(): number {
    return this.rxfd;
  }

  /** V2 only: the frame's kernel timestamp (CLOCK_REALTIME, ns in tp_nsec) on performance.now()'s clock. */
  readonly rxTime?: (slot: number) => number;
  private v2Time(slot: number): number {
    const f = this.kRx + slot * this.rxFrame,
      u32 = this.u32;
    return u32[(f + TP2.tp_sec) >> 2] * 1000 + u32[(f + TP2.tp_nsec) >> 2] / 1e6 - performance.timeOrigin;
  }

  private drops = 0;
  private readonly stats = new Uint32Array(TP_STATS.size / 4);
  rxDrops(): number {
    libc.getsockopt(this.rxfd, libc.SOL_PACKET, PACKET.STATISTICS, this.stats); // read and reset
    this.drops += this.stats[TP_STATS.tp_drops / 4];
    return this.drops;
  }

  txsync(): void {
    if (this.c.txCopy) {
      this.txsyncCopy();
      return;
    }
    const ring = this.txRings[0];
    const u32 = this.u32,
      n = ring.numSlots,
      head = ring.head,
      frame = this.txFrame;
    let j = this.lastTx;
    if (j !== head) {
      const bad = ring.badHead(j);
      if (bad) throw new PortError(`txsync on ${this.name}: ${bad}`);
      while (j !== head) {
        ownBuffer(this.name, ring, j, "tx");
        const h = (this.kTx + j * frame) >> 2;
        u32[h + 1] = ring.len(j); // tp_len (the virtio-net header included, as the kernel expects)
        Atomics.store(u32, h, TP_STATUS_SEND_REQUEST); // publish after the data and length
        this.pending++;
        j = j + 1 === n ? 0 : j + 1;
      }
      this.lastTx = head;
      this.unkicked = true;
    }
    if (this.unkicked) {
      // one syscall per batch: tpacket_snd walks every SEND_REQUEST frame
      const r = libc.kick(this.txfd);
      if (r < 0 && r !== -libc.EAGAIN && r !== -libc.ENOBUFS) {
        throw new PortError(
          `${this.name}: sendto failed: ${libc.strerror(-r)}${-r === libc.ENETDOWN ? ` (bring it up: ip link set ${this.ifname} up)` : ""}`,
        );
      }
      this.unkicked = r < 0; // out of buffers: kick again next time
    }
    if (this.pending) {
      // reclaim frames the kernel is done with, oldest first
      while (this.pending) {
        const f = (head - this.pending + n) % n;
        const h = (this.kTx + f * frame) >> 2;
        const st = Atomics.load(u32, h);
        if (st === TP_STATUS_WRONG_FORMAT) {
          this.txErrors++;
          Atomics.store(u32, h, TP_STATUS_AVAILABLE);
        } else if (st !== TP_STATUS_AVAILABLE) break;
        this.pending--;
      }
    }
    const oldest = (head - this.pending + n) % n;
    ring.tail = oldest === 0 ? n - 1 : oldest - 1;
  }

  /** tx=copy: sendmmsg every unsent slot (one call per contiguous run); a slot is free once sent. */
  private txsyncCopy(): void {
    const ring = this.txRings[0],
      u32 = this.u32,
      n = ring.numSlots,
      head = ring.head;
    let j = this.lastTx; // first slot not sent yet
    const bad = head === this.txHead ? null : ring.badHead(this.txHead);
    if (bad) throw new PortError(`txsync on ${this.name}: ${bad}`);
    this.txHead = head;
    while (j !== head) {
      const end = head > j ? head : n; // a contiguous run of slots: one call
      for (let k = j; k < end; k++) {
        ownBuffer(this.name, ring, k, "tx");
        u32[this.iovLen + k * 4] = ring.len(k);
      }
      const r = libc.sendmmsg(this.txfd, (this.region.base as number) + this.kMsg + j * libc.MMSGHDR.size, end - j);
      if (r < 0) {
        if (r === -libc.EAGAIN || r === -libc.ENOBUFS) break; // the device is busy: the rest goes next sync
        throw new PortError(
          `${this.name}: sendmmsg failed: ${libc.strerror(-r)}${-r === libc.ENETDOWN ? ` (bring it up: ip link set ${this.ifname} up)` : ""}`,
        );
      }
      const want = end - j;
      j = j + r === n ? 0 : j + r;
      if (r < want) break; // a partial batch: the device pushed back
    }
    this.lastTx = j;
    this.pending = (head - j + n) % n;
    ring.tail = j === 0 ? n - 1 : j - 1;
  }

  rxsync(): void {
    if (this.c.rxCopy) this.rxsyncCopy();
    else if (this.c.rxV3) this.rxsyncV3();
    else this.rxsyncV2();
  }

  /** V2: slot i is frame i. Released slots give their frames back; frames the kernel filled become slots. */
  private rxsyncV2(): void {
    const ring = this.rxRings[0];
    const u8 = this.u8,
      u32 = this.u32,
      n = ring.numSlots,
      head = ring.head,
      frame = this.rxFrame,
      kRx = this.kRx;
    let j = this.lastRx;
    if (head !== j) {
      const bad = ring.badHead(j);
      if (bad) throw new PortError(`rxsync on ${this.name}: ${bad}`);
      while (j !== head) {
        ownBuffer(this.name, ring, j, "rx");
        Atomics.store(u32, (kRx + j * frame) >> 2, TP_STATUS_KERNEL);
        j = j + 1 === n ? 0 : j + 1;
      }
      this.lastRx = head;
    }
    let tail = ring.tail;
    const last = head === 0 ? n - 1 : head - 1; // a ring holds n - 1 packets
    const hdr = this.hdrLen,
      cap = this.bufSize,
      s0 = ring.s0;
    while (tail !== last) {
      const f = kRx + tail * frame;
      if ((Atomics.load(u32, f >> 2) & TP_STATUS_USER) === 0) break;
      const snap = u32[(f + TP2.tp_snaplen) >> 2];
      let len = hdr + snap;
      if (snap < u32[(f + TP2.tp_len) >> 2] || len > cap) {
        this.rxTruncated++;
        len = 0;
      } else {
        const mac = u8[f + TP2.tp_mac] | (u8[f + TP2.tp_mac + 1] << 8);
        // a link-layer header other than Ethernet's 14 bytes lands elsewhere: move it to the slot's start
        if (mac !== V2_RX_DATA + hdr) u8.copyWithin(f + V2_RX_DATA, mac + f - hdr, mac + f + snap);
      }
      u32[s0 + (tail << 2) + 1] = len; // len, flags 0
      tail = tail + 1 === n ? 0 : tail + 1;
    }
    ring.tail = tail;
  }

  /** rx=copy: slots are fixed buffers; recvmmsg fills the free ones (one call per contiguous run). */
  private rxsyncCopy(): void {
    const ring = this.rxRings[0],
      n = ring.numSlots,
      head = ring.head;
    this.lastRx = takeBackRx(this.name, ring, this.lastRx);
    const u32 = this.u32,
      s0 = ring.s0,
      M = libc.MMSGHDR.size;
    let tail = ring.tail;
    let free = (head + n - 1 - tail) % n;
    while (free > 0) {
      const run = Math.min(free, n - tail);
      const r = libc.recvmmsg(this.rxfd, (this.region.base as number) + this.kRxMsg + tail * M, run);
      if (r <= 0) {
        if (r === 0 || r === -libc.EAGAIN || r === -libc.EINTR) break;
        throw new PortError(`${this.name}: recvmmsg failed: ${libc.strerror(-r)}`);
      }
      for (let k = tail; k < tail + r; k++) {
        const m = (this.kRxMsg + k * M) >> 2;
        let len = u32[m + (libc.MMSGHDR.msg_len >> 2)];
        if (u32[m + (libc.MSGHDR.msg_flags >> 2)] & libc.MSG_TRUNC) {
          this.rxTruncated++;
          len = 0;
        }
        u32[s0 + (k << 2) + 1] = len; // len, flags 0
      }
      tail = tail + r === n ? 0 : tail + r;
      free -= r;
      if (r < run) break; // the socket is empty
    }
    ring.tail = tail;
  }

  /** V3: walk retired blocks, copying each packet (with its virtio-net header) into the ring's buffers. */
  private rxsyncV3(): void {
    const ring = this.rxRings[0];
    const n = ring.numSlots,
      head = ring.head;
    if (head !== this.lastRx) {
      const bad = ring.badHead(this.lastRx);
      if (bad) throw new PortError(`rxsync on ${this.name}: ${bad}`);
      this.lastRx = head; // our own buffers: releasing needs nothing from the kernel
    }
    const u8 = this.u8,
      u32 = this.u32,
      c = this.c,
      hdr = this.hdrLen;
    let tail = ring.tail;
    let free = (head + n - 1 - tail) % n;
    const s0 = ring.s0,
      bufBase = ring.bufBase,
      bufSize = ring.bufSize;
    while (free > 0) {
      const b = this.kRx + this.blk * c.blockSize;
      const st = (b + BLOCK.hdr + HDR_V1.block_status) >> 2;
      if (this.pktLeft === 0) {
        if ((Atomics.load(u32, st) & TP_STATUS_USER) === 0) break;
        this.pktLeft = u32[(b + BLOCK.hdr + HDR_V1.num_pkts) >> 2];
        this.pktOff = u32[(b + BLOCK.hdr + HDR_V1.offset_to_first_pkt) >> 2];
        if (this.pktLeft === 0) {
          this.retire(st);
          continue;
        }
      }
      const p = b + this.pktOff;
      const snap = u32[(p + TP3.tp_snaplen) >> 2] + hdr;
      const mac = (u8[p + TP3.tp_mac] | (u8[p + TP3.tp_mac + 1] << 8)) - hdr;
      const len = snap < bufSize ? snap : bufSize;
      const w = s0 + (tail << 2);
      const dst = bufBase + u32[w] * bufSize;
      u8.copyWithin(dst, p + mac, p + mac + len);
      u32[w + 1] = len;
      tail = tail + 1 === n ? 0 : tail + 1;
      free--;
      this.pktOff += u32[p >> 2]; // tp_next_offset
      if (--this.pktLeft === 0) this.retire(st);
    }
    ring.tail = tail;
  }

  /** Hand a fully read block back to the kernel and move to the next one. */
  private retire(statusWord: number): void {
    Atomics.store(this.u32, statusWord, TP_STATUS_KERNEL);
    this.blk = this.blk + 1 === this.c.blocks ? 0 : this.blk + 1;
  }

  poll(events: number, timeoutMs: number): number {
    return this.poller.poll(this, events, timeoutMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.rxfd);
    libc.close(this.txfd);
    this.region.release();
  }
}
