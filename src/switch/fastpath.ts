// The kernel fast path of a switch over AF_PACKET host ends (a container network): once a unicast
// frame's destination is learned on another such port and its source on the port it came by, tc on
// that port redirects it to the destination's interface in the sender's own softirq, as a Linux bridge forwards: GSO frames and checksum
// state intact, no worker wake-up, no copy. The user-space switch stays the control plane and the
// slow path: it sees broadcasts and frames to unknown stations, learns from them, and writes each
// station learned on a fast port into a BPF hash map (MAC -> ifindex, slot); a socket filter on every
// fast port keeps the frames tc will redirect away from the switch, so nothing arrives twice. The tc
// program counts per port in a per-CPU array, added to the switch's own port counters. Broadcast and
// multicast frames from a station learned on the port they come by are flooded by tc too (a clone to
// every other fast port, from an array the worker keeps), so a new container's first ARP need not
// wake a worker when the switch was told its MAC as it joined (SwitchHandle.addPort's stations).
// Frames in flight at the instant a station or port is learned or forgotten may take either path
// (one is duplicated or lost, at most, per such change). Stations on other ports stay in user space.

import {
  asm,
  BPF_FUNC,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_PROG_TYPE_SCHED_CLS,
  BPF_PROG_TYPE_SOCKET_FILTER,
  mapCreate,
  mapDelete,
  mapKeys,
  mapLookup,
  mapUpdate,
  OP,
  possibleCpus,
  progLoad,
  SK_BUFF,
  TC_ACT_OK,
  TC_ACT_SHOT,
  tcAttachIngress,
} from "../../ffi/bpf.ts";
import * as libc from "../../ffi/libc.ts";
import type { PacketPort } from "../port/packet.ts";
import type { Port } from "../port/port.ts";
import { MAX_PORTS, slotOf } from "./layout.ts";

/** The kernel objects of one switch's fast path: the station map, the port counters, the two programs. */
export interface FastPathFds {
  map: number;
  counters: number;
  /** The fast ports to flood to: [0] = {count}, then {ifindex, slot} each. */
  ports: number;
  tc: number;
  sock: number;
}

const KEY = 8; // the MAC, zero-padded
const STATIONS = 4096;
/** Station map value: the port's interface index and its switch slot (u32 each). */
const STATION = { ifindex: 0, slot: 4, size: 8 } as const;
/** Per-CPU counters per port slot: frames the kernel took from the port, and gave it (u64 each). */
const KCTR = { rx: 0, tx: 8, rxBytes: 16, txBytes: 24, size: 32 } as const;
/** From a packet count's field to its byte count's (rx -> rxBytes, tx -> txBytes). */
const BYTES_AFTER = KCTR.rxBytes - KCTR.rx;
const HEAD = 37; // instruction slots of lookupDest
/** Flood array value: a fast port's interface index and slot (entry 0: the count in `ifindex`). */
const FLOOD = { ifindex: 0, slot: 4, size: 8 } as const;
/** The most ports the kernel floods to: its loop's bound, which the verifier walks whole (at ~3
 * branches an iteration, 8192 at most). With more fast ports the count is 0: floods stay in user space. */
export const FLOOD_MAX = 1024;

/**
 * Shared head of both programs. The frame takes the fast path only when its destination is learned
 * on another port and its source on this one: a station the switch has not learned yet (or that
 * moved) goes through user space first, so learning is never starved. Falls through with r7 = the
 * source's slot, r8 = the destination's ifindex, r9 = its slot; else jumps over the `skip`
 * instructions that follow the head (to the program's "pass"), but for a destination not in the map
 * from a source learned here, over `noDest` instructions only (to the program's flood section).
 */
