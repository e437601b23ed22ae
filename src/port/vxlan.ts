// vxlan:VNI — a VXLAN tunnel endpoint as a port (RFC 7348, IPv4 underlay): its rings carry the inner
// Ethernet frames; the kernel's IPv4 stack carries them to and from the remote endpoints (routing,
// ARP, fragmentation are the kernel's). On the wire it is what Linux's vxlan device sends: UDP to port
// 4789 with checksum 0, the VXLAN header with the I flag, DF clear, TTL 64 (1 to a multicast group).
// rx: a raw IPPROTO_UDP socket whose classic BPF filter passes only UDP to dstport with this VNI, so
//     several ports (VNIs) share one host and port; recvmmsg puts IP, UDP and VXLAN headers in a side
//     buffer and the inner frame at the slot's buffer. The sender's address is learned for the inner
//     source MAC (Linux's vxlan `learning`).
// tx: sendmmsg of [UDP + VXLAN header, inner frame] to the endpoint learned for the destination MAC,
//     or, for broadcast, multicast and unknown destinations, to every `remote` (head-end replication)
//     or the `group`, as Linux's vxlan floods. A `remote` that is an address of this host is skipped,
//     so every host of a segment can be given the same list.
// vnet=1: a virtio-net header before every frame both ways (hdrLen 10), so the port joins a switch of
// vnet=1 packet: ports: what arrives carries an empty header; what is sent may ask for TCP segmentation
// (TSO) or a partial checksum, done here in software (src/packet/offload.ts) as a NIC would.
// What arrives may carry a partial inner checksum (a sender's kernel over a veth underlay never
// finishes it): passed on as partial with vnet=1, finished here otherwise.
// A UDP socket bound to the port (SO_REUSEPORT, a drop-all filter) holds it: the kernel sends no ICMP
// port-unreachable for the tunnel's packets, and a Linux vxlan device already on the port is refused.
import * as inet from "../../ffi/inet.ts";
import * as libc from "../../ffi/libc.ts";
import { VIRTIO_NET, VNET_HDR } from "../../ffi/tpacket.ts";
import { Fdb } from "../packet/fdb.ts";
import { formatIPv4, IPPROTO_UDP, IPV4_HLEN, parseIPv4 } from "../packet/ipv4.ts";
import {
  asTso,
  completeChecksum,
  PARTIAL,
  partialChecksum,
  TSO,
  tcpHeadersLen,
  tcpSegmentCount,
  writeTcpSegment,
} from "../packet/offload.ts";
import { TCP } from "../packet/tcp.ts";
import { UDP_HLEN } from "../packet/udp.ts";
import { flowSourcePort, parseVni, VNI_MAX, VXLAN_PORT, VXLAN_UDP_HLEN, writeVxlanHeader } from "../packet/vxlan.ts";
import { POLLIN, POLLOUT } from "../ring/layout.ts";
import { FdPoller } from "./fd-poll.ts";
import { IFNAME } from "./iface.ts";
import { PrivateRegion, ringBytes, writeRing } from "./local-rings.ts";
import { type ConfTable, NR_REG, type PortName, readConf } from "./name.ts";
import { ownBuffer, sockError, takeBackRx } from "./packet.ts";
import { abandonOpen, type Port, PortError } from "./port.ts";

/** virtio-net header fields are little-endian (x86, arm64: the host's order). */
const le16 = (u8: Uint8Array, o: number, v: number) => {
  u8[o] = v;
  u8[o + 1] = v >> 8;
};

const IPV4 = /^(?:[0-9]{1,3}\.){3}[0-9]{1,3}$/;
/** @conf keys of a vxlan: port. Addresses in `remote` are joined by '+' (',' separates keys). */
const VXLAN_CONF = {
  remote: { text: /^(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?:\+(?:[0-9]{1,3}\.){3}[0-9]{1,3})*$/, def: "", what: "A+B+..." },
  group: { text: IPV4, def: "", what: "an IPv4 multicast address" },
  local: { text: IPV4, def: "", what: "an IPv4 address of this host" },
  dev: { text: IFNAME, def: "", what: "an interface name" },
  dstport: { int: [VXLAN_PORT, 1, 65535] },
  ttl: { int: [0, 0, 255] },
  tos: { int: [0, 0, 255] },
  learning: { int: [1, 0, 1] },
  age: { int: [300, 1, 1_000_000] },
  slots: { int: [1024, 64, 65536] },
  buf_size: { int: [2048, 256, 65536] },
  vnet: { int: [0, 0, 1] },
  mtu: { int: [1450, 68, 65000] },
} as const satisfies ConfTable;

