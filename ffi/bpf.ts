// BPF through libbpf, programs written as raw instructions (no clang, no kernel BTF needed): maps,
// program loading, XDP and tc attachment, socket filters. Also the counting XDP_DROP program, the
// neutral receiver for benchmarks (count = packets that reached the interface's XDP hook, over CPUs).
import { dlopen, FFIType, ptr } from "bun:ffi";
import { readFileSync } from "node:fs";
import * as libc from "./libc.ts";

const { i32, u32, ptr: P, cstring, u64 } = FFIType;
export const BPF_PROG_TYPE_XDP = 6;
export const BPF_PROG_TYPE_SOCKET_FILTER = 1;
export const BPF_PROG_TYPE_SCHED_CLS = 3;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
/** Helper function numbers (include/uapi/linux/bpf.h). */
export const BPF_FUNC = { map_lookup_elem: 1, clone_redirect: 13, redirect: 23, skb_load_bytes: 26 } as const;
/** struct __sk_buff field offsets (linux/bpf.h). */
export const SK_BUFF = { len: 0, ingress_ifindex: 36 } as const;
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
/** struct bpf_tc_hook and struct bpf_tc_opts (bpf/libbpf.h): `sz` holds the struct's own size. */
export const TC_HOOK = { sz: 0, size: 24, ifindex: 8, attach_point: 12 } as const;
export const TC_OPTS = { sz: 0, size: 32, prog_fd: 8, flags: 12, prog_id: 16, handle: 20, priority: 24 } as const;
export const BPF_TC_F_REPLACE = 1;
/** Our tc filter's handle and priority: a filter there is one of ours (left by a crashed run) and is replaced. */
const TC_HANDLE = 0xb3a9,
  TC_PRIO = 0xb3a9;
export const BPF_TC_INGRESS = 1;
export const BPF_TC_EGRESS = 2;
export const XDP_FLAGS_DRV_MODE = 1 << 2;
export const XDP_FLAGS_SKB_MODE = 1 << 1;

function bpf() {
  return dlopen("libbpf.so.1", {
    bpf_map_create: { args: [u32, cstring, u32, u32, u32, P], returns: i32 },
    bpf_prog_load: { args: [u32, cstring, cstring, P, u64, P], returns: i32 },
    bpf_xdp_attach: { args: [i32, i32, u32, P], returns: i32 },
    bpf_xdp_detach: { args: [i32, u32, P], returns: i32 },
    bpf_map_lookup_elem: { args: [i32, P, P], returns: i32 },
    bpf_map_update_elem: { args: [i32, P, P, u64], returns: i32 },
    bpf_map_delete_elem: { args: [i32, P], returns: i32 },
    bpf_map_get_next_key: { args: [i32, P, P], returns: i32 },
    bpf_tc_hook_create: { args: [P], returns: i32 },
    bpf_tc_hook_destroy: { args: [P], returns: i32 },
    bpf_tc_attach: { args: [P, P], returns: i32 },
    bpf_tc_detach: { args: [P, P], returns: i32 },
    libbpf_set_print: { args: [P], returns: P },
  }).symbols;
}
let lib: ReturnType<typeof bpf> | null = null;
const B = () => {
  lib ??= bpf();
  return lib;
};

/** Opcode parts (include/uapi/linux/bpf_common.h, bpf.h): class | size or operation | source. */
export const OP = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  JMP: 0x05,
  ALU64: 0x07,
  W: 0x00,
  B: 0x10,
  DW: 0x18,
  IMM: 0x00,
  MEM: 0x60,
  K: 0x00,
  X: 0x08,
  ADD: 0x00,
  AND: 0x50,
  MOV: 0xb0,
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JNE: 0x50,
  CALL: 0x80,
  EXIT: 0x90,
  PSEUDO_MAP_FD: 1,
} as const;
type Size = typeof OP.W | typeof OP.B | typeof OP.DW;

/** struct bpf_insn: code, dst:4|src:4, s16 off, s32 imm. */
export function insn(code: number, dst: number, src: number, off: number, imm: number): number[] {
  return [
    code,
    (src << 4) | dst,
    off & 0xff,
    (off >> 8) & 0xff,
    imm & 0xff,
    (imm >> 8) & 0xff,
    (imm >> 16) & 0xff,
    (imm >>> 24) & 0xff,
  ];
}