function lookupDest(map: number, skip: number, noDest = skip): number[] {
  const to = (k: number) => HEAD + skip - k - 1; // jump offsets count from the next instruction
  const load = (off: number, at: number) => [
    ...asm.mov(1, 6), // r1 = skb
    ...asm.movImm(2, off), // r2 = offset in the frame
    ...asm.mov(3, 10), // r3 = r10
    ...asm.addImm(3, at), // r3 += at (the key)
    ...asm.movImm(4, 6), // r4 = 6
    ...asm.call(BPF_FUNC.skb_load_bytes),
  ];
  const head = [
    ...asm.mov(6, 1), // 0: r6 = r1
    ...asm.storeImm(OP.DW, 10, -8, 0), // 1: source key = 0
    ...asm.storeImm(OP.DW, 10, -16, 0), // 2: destination key = 0
    ...load(0, -16), // 3-8: destination MAC
    ...asm.jneImm(0, 0, to(9)), // 9: if r0 != 0 goto pass (runt frame)
    ...load(6, -8), // 10-15: source MAC
    ...asm.jneImm(0, 0, to(16)), // 16
    ...lookup(map, -8), // 17-21: the source
    ...asm.jeqImm(0, 0, to(22)), // 22: if r0 == 0 goto pass (source not learned)
    ...asm.load(OP.W, 7, 0, STATION.slot), // 23: r7 = its slot
    ...asm.load(OP.W, 1, 0, STATION.ifindex), // 24: r1 = its ifindex
    ...asm.load(OP.W, 2, 6, SK_BUFF.ingress_ifindex), // 25: r2 = skb->ingress_ifindex
    ...asm.jne(1, 2, to(26)), // 26: if r1 != r2 goto pass (learned elsewhere: moved)
    ...lookup(map, -16), // 27-31: the destination
    ...asm.jeqImm(0, 0, HEAD + noDest - 32 - 1), // 32: if r0 == 0 goto flood (unknown, broadcast, multicast)
    ...asm.load(OP.W, 8, 0, STATION.ifindex), // 33: r8 = its ifindex
    ...asm.load(OP.W, 9, 0, STATION.slot), // 34: r9 = its slot
    ...asm.load(OP.W, 2, 6, SK_BUFF.ingress_ifindex), // 35
    ...asm.jeq(8, 2, to(36)), // 36: if r8 == r2 goto pass (learned here: the switch drops it)
  ];
  if (head.length !== HEAD * 8) throw new Error("fastpath: head length");
  return head;
}

/** r0 = lookup(map, r10 + at): 5 slots. */
function lookup(map: number, at: number): number[] {
  return [
    ...asm.loadMap(1, map), // r1 = map (ld_imm64, two slots)
    ...asm.mov(2, 10), // r2 = r10
    ...asm.addImm(2, at), // r2 += at
    ...asm.call(BPF_FUNC.map_lookup_elem),
  ];
}

/** counters[slot in reg].field += 1 (this CPU's copy): 11 slots. */
function bump(counters: number, reg: number, field: number): number[] {
  return [
    ...asm.store(OP.W, 10, reg, -20), // *(u32 *)(r10 - 20) = slot
    ...lookup(counters, -20),
    ...asm.jeqImm(0, 0, 7), // if r0 == 0 skip
    ...asm.load(OP.DW, 1, 0, field), // r1 = *(u64 *)(r0 + field)
    ...asm.addImm(1, 1), // r1 += 1
    ...asm.store(OP.DW, 0, 1, field), // *(u64 *)(r0 + field) = r1
    ...asm.load(OP.W, 1, 6, 0), // r1 = skb->len (a GSO frame's whole length)
    ...asm.load(OP.DW, 2, 0, field + BYTES_AFTER), // r2 = its byte count
    ...asm.add(2, 1), // r2 += r1
    ...asm.store(OP.DW, 0, 2, field + BYTES_AFTER),
  ];
}

/**
 * The flood section (r7 = the source's slot, the destination MAC at r10 - 16, not in the map): not a
 * group address -> `pass` (unknown unicast: the switch learns and floods it); else counted rx on the
 * source's slot and cloned (bpf_clone_redirect, egress) to every fast port in the flood array but
 * the one it came by, each counted tx, then dropped here (TC_ACT_SHOT). The loop is bounded by the
 * array's size for the verifier. `pass` is the instruction after the section.
 */