/** IP + UDP + VXLAN headers as a raw socket receives them (options-free IPv4). */
const RX_HDR = IPV4_HLEN + VXLAN_UDP_HLEN;
/** mmsghdrs form one array (sendmmsg/recvmmsg walk it); what each points at lies in a parallel one. */
const MSG = libc.MMSGHDR.size;
/** Room for one segment's Ethernet + IP + TCP headers (with options). */
const SEG_HDR = 192;
/** Per tx message: three iovecs (UDP + VXLAN header; frame or segment headers; segment payload), the
 * destination, the UDP + VXLAN header, a segment's headers. */
const TX_IOV = 3;
const TX_AUX = TX_IOV * libc.IOVEC.size + inet.SOCKADDR_IN.size + VXLAN_UDP_HLEN + SEG_HDR;
/** Per rx slot: two iovecs, the headers (padded). */
const RX_AUX = 2 * libc.IOVEC.size + 64;
/** Messages one sendmmsg carries. */
const TX_BATCH = 256;
/** How long txsync waits for room in the socket's send buffer before it counts the rest as dropped. */
const TX_STALL_MS = 100;

export interface VxlanConf {
  vni: number;
  remotes: number[];
  group: number;
  local: number;
  dev: string;
  dstport: number;
  ttl: number;
  tos: number;
  learning: boolean;
  age: number;
  slots: number;
  bufSize: number;
  vnet: boolean;
  mtu: number;
}

export function vxlanConf(pn: PortName): VxlanConf {
  const v = readConf(pn, VXLAN_CONF);
  const bad = (why: string) => new PortError(`bad port name '${pn.spec}': ${why}`);
  const vni = parseVni(pn.ifname);
  if (vni === null) throw bad(`VNI ${pn.ifname} is not a number 0..${VNI_MAX}`);
  if (pn.mode !== NR_REG.ALL_NIC && !(pn.mode === NR_REG.ONE_NIC && pn.ringId === 0))
    throw bad("a vxlan port has one ring each way (ring 0)");
  const addr = (s: string, key: string) => {
    try {
      return s ? parseIPv4(s) : 0;
    } catch {
      throw bad(`${key}=${s} is not an IPv4 address`);
    }
  };
  const remotes = v.remote ? v.remote.split("+").map((a) => addr(a, "remote")) : [];
  const group = addr(v.group, "group");
  if (group && group >>> 28 !== 0xe) throw bad(`group=${v.group} is not a multicast address (224.0.0.0/4)`);
  if (group && remotes.length) throw bad("remote and group exclude each other (as in Linux's vxlan)");
  if (group && !v.dev) throw bad("group needs dev=IFACE, the interface that joins it");
  if (remotes.some((r) => r >>> 28 === 0xe)) throw bad("a remote is unicast; a multicast address goes in group=");
  return {
    vni,
    remotes,
    group,
    local: addr(v.local, "local"),
    dev: v.dev,
    dstport: v.dstport,
    ttl: v.ttl,
    tos: v.tos,
    learning: v.learning === 1,
    age: v.age,
    slots: v.slots,
    bufSize: v.buf_size,
    vnet: v.vnet === 1,
    mtu: v.mtu,
  };
}