/** The instructions our programs use, by name (each returns its 8-byte slots). */
export const asm = {
  /** dst = src */
  mov: (dst: number, src: number) => insn(OP.ALU64 | OP.MOV | OP.X, dst, src, 0, 0),
  /** dst = imm */
  movImm: (dst: number, imm: number) => insn(OP.ALU64 | OP.MOV | OP.K, dst, 0, 0, imm),
  /** dst += src */
  add: (dst: number, src: number) => insn(OP.ALU64 | OP.ADD | OP.X, dst, src, 0, 0),
  /** dst += imm */
  addImm: (dst: number, imm: number) => insn(OP.ALU64 | OP.ADD | OP.K, dst, 0, 0, imm),
  /** dst &= imm */
  andImm: (dst: number, imm: number) => insn(OP.ALU64 | OP.AND | OP.K, dst, 0, 0, imm),
  /** *(size *)(dst + off) = imm */
  storeImm: (size: Size, dst: number, off: number, imm: number) => insn(OP.ST | OP.MEM | size, dst, 0, off, imm),
  /** *(size *)(dst + off) = src */
  store: (size: Size, dst: number, src: number, off: number) => insn(OP.STX | OP.MEM | size, dst, src, off, 0),
  /** dst = *(size *)(src + off) */
  load: (size: Size, dst: number, src: number, off: number) => insn(OP.LDX | OP.MEM | size, dst, src, off, 0),
  /** dst = the map with this fd (ld_imm64: two slots) */
  loadMap: (dst: number, fd: number) => [
    ...insn(OP.LD | OP.IMM | OP.DW, dst, OP.PSEUDO_MAP_FD, 0, fd),
    ...insn(0, 0, 0, 0, 0),
  ],
  /** if dst == imm goto +off */
  jeqImm: (dst: number, imm: number, off: number) => insn(OP.JMP | OP.JEQ | OP.K, dst, 0, off, imm),
  /** if dst != imm goto +off */
  jneImm: (dst: number, imm: number, off: number) => insn(OP.JMP | OP.JNE | OP.K, dst, 0, off, imm),
  /** if dst == src goto +off */
  jeq: (dst: number, src: number, off: number) => insn(OP.JMP | OP.JEQ | OP.X, dst, src, off, 0),
  /** if dst != src goto +off */
  jne: (dst: number, src: number, off: number) => insn(OP.JMP | OP.JNE | OP.X, dst, src, off, 0),
  /** if dst > src goto +off (unsigned) */
  jgt: (dst: number, src: number, off: number) => insn(OP.JMP | OP.JGT | OP.X, dst, src, off, 0),
  /** if dst > imm goto +off (unsigned) */
  jgtImm: (dst: number, imm: number, off: number) => insn(OP.JMP | OP.JGT | OP.K, dst, 0, off, imm),
  /** goto +off */
  ja: (off: number) => insn(OP.JMP | OP.JA, 0, 0, off, 0),
  call: (fn: number) => insn(OP.JMP | OP.CALL, 0, 0, 0, fn),
  exit: () => insn(OP.JMP | OP.EXIT, 0, 0, 0, 0),
};

/** The program: counter[0] += 1 (per CPU), return XDP_DROP. */
export function dropCounterInsns(mapFd: number): Uint8Array {
  return Uint8Array.from([
    ...asm.storeImm(OP.W, 10, -4, 0), // *(u32 *)(r10 - 4) = 0       key
    ...asm.loadMap(1, mapFd), // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
    ...asm.mov(2, 10), // r2 = r10
    ...asm.addImm(2, -4), // r2 += -4
    ...asm.call(BPF_FUNC.map_lookup_elem),
    ...asm.jeqImm(0, 0, 3), // if r0 == 0 goto +3
    ...asm.load(OP.DW, 3, 0, 0), // r3 = *(u64 *)(r0 + 0)
    ...asm.addImm(3, 1), // r3 += 1
    ...asm.store(OP.DW, 0, 3, 0), // *(u64 *)(r0 + 0) = r3
    ...asm.movImm(0, 1), // r0 = XDP_DROP
    ...asm.exit(), // exit
  ]);
}