function floodInsns(f: Pick<FastPathFds, "counters" | "ports">): number[] {
  const body = (pass: number) => {
    const at = (k: number, target: number) => target - k - 1;
    const ins: number[][] = [];
    const I = (...x: number[]) => ins.push(x);
    I(...asm.load(OP.B, 1, 10, -16)); // 0: r1 = the destination's first byte
    I(...asm.andImm(1, 1)); // 1: r1 &= 1 (the group bit)
    const toPass = ins.length;
    I(...asm.jeqImm(1, 0, 0)); // 2: if r1 == 0 goto pass (patched below)
    I(...asm.load(OP.W, 8, 6, SK_BUFF.ingress_ifindex)); // r8 = where it came from
    I(...asm.storeImm(OP.W, 10, -24, 0)); // key 0: the count
    for (const x of chunk(lookup(f.ports, -24))) I(...x);
    const toPass2 = ins.length;
    I(...asm.jeqImm(0, 0, 0)); // if r0 == 0 goto pass
    I(...asm.load(OP.W, 9, 0, FLOOD.ifindex)); // r9 = count
    const toPass3 = ins.length;
    I(...asm.jeqImm(9, 0, 0)); // if count == 0 goto pass (flooding off: the switch floods)
    for (const x of chunk(bump(f.counters, 7, KCTR.rx))) I(...x);
    I(...asm.movImm(7, 1)); // r7 = i = 1
    const loop = ins.length;
    const toShot2 = ins.length;
    I(...asm.jgt(7, 9, 0)); // if i > count goto shot
    const toShot3 = ins.length;
    I(...asm.jgtImm(7, FLOOD_MAX, 0)); // if i > FLOOD_MAX goto shot (the verifier's bound)
    I(...asm.store(OP.W, 10, 7, -24)); // key i
    for (const x of chunk(lookup(f.ports, -24))) I(...x);
    const toNext1 = ins.length;
    I(...asm.jeqImm(0, 0, 0)); // if r0 == 0 goto next
    I(...asm.load(OP.W, 2, 0, FLOOD.ifindex)); // r2 = its ifindex
    const toNext2 = ins.length;
    I(...asm.jeq(2, 8, 0)); // if r2 == r8 goto next (not back where it came from)
    I(...asm.store(OP.W, 10, 2, -28)); // keep the ifindex across the count
    I(...asm.load(OP.W, 1, 0, FLOOD.slot)); // r1 = its slot
    for (const x of chunk(bump(f.counters, 1, KCTR.tx))) I(...x);
    I(...asm.mov(1, 6)); // r1 = skb
    I(...asm.load(OP.W, 2, 10, -28)); // r2 = ifindex
    I(...asm.movImm(3, 0)); // r3 = 0 (egress)
    I(...asm.call(BPF_FUNC.clone_redirect));
    const next = ins.length;
    I(...asm.addImm(7, 1)); // i += 1
    const back = ins.length;
    I(...asm.ja(0)); // goto loop
    const shot = ins.length;
    I(...asm.movImm(0, TC_ACT_SHOT));
    I(...asm.exit());
    // ld_imm64 takes two slots: offsets count slots, so count them per instruction
    const slots = ins.map((x) => x.length / 8);
    const slotAt = (k: number) => slots.slice(0, k).reduce((a, b) => a + b, 0);
    const total = slotAt(ins.length);
    const patch = (k: number, target: number) => {
      const off = at(slotAt(k), target);
      ins[k][2] = off & 0xff;
      ins[k][3] = (off >> 8) & 0xff;
    };
    patch(toPass, total + pass);
    patch(toPass2, total + pass);
    patch(toPass3, total + pass);
    for (const k of [toShot2, toShot3]) patch(k, slotAt(shot));
    for (const k of [toNext1, toNext2]) patch(k, slotAt(next));
    patch(back, slotAt(loop));
    return ins.flat();
  };
  return body(0);
}

/** Split a run of instruction bytes into instructions (ld_imm64: one of two slots). */
function chunk(code: number[]): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < code.length; ) {
    const n = code[i] === (OP.LD | OP.IMM | OP.DW) ? 16 : 8;
    out.push(code.slice(i, i + n));
    i += n;
  }
  return out;
}

/** tc ingress: known unicast -> counted, bpf_redirect(ifindex, 0) (egress of the destination); group
 * frames from a station learned here -> flooded (floodInsns); else pass. */
export function tcInsns(f: Pick<FastPathFds, "map" | "counters" | "ports">): Uint8Array {
  const tail = [
    ...bump(f.counters, 7, KCTR.rx),
    ...bump(f.counters, 9, KCTR.tx),
    ...asm.mov(1, 8), // r1 = r8
    ...asm.movImm(2, 0), // r2 = 0 (egress)
    ...asm.call(BPF_FUNC.redirect), // r0 = bpf_redirect(r1, 0)
    ...asm.exit(), // exit
  ];
  const flood = floodInsns(f);
  return Uint8Array.from([
    ...lookupDest(f.map, (tail.length + flood.length) / 8, tail.length / 8),
    ...tail,
    ...flood,
    ...asm.movImm(0, TC_ACT_OK), // pass: r0 = TC_ACT_OK
    ...asm.exit(),
  ]);
}

/** Socket filter: what tc redirects or floods is dropped (0); the rest kept whole (skb->len: GSO
 * frames too). */