/** The kernel-side filter: UDP to `dstport` whose VXLAN header has the I flag and `vni` (data starts at the IP header). */
export function vxlanFilter(dstport: number, vni: number): inet.Insn[] {
  const { LD, LDX, ALU, JMP, RET, W, H, B, IND, MSH, K, AND, JEQ, JSET } = inet.BPF;
  return [
    [LDX | B | MSH, 0, 0, 0], // X = IP header length
    [LD | H | IND, 0, 0, 2], // UDP destination port
    [JMP | JEQ | K, 0, 5, dstport],
    [LD | W | IND, 0, 0, UDP_HLEN], // VXLAN flags word
    [JMP | JSET | K, 0, 3, 0x08000000],
    [LD | W | IND, 0, 0, UDP_HLEN + 4], // VNI << 8 | reserved
    [ALU | AND | K, 0, 0, 0xffffff00],
    [JMP | JEQ | K, 0, 1, (vni << 8) >>> 0],
    [RET | K, 0, 0, 0x40000],
    [RET | K, 0, 0, 0],
  ];
}

export class VxlanPort implements Port {
  readonly kind = "vxlan";
  readonly name: string;
  readonly memId: string;
  readonly txRings;
  readonly rxRings;
  readonly deviceRings = 1;
  readonly bufSize: number;
  /** A tunnel has no hardware address of its own. */
  readonly mac = new Uint8Array(6);
  readonly zeroCopy = false;
  readonly hdrLen: number;
  readonly conf: VxlanConf;
  /** Inner frames received longer than a buffer (delivered with len 0). */
  rxTruncated = 0;
  /** Frames not sent: shorter than an Ethernet header, or the send buffer stayed full for TX_STALL_MS. */
  txDropped = 0;
  /** Floods with nowhere to go (no remote, no group). */
  txNoDest = 0;
  /** vnet=1: frames asking for an offload this port does not do (UDP fragmentation/segmentation). */
  txUnsupportedGso = 0;
  /** Inner frames received longer than the MTU that could not be passed on (vnet=0, or not TCP). */
  rxOversize = 0;
  /** MAC -> remote endpoint (IPv4 address as an int32), learned from what arrives. */
  readonly fdb: Fdb;
  private readonly fd: number;
  private readonly holder: number;
  private readonly region: PrivateRegion;
  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;
  private readonly base: number;
  private readonly kTxMsg: number;
  private readonly kTxAux: number;
  private readonly kRxMsg: number;
  private readonly kRxAux: number;
  private readonly flood: Int32Array;
  private lastTx = 0;
  private lastRx = 0;
  private readonly poller: FdPoller;
  private readonly pollOut = new Uint8Array(8);
  private closed = false;