/** CPUs a per-CPU map holds a value for. */
export function possibleCpus(): number {
  return libc.parseCpuList(readFileSync("/sys/devices/system/cpu/possible", "utf8")).length;
}

/** The program: return bpf_redirect(ifindex, 0) — every frame out of another interface. */
export function redirectInsns(ifindex: number): Uint8Array {
  return Uint8Array.from([
    ...asm.movImm(1, ifindex), // r1 = ifindex
    ...asm.movImm(2, 0), // r2 = 0
    ...asm.call(BPF_FUNC.redirect),
    ...asm.exit(), // exit
  ]);
}

/** Attach an XDP program (raw instructions) to `ifname`; returns the detach function. */
export function attachXdp(ifname: string, code: Uint8Array, flags = XDP_FLAGS_DRV_MODE): () => void {
  const b = B();
  const ifindex = libc.ifIndex(ifname);
  if (!ifindex) throw new Error(`no such interface '${ifname}'`);
  const prog = b.bpf_prog_load(
    BPF_PROG_TYPE_XDP,
    Buffer.from("bm_xdp\0"),
    Buffer.from("GPL\0"),
    ptr(code),
    code.length / 8,
    null,
  );
  if (prog < 0) throw new Error(`bpf_prog_load: ${libc.strerror(-prog)}`);
  const r = b.bpf_xdp_attach(ifindex, prog, flags, null);
  if (r < 0) {
    libc.close(prog);
    throw new Error(`bpf_xdp_attach ${ifname}: ${libc.strerror(-r)}`);
  }
  return () => {
    b.bpf_xdp_detach(ifindex, flags, null);
    libc.close(prog);
  };
}

export interface XdpDrop {
  count(): number;
  detach(): void;
}

/** Attach a counting XDP_DROP to `ifname` (native mode by default). */
export function attachDropCounter(ifname: string, flags = XDP_FLAGS_DRV_MODE): XdpDrop {
  const b = B();
  const ifindex = libc.ifIndex(ifname);
  if (!ifindex) throw new Error(`no such interface '${ifname}'`);
  const map = b.bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, Buffer.from("bm_drop_cnt\0"), 4, 8, 1, null);
  if (map < 0) throw new Error(`bpf_map_create: ${libc.strerror(-map)}`);
  const code = dropCounterInsns(map);
  const prog = b.bpf_prog_load(
    BPF_PROG_TYPE_XDP,
    Buffer.from("bm_drop\0"),
    Buffer.from("GPL\0"),
    ptr(code),
    code.length / 8,
    null,
  );
  if (prog < 0) {
    libc.close(map);
    throw new Error(`bpf_prog_load: ${libc.strerror(-prog)}`);
  }
  const r = b.bpf_xdp_attach(ifindex, prog, flags, null);
  if (r < 0) {
    libc.close(prog);
    libc.close(map);
    throw new Error(`bpf_xdp_attach ${ifname}: ${libc.strerror(-r)}`);
  }
  const ncpu = possibleCpus();
  const key = new Uint32Array(1),
    vals = new BigUint64Array(ncpu);
  return {
    count() {
      if (b.bpf_map_lookup_elem(map, ptr(key), ptr(vals)) < 0) throw new Error("bpf_map_lookup_elem failed");
      let s = 0n;
      for (const v of vals) s += v;
      return Number(s);
    },
    detach() {
      b.bpf_xdp_detach(ifindex, flags, null);
      libc.close(prog);
      libc.close(map);
    },
  };
}

/** A map (key and value sizes in bytes); returns its fd. */
export function mapCreate(type: number, name: string, keySize: number, valueSize: number, maxEntries: number): number {
  const fd = B().bpf_map_create(type, Buffer.from(`${name}\0`), keySize, valueSize, maxEntries, null);
  if (fd < 0) throw new Error(`bpf_map_create ${name}: ${libc.strerror(-fd)}`);
  return fd;
}