export function sockInsns(f: Pick<FastPathFds, "map" | "ports">): Uint8Array {
  return Uint8Array.from([
    ...lookupDest(f.map, 14, 2),
    ...asm.movImm(0, 0), // 0: r0 = 0, drop (known unicast)
    ...asm.exit(), // 1: exit
    ...asm.load(OP.B, 1, 10, -16), // 2: no destination: r1 = its first byte
    ...asm.andImm(1, 1), // 3: r1 &= 1 (the group bit)
    ...asm.jeqImm(1, 0, 9), // 4: if r1 == 0 goto pass (unknown unicast)
    ...asm.storeImm(OP.W, 10, -24, 0), // 5: key 0: the flood count
    ...lookup(f.ports, -24), // 6-10
    ...asm.jeqImm(0, 0, 2), // 11: if r0 == 0 goto pass
    ...asm.load(OP.W, 1, 0, FLOOD.ifindex), // 12: r1 = count
    ...asm.jneImm(1, 0, -14), // 13: if count != 0 goto drop (tc floods it)
    ...asm.load(OP.W, 0, 6, SK_BUFF.len), // 14: pass: r0 = skb->len
    ...asm.exit(),
  ]);
}

/** Make the maps and load both programs (main thread; the fds serve every worker of the process). */
export function createFastPath(): FastPathFds {
  const fds: number[] = [];
  try {
    const map = mapCreate(BPF_MAP_TYPE_HASH, "bm_stations", KEY, STATION.size, STATIONS);
    fds.push(map);
    const counters = mapCreate(BPF_MAP_TYPE_PERCPU_ARRAY, "bm_fast_ctr", 4, KCTR.size, MAX_PORTS);
    fds.push(counters);
    const ports = mapCreate(BPF_MAP_TYPE_ARRAY, "bm_fast_ports", 4, FLOOD.size, MAX_PORTS + 1);
    fds.push(ports);
    const tc = progLoad(BPF_PROG_TYPE_SCHED_CLS, "bm_fast_tc", tcInsns({ map, counters, ports }));
    fds.push(tc);
    const sock = progLoad(BPF_PROG_TYPE_SOCKET_FILTER, "bm_fast_sock", sockInsns({ map, ports }));
    return { map, counters, ports, tc, sock };
  } catch (e) {
    for (const fd of fds) libc.close(fd);
    throw new Error(`kernel fast path: ${(e as Error).message} (needs root, libbpf and a kernel with tc BPF)`);
  }
}

export function closeFastPath(f: FastPathFds): void {
  for (const fd of [f.sock, f.tc, f.ports, f.counters, f.map]) libc.close(fd);
}

const perCpu = () => new BigUint64Array((possibleCpus() * KCTR.size) / 8);

/** Stations in the kernel's map now (control path: walks the map). */
export function kernelStations(f: FastPathFds): number {
  return mapKeys(f.map, KEY).length;
}

export interface KernelCounts {
  rx: number;
  tx: number;
  rxBytes: number;
  txBytes: number;
}

/** Frames (and their bytes) the kernel forwarded from and to the port in `slot` since it joined (control path). */
export function kernelPortCounts(f: FastPathFds, slot: number): KernelCounts {
  const v = perCpu();
  const r = { rx: 0, tx: 0, rxBytes: 0, txBytes: 0 };
  if (!mapLookup(f.counters, new Uint8Array(Uint32Array.of(slot).buffer), new Uint8Array(v.buffer))) return r;
  const per = KCTR.size / 8;
  for (let c = 0; c < v.length; c += per) {
    r.rx += Number(v[c + KCTR.rx / 8]);
    r.tx += Number(v[c + KCTR.tx / 8]);
    r.rxBytes += Number(v[c + KCTR.rxBytes / 8]);
    r.txBytes += Number(v[c + KCTR.txBytes / 8]);
  }
  return r;
}

/** A worker's side: attaches ports, keeps the map in step with what the switch learns. */
export class FastPathPorts {
  private readonly ifindexAt = new Int32Array(MAX_PORTS); // 0: not a fast port
  private readonly detachAt: ((() => void) | null)[] = new Array(MAX_PORTS).fill(null);
  private readonly key = new Uint8Array(KEY);
  private readonly val = new Uint32Array(STATION.size / 4);
  private readonly valBytes = new Uint8Array(this.val.buffer);
  /** The slots of the fast ports, in the flood array's order. */
  private readonly flood: number[] = [];
  /** Ports of other kinds (shm, xdp): the kernel cannot reach them, so while any is on the switch
   * the kernel floods nothing (count 0) and every flood goes through the switch, to every port. */
  private readonly slow = new Set<number>();
  private floodCount(): number {
    return this.flood.length <= FLOOD_MAX && this.slow.size === 0 ? this.flood.length : 0;
  }