  constructor(pn: PortName) {
    const c = (this.conf = vxlanConf(pn));
    this.name = pn.spec;
    this.bufSize = c.bufSize;
    this.hdrLen = c.vnet ? VNET_HDR.size : 0;
    // a peer list may name every host of a segment, this one included (the same options everywhere)
    this.flood = Int32Array.from(c.group ? [c.group] : c.remotes.filter((r) => !inet.isLocalAddress(r)));
    // a tunnel with no other end would take frames and send none: refused here, not counted as sent
    if (!this.flood.length)
      throw new PortError(
        c.remotes.length
          ? `${pn.spec}: every remote is this host's own address; name the other end (remote=A[+B...])`
          : `${pn.spec}: a vxlan port needs its other end: @conf:remote=A[+B...] or @conf:group=G,dev=IF`,
      );
    this.fdb = new Fdb(12, c.age);
    const ifindex = c.dev ? libc.ifIndex(c.dev) : 0;
    if (c.dev && !ifindex) throw new PortError(`${pn.spec}: no such interface '${c.dev}' (dev=)`);

    // region: [4 KiB][tx ring][rx ring][tx buffers][rx buffers][tx mmsghdrs][their iovecs, addresses,
    //   headers][rx mmsghdrs][their iovecs and headers]
    const txRingOff = 4096,
      rxRingOff = txRingOff + ringBytes(c.slots),
      txBufOff = rxRingOff + ringBytes(c.slots),
      rxBufOff = txBufOff + c.slots * c.bufSize;
    this.kTxMsg = rxBufOff + c.slots * c.bufSize;
    this.kTxAux = this.kTxMsg + TX_BATCH * MSG;
    this.kRxMsg = this.kTxAux + TX_BATCH * TX_AUX;
    this.kRxAux = this.kRxMsg + c.slots * MSG;
    const total = this.kRxAux + c.slots * RX_AUX;

    let fd = -1,
      holder = -1,
      region: PrivateRegion | null = null;
    try {
      try {
        fd = libc.socket(inet.AF_INET, libc.SOCK_RAW, IPPROTO_UDP, "raw IPv4 socket");
      } catch (e) {
        throw sockError(pn.spec, e, "opening a raw IPv4 socket");
      }
      inet.attachFilter(fd, vxlanFilter(c.dstport, c.vni), "SO_ATTACH_FILTER (VNI filter)");
      if (c.local) libc.bind(fd, inet.sockaddrIn(c.local, 0), `local=${formatIPv4(c.local)}`);
      if (c.dev) inet.bindToDevice(fd, c.dev, `dev=${c.dev}`);
      libc.setsockoptInt(fd, inet.SOL_IP, inet.IP_MTU_DISCOVER, inet.IP_PMTUDISC_DONT, "IP_MTU_DISCOVER");
      if (c.ttl) libc.setsockoptInt(fd, inet.SOL_IP, inet.IP_TTL, c.ttl, "IP_TTL");
      if (c.tos) libc.setsockoptInt(fd, inet.SOL_IP, inet.IP_TOS, c.tos, "IP_TOS");
      if (c.group) {
        inet.joinGroup(fd, c.group, ifindex, `joining group ${formatIPv4(c.group)} on ${c.dev}`);
        inet.multicastInterface(fd, ifindex, "IP_MULTICAST_IF");
        libc.setsockoptInt(fd, inet.SOL_IP, inet.IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
        libc.setsockoptInt(fd, inet.SOL_IP, inet.IP_MULTICAST_TTL, c.ttl || 1, "IP_MULTICAST_TTL");
      }
      holder = libc.socket(inet.AF_INET, inet.SOCK_DGRAM, 0, "UDP socket");
      libc.setsockoptInt(holder, libc.SOL_SOCKET, inet.SO_REUSEPORT, 1, "SO_REUSEPORT");
      inet.attachFilter(holder, [[inet.BPF.RET | inet.BPF.K, 0, 0, 0]], "SO_ATTACH_FILTER (drop all)");
      try {
        libc.bind(holder, inet.sockaddrIn(c.group ? 0 : c.local, c.dstport), `UDP port ${c.dstport}`);
      } catch (e) {
        if (e instanceof libc.SysError && e.errno === inet.EADDRINUSE)
          throw new PortError(
            `${pn.spec}: UDP port ${c.dstport} is taken by something else on this host (a Linux vxlan device? ss -ulpn shows it)`,
          );
        throw e;
      }
      region = new PrivateRegion(total);
    } catch (e) {
      abandonOpen(pn.spec, e, [fd, holder], () => region?.release());
    }
    this.fd = fd;
    this.holder = holder;
    this.region = region;
    const mem = region.mem;
    this.u8 = new Uint8Array(mem);
    this.u32 = new Uint32Array(mem);
    this.base = region.base as number;
    this.memId = `vxlan:${c.vni}:${fd}`;
    const ring = (off: number, bufOff: number, dir: 0 | 1) =>
      writeRing(mem, off, { slots: c.slots, bufBase: bufOff, bufStride: c.bufSize, dir, ringid: 0, firstBuf: 0 });
    this.txRings = [ring(txRingOff, txBufOff, 0)];
    this.rxRings = [ring(rxRingOff, rxBufOff, 1)];
    this.prepareMessages();
    this.poller = new FdPoller([fd], (_, ev) => ev & (POLLIN | POLLOUT));
    const pv = new DataView(this.pollOut.buffer);
    pv.setInt32(0, fd, true);
    pv.setInt16(4, POLLOUT, true);
  }

  /** Fixed parts of every message: iovec pointers, the VXLAN header; rx iovecs over each slot's buffer. */
  private prepareMessages(): void {
    const dv = new DataView(this.region.mem),
      c = this.conf,
      base = this.base;
    const { MMSGHDR: M, MSGHDR: H, IOVEC: V } = libc;
    for (let k = 0; k < TX_BATCH; k++) {
      const m = this.kTxMsg + k * M.size,
        iov = this.kTxAux + k * TX_AUX,
        sa = iov + TX_IOV * V.size,
        hdr = sa + inet.SOCKADDR_IN.size;
      dv.setBigUint64(m + H.msg_name, BigInt(base + sa), true);
      dv.setUint32(m + H.msg_namelen, inet.SOCKADDR_IN.size, true);
      dv.setBigUint64(m + H.msg_iov, BigInt(base + iov), true);
      dv.setBigUint64(m + H.msg_iovlen, BigInt(TX_IOV), true);
      dv.setBigUint64(iov + V.iov_base, BigInt(base + hdr), true);
      dv.setBigUint64(iov + V.iov_len, BigInt(VXLAN_UDP_HLEN), true);
      inet.writeSockaddrIn(this.u8, sa, 0, c.dstport);
      this.u8[hdr + 2] = c.dstport >>> 8;
      this.u8[hdr + 3] = c.dstport;
      writeVxlanHeader(this.u8, hdr + UDP_HLEN, c.vni);
    }
    const rx = this.rxRings[0];
    for (let j = 0; j < c.slots; j++) {
      const m = this.kRxMsg + j * M.size,
        iov = this.kRxAux + j * RX_AUX,
        hdr = iov + 2 * V.size;
      dv.setBigUint64(m + H.msg_iov, BigInt(base + iov), true);
      dv.setBigUint64(m + H.msg_iovlen, 2n, true);
      dv.setBigUint64(iov + V.iov_base, BigInt(base + hdr), true);
      dv.setBigUint64(iov + V.iov_len, BigInt(RX_HDR), true);
      dv.setBigUint64(iov + V.size + V.iov_base, BigInt(base + rx.buf(j) + this.hdrLen), true);
      dv.setBigUint64(iov + V.size + V.iov_len, BigInt(c.bufSize - this.hdrLen), true);
    }
  }

  get mem(): ArrayBuffer {
    return this.region.mem;
  }
  get pollFd(): number {
    return this.fd;
  }
  /** Nothing is counted for a raw socket's queue; see rxTruncated and the kernel's /proc/net/raw. */
  rxDrops(): number {
    return 0;
  }

  /** Where message k's scratch for a segment's headers lies (region offset). */
  private segHeaders(k: number): number {
    return this.kTxAux + k * TX_AUX + TX_IOV * libc.IOVEC.size + inet.SOCKADDR_IN.size + VXLAN_UDP_HLEN;
  }

  /** Queue message k to `dst`: the bytes at region offsets a (alen) and then b (blen). */
  private message(k: number, dst: number, sport: number, a: number, alen: number, b: number, blen: number): void {
    const u8 = this.u8,
      iov1 = this.kTxAux + k * TX_AUX + libc.IOVEC.size,
      sa = iov1 + 2 * libc.IOVEC.size,
      hdr = sa + inet.SOCKADDR_IN.size;
    u8[sa + 4] = dst >>> 24;
    u8[sa + 5] = dst >>> 16;
    u8[sa + 6] = dst >>> 8;
    u8[sa + 7] = dst;
    u8[hdr] = sport >>> 8;
    u8[hdr + 1] = sport;
    const ulen = VXLAN_UDP_HLEN + alen + blen;
    u8[hdr + 4] = ulen >>> 8;
    u8[hdr + 5] = ulen;
    this.iovec(iov1, a, alen);
    this.iovec(iov1 + libc.IOVEC.size, b, blen);
  }

  private iovec(at: number, off: number, len: number): void {
    const u32 = this.u32,
      p = this.base + off;
    u32[at >> 2] = p >>> 0; // iov_base, low and high words
    u32[(at >> 2) + 1] = Math.floor(p / 0x100000000);
    u32[(at + 8) >> 2] = len; // iov_len (below 4 GiB: the high word stays 0)
  }

  /** Send messages [0, n); wait a little for room when the socket's buffer is full. */
  private flush(n: number): void {
    let sent = 0;
    const deadline = performance.now() + TX_STALL_MS;
    while (sent < n) {
      const r = libc.sendmmsg(this.fd, this.base + this.kTxMsg + sent * MSG, n - sent);
      if (r > 0) {
        sent += r;
        continue;
      }
      if (r !== -libc.EAGAIN && r !== -libc.ENOBUFS && r !== -libc.EINTR) {
        // one message the kernel refuses (no route to a remote) must not stop the others
        this.txDropped++;
        sent++;
        continue;
      }
      if (performance.now() > deadline) {
        this.txDropped += n - sent;
        return;
      }
      libc.poll(this.pollOut, 1, 1); // room in the send buffer, or 1 ms
    }
  }

  txsync(): void {
    const ring = this.txRings[0],
      u8 = this.u8,
      n = ring.numSlots,
      head = ring.head;
    let j = this.lastTx;
    if (j === head) return;
    const bad = ring.badHead(j);
    if (bad) throw new PortError(`txsync on ${this.name}: ${bad}`);
    const now = (Date.now() / 1000) | 0,
      flood = this.flood,
      hdr = this.hdrLen;
    let k = 0;
    for (; j !== head; j = j + 1 === n ? 0 : j + 1) {
      ownBuffer(this.name, ring, j, "tx");
      const buf = ring.buf(j),
        frame = buf + hdr,
        len = ring.len(j) - hdr;
      if (len < 14) {
        this.txDropped++;
        continue;
      }
      let segs = 0,
        hlen = 0,
        mss = 0;
      if (hdr) {
        const gso = u8[buf + VNET_HDR.gso_type] & ~VIRTIO_NET.GSO_ECN;
        if (gso === VIRTIO_NET.GSO_TCPV4 || gso === VIRTIO_NET.GSO_TCPV6) {
          hlen = tcpHeadersLen(u8, frame, len);
          mss = u8[buf + VNET_HDR.gso_size] | (u8[buf + VNET_HDR.gso_size + 1] << 8);
          if (hlen < 0 || mss === 0 || hlen > SEG_HDR) {
            this.txDropped++;
            continue;
          }
          segs = tcpSegmentCount(len, hlen, mss);
        } else if (gso !== VIRTIO_NET.GSO_NONE) {
          this.txUnsupportedGso++;
          continue;
        } else if (u8[buf + VNET_HDR.flags] & VIRTIO_NET.F_NEEDS_CSUM) {
          const start = u8[buf + VNET_HDR.csum_start] | (u8[buf + VNET_HDR.csum_start + 1] << 8),
            off = u8[buf + VNET_HDR.csum_offset] | (u8[buf + VNET_HDR.csum_offset + 1] << 8);
          if (start + off + 2 > len) {
            this.txDropped++;
            continue;
          }
          completeChecksum(u8, frame, len, start, off);
        }
      }
      const sport = flowSourcePort(u8, frame, len);
      const to = u8[frame] & 1 ? -1 : this.fdb.lookup(u8, frame, now);
      const dests = to !== -1 ? 1 : flood.length;
      if (!dests) this.txNoDest++;
      for (let d = 0; d < dests; d++) {
        const dst = to !== -1 ? to >>> 0 : flood[d] >>> 0;
        if (!segs) {
          if (k === TX_BATCH) k = this.flushed(k);
          this.message(k++, dst, sport, frame, len, 0, 0);
          continue;
        }
        for (let i = 0; i < segs; i++) {
          if (k === TX_BATCH) k = this.flushed(k);
          const h = this.segHeaders(k);
          const plen = writeTcpSegment(u8, frame, len, hlen, mss, i, h);
          this.message(k++, dst, sport, h, hlen, frame + hlen + i * mss, plen);
        }
      }
    }
    if (k) this.flush(k);
    this.lastTx = head;
    ring.tail = head === 0 ? n - 1 : head - 1; // sent (or counted): every slot is free again
  }

  private flushed(k: number): number {
    this.flush(k);
    return 0;
  }

  rxsync(): void {
    const ring = this.rxRings[0],
      n = ring.numSlots,
      head = ring.head;
    this.lastRx = takeBackRx(this.name, ring, this.lastRx);
    const u8 = this.u8,
      u32 = this.u32,
      s0 = ring.s0,
      learn = this.conf.learning,
      hdr = this.hdrLen,
      mtu = this.conf.mtu,
      maxFrame = mtu + 18, // Ethernet header and a VLAN tag
      now = (Date.now() / 1000) | 0;
    let tail = ring.tail;
    let free = (head + n - 1 - tail) % n;
    while (free > 0) {
      const run = Math.min(free, n - tail);
      const r = libc.recvmmsg(this.fd, this.base + this.kRxMsg + tail * MSG, run);
      if (r <= 0) {
        if (r === 0 || r === -libc.EAGAIN || r === -libc.EINTR) break;
        throw new PortError(`${this.name}: recvmmsg failed: ${libc.strerror(-r)}`);
      }
      for (let k = tail; k < tail + r; k++) {
        const m = this.kRxMsg + k * MSG,
          ip = this.kRxAux + k * RX_AUX + 2 * libc.IOVEC.size,
          buf = ring.buf(k),
          frame = buf + hdr;
        let len = u32[(m + libc.MMSGHDR.msg_len) >> 2] - RX_HDR;
        const extra = (u8[ip] & 0xf) * 4 - IPV4_HLEN; // IP options push the inner frame into the buffer
        if (extra > 0) {
          u8.copyWithin(frame, frame + extra, frame + len);
          len -= extra;
        }
        if (u32[(m + libc.MSGHDR.msg_flags) >> 2] & libc.MSG_TRUNC || len < 14) {
          if (len >= 14) this.rxTruncated++;
          u32[s0 + (k << 2) + 1] = 0;
          continue;
        }
        if (learn && (u8[frame + 6] & 1) === 0) {
          const src = (u8[ip + 12] << 24) | (u8[ip + 13] << 16) | (u8[ip + 14] << 8) | u8[ip + 15] | 0;
          this.fdb.learn(u8, frame + 6, src, now);
        }
        // a checksum left partial by a sender whose kernel never finished it (tunnels over veths) is
        // passed on as partial (vnet=1: the next kernel treats it as its own) or finished here
        const partial = partialChecksum(u8, frame, len);
        if (len > maxFrame) {
          // a sender's GSO frame that crossed a veth underlay whole: vnet=1 passes it on as one
          if (!hdr || !asTso(u8, frame, len, mtu)) {
            this.rxOversize++;
            u32[s0 + (k << 2) + 1] = 0;
            continue;
          }
          u8.fill(0, buf, frame);
          u8[buf + VNET_HDR.flags] = VIRTIO_NET.F_NEEDS_CSUM;
          u8[buf + VNET_HDR.gso_type] = TSO.v6 ? VIRTIO_NET.GSO_TCPV6 : VIRTIO_NET.GSO_TCPV4;
          le16(u8, buf + VNET_HDR.hdr_len, TSO.hdrLen);
          le16(u8, buf + VNET_HDR.gso_size, TSO.mss);
          le16(u8, buf + VNET_HDR.csum_start, TSO.start);
          le16(u8, buf + VNET_HDR.csum_offset, TCP.sum);
        } else if (hdr) {
          u8.fill(0, buf, frame);
          if (partial) {
            u8[buf + VNET_HDR.flags] = VIRTIO_NET.F_NEEDS_CSUM;
            le16(u8, buf + VNET_HDR.csum_start, PARTIAL.start);
            le16(u8, buf + VNET_HDR.csum_offset, PARTIAL.offset);
          }
        } else if (partial) completeChecksum(u8, frame, PARTIAL.end, PARTIAL.start, PARTIAL.offset);
        u32[s0 + (k << 2) + 1] = len + hdr; // len, flags 0
      }
      tail = tail + r === n ? 0 : tail + r;
      free -= r;
      if (r < run) break;
    }
    ring.tail = tail;
  }

  poll(events: number, timeoutMs: number): number {
    return this.poller.poll(this, events, timeoutMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
    libc.close(this.holder);
    this.region.release();
  }
}