/** Load a program of `type` from raw instructions; returns its fd. */
export function progLoad(type: number, name: string, code: Uint8Array): number {
  const fd = B().bpf_prog_load(type, Buffer.from(`${name}\0`), Buffer.from("GPL\0"), ptr(code), code.length / 8, null);
  if (fd < 0) throw new Error(`bpf_prog_load ${name}: ${libc.strerror(-fd)}`);
  return fd;
}

export function mapUpdate(fd: number, key: Uint8Array, value: Uint8Array): void {
  const r = B().bpf_map_update_elem(fd, ptr(key), ptr(value), 0);
  if (r < 0) throw new Error(`bpf_map_update_elem: ${libc.strerror(-r)}`);
}

/** Delete a key; false when it was not there. */
export function mapDelete(fd: number, key: Uint8Array): boolean {
  return B().bpf_map_delete_elem(fd, ptr(key)) === 0;
}

export function mapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean {
  return B().bpf_map_lookup_elem(fd, ptr(key), ptr(value)) === 0;
}

/** Every key of a map (control path: allocates). */
export function mapKeys(fd: number, keySize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev: Uint8Array | null = null;
  for (;;) {
    const next = new Uint8Array(keySize);
    if (B().bpf_map_get_next_key(fd, prev ? ptr(prev) : null, ptr(next)) !== 0) return out;
    out.push(next);
    prev = next;
  }
}

/** Attach a SCHED_CLS program (direct action) to `ifindex`'s tc ingress, creating its clsact qdisc
 * if there is none; returns the detach function: it removes the qdisc if it made it, else only its filter. */
export function tcAttachIngress(ifindex: number, prog: number, what: string): () => void {
  const hook = new Uint8Array(TC_HOOK.size),
    hv = new DataView(hook.buffer);
  hv.setBigUint64(TC_HOOK.sz, BigInt(TC_HOOK.size), true);
  hv.setInt32(TC_HOOK.ifindex, ifindex, true);
  hv.setUint32(TC_HOOK.attach_point, BPF_TC_INGRESS, true);
  const opts = new Uint8Array(TC_OPTS.size),
    ov = new DataView(opts.buffer);
  ov.setBigUint64(TC_OPTS.sz, BigInt(TC_OPTS.size), true);
  ov.setInt32(TC_OPTS.prog_fd, prog, true);
  ov.setUint32(TC_OPTS.flags, BPF_TC_F_REPLACE, true);
  ov.setUint32(TC_OPTS.handle, TC_HANDLE, true);
  ov.setUint32(TC_OPTS.priority, TC_PRIO, true);
  const b = B();
  // libbpf prints the kernel's EEXIST for an existing clsact qdisc: quiet while we ask
  const print = b.libbpf_set_print(null);
  const c = b.bpf_tc_hook_create(ptr(hook));
  b.libbpf_set_print(print);
  if (c < 0 && c !== -17 /* EEXIST: a clsact qdisc is there already */)
    throw new Error(`${what}: creating the tc ingress hook: ${libc.strerror(-c)}`);
  const r = b.bpf_tc_attach(ptr(hook), ptr(opts));
  if (r < 0) {
    if (c === 0) b.bpf_tc_hook_destroy(ptr(hook));
    throw new Error(`${what}: attaching the tc program: ${libc.strerror(-r)}`);
  }
  return () => {
    // both fail harmlessly when the interface is gone. A hook destroyed with ingress alone only
    // flushes the ingress filters; ingress|egress removes the clsact qdisc we made
    if (c === 0) {
      hv.setUint32(TC_HOOK.attach_point, BPF_TC_INGRESS | BPF_TC_EGRESS, true);
      b.bpf_tc_hook_destroy(ptr(hook));
    } else {
      ov.setInt32(TC_OPTS.prog_fd, 0, true); // detach names the filter by handle and priority only
      ov.setUint32(TC_OPTS.prog_id, 0, true);
      ov.setUint32(TC_OPTS.flags, 0, true);
      b.bpf_tc_detach(ptr(hook), ptr(opts));
    }
  };
}