  constructor(readonly fds: FastPathFds) {}

  /** Put a packet port on the fast path (counters zeroed, socket filter, tc program); other kinds stay user space. */
  attach(id: number, port: Port): void {
    if (port.kind !== "packet") {
      this.slow.add(slotOf(id));
      if (this.slow.size === 1) this.writeFlood();
      return;
    }
    const p = port as PacketPort,
      s = slotOf(id);
    const ifindex = libc.ifIndex(p.ifname);
    if (!ifindex) throw new Error(`${p.name}: no interface '${p.ifname}'`);
    const zero = perCpu();
    mapUpdate(this.fds.counters, new Uint8Array(Uint32Array.of(s).buffer), new Uint8Array(zero.buffer));
    libc.setsockoptInt(p.pollFd, libc.SOL_SOCKET, libc.SO_ATTACH_BPF, this.fds.sock, "SO_ATTACH_BPF");
    this.detachAt[s] = tcAttachIngress(ifindex, this.fds.tc, p.name);
    this.ifindexAt[s] = ifindex;
    this.flood.push(s);
    this.writeFlood();
  }

  /** The flood array from `flood`: entries first, then the count (a frame meanwhile sees the old
   * count or the new, never a hole). */
  private writeFlood(): void {
    const v = new Uint32Array(FLOOD.size / 4),
      b = new Uint8Array(v.buffer);
    this.flood.forEach((slot, i) => {
      v[FLOOD.ifindex / 4] = this.ifindexAt[slot];
      v[FLOOD.slot / 4] = slot;
      mapUpdate(this.fds.ports, new Uint8Array(Uint32Array.of(i + 1).buffer), b);
    });
    v[FLOOD.ifindex / 4] = this.floodCount();
    v[FLOOD.slot / 4] = 0;
    mapUpdate(this.fds.ports, new Uint8Array(Uint32Array.of(0).buffer), b);
  }

  /** The switch learned (or moved) the station at u8[off..off+6) on port `id`. */
  learned(u8: Uint8Array, off: number, id: number): void {
    const key = this.key,
      s = slotOf(id);
    for (let k = 0; k < 6; k++) key[k] = u8[off + k];
    const ifindex = this.ifindexAt[s];
    if (ifindex) {
      this.val[STATION.ifindex / 4] = ifindex;
      this.val[STATION.slot / 4] = s;
      mapUpdate(this.fds.map, key, this.valBytes);
    } else mapDelete(this.fds.map, key);
  }

  /**
   * Forget in the kernel the stations the learning table no longer knows (aged out: silent for the
   * switch's ageing time). Frames a station sends by the fast path never reach the switch, so an
   * active one ages out too: its next frame goes through user space, is learned, and the station
   * returns to the map, one frame per ageing time. Control path (walks the map); returns how many left.
   */
  expire(known: (mac: Uint8Array) => boolean): number {
    let n = 0;
    for (const k of mapKeys(this.fds.map, KEY)) if (!known(k) && mapDelete(this.fds.map, k)) n++;
    return n;
  }

  /** Take a port off the fast path: its stations first (nothing is redirected to it), then its tc program. */
  detach(id: number): void {
    const s = slotOf(id),
      ifindex = this.ifindexAt[s];
    if (this.slow.delete(s) && this.slow.size === 0) this.writeFlood();
    if (!ifindex) return;
    for (const k of mapKeys(this.fds.map, KEY))
      if (mapLookup(this.fds.map, k, this.valBytes) && this.val[STATION.ifindex / 4] === ifindex)
        mapDelete(this.fds.map, k);
    const at = this.flood.indexOf(s);
    if (at >= 0) {
      // the count first (shorter), then the entries moved up
      this.flood.splice(at, 1);
      const v = new Uint32Array([this.floodCount(), 0]);
      mapUpdate(this.fds.ports, new Uint8Array(Uint32Array.of(0).buffer), new Uint8Array(v.buffer));
      this.writeFlood();
    }
    this.ifindexAt[s] = 0;
    this.detachAt[s]?.();
    this.detachAt[s] = null;
  }
}
