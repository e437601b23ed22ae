// BPF through libbpf, programs written as raw instructions (no clang, no kernel BTF needed): maps,
// program loading, XDP and tc attachment, socket filters. Also the counting XDP_DROP program, the
// neutral receiver for benchmarks (count = packets that reached the interface's XDP hook, over CPUs).
import { dlopen, FFIType, ptr } from "bun:ffi";
import { readFileSync } from "node:fs";
import * as libc from "./libc.ts";

const { i32, u32, ptr: P, cstring, u64 } = FFIType;
const BPF_PROG_TYPE_XDP = 6;
export const BPF_PROG_TYPE_SOCKET_FILTER = 1;
export const BPF_PROG_TYPE_SCHED_CLS = 3;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_HASH = 1;
/** Helper function numbers (include/uapi/linux/bpf.h). */
export const BPF_FUNC = { map_lookup_elem: 1, redirect: 23, skb_load_bytes: 26 } as const;
/** struct __sk_buff field offsets. */
export const SK_BUFF = { len: 0, ingress_ifindex: 36 } as const;
export const TC_ACT_OK = 0;
/** struct bpf_tc_hook (24 bytes) and struct bpf_tc_opts (32 bytes), libbpf.h. */
const TC_HOOK = { size: 24, ifindex: 8, attach_point: 12 } as const;
const TC_OPTS = { size: 32, prog_fd: 8, flags: 12, prog_id: 16, handle: 20, priority: 24 } as const;
const BPF_TC_F_REPLACE = 1;
/** Our tc filter's handle and priority: a filter there is one of ours (left by a crashed run) and is replaced. */
const TC_HANDLE = 0xb3a9,
  TC_PRIO = 0xb3a9;
const BPF_TC_INGRESS = 1;
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

/** The program: counter[0] += 1 (per CPU), return XDP_DROP. */
export function dropCounterInsns(mapFd: number): Uint8Array {
  return Uint8Array.from([
    ...insn(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0       key
    ...insn(0x18, 1, 1, 0, mapFd),
    ...insn(0, 0, 0, 0, 0), // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
    ...insn(0xbf, 2, 10, 0, 0), // r2 = r10
    ...insn(0x07, 2, 0, 0, -4), // r2 += -4
    ...insn(0x85, 0, 0, 0, 1), // call bpf_map_lookup_elem
    ...insn(0x15, 0, 0, 3, 0), // if r0 == 0 goto +3
    ...insn(0x79, 3, 0, 0, 0), // r3 = *(u64 *)(r0 + 0)
    ...insn(0x07, 3, 0, 0, 1), // r3 += 1
    ...insn(0x7b, 0, 3, 0, 0), // *(u64 *)(r0 + 0) = r3
    ...insn(0xb7, 0, 0, 0, 1), // r0 = XDP_DROP
    ...insn(0x95, 0, 0, 0, 0), // exit
  ]);
}

/** CPUs a per-CPU map holds a value for. */
export function possibleCpus(): number {
  const s = readFileSync("/sys/devices/system/cpu/possible", "utf8").trim(); // e.g. "0-1"
  return s.split(",").reduce((n, r) => {
    const [a, b = a] = r.split("-").map(Number);
    return n + b - a + 1;
  }, 0);
}

/** The program: return bpf_redirect(ifindex, 0) — every frame out of another interface. */
export function redirectInsns(ifindex: number): Uint8Array {
  return Uint8Array.from([
    ...insn(0xb7, 1, 0, 0, ifindex), // r1 = ifindex
    ...insn(0xb7, 2, 0, 0, 0), // r2 = 0
    ...insn(0x85, 0, 0, 0, 23), // call bpf_redirect
    ...insn(0x95, 0, 0, 0, 0), // exit
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
  hv.setBigUint64(0, BigInt(TC_HOOK.size), true);
  hv.setInt32(TC_HOOK.ifindex, ifindex, true);
  hv.setUint32(TC_HOOK.attach_point, BPF_TC_INGRESS, true);
  const opts = new Uint8Array(TC_OPTS.size),
    ov = new DataView(opts.buffer);
  ov.setBigUint64(0, BigInt(TC_OPTS.size), true);
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
    // both fail harmlessly when the interface is gone
    if (c === 0) b.bpf_tc_hook_destroy(ptr(hook));
    else {
      ov.setInt32(TC_OPTS.prog_fd, 0, true); // detach names the filter by handle and priority only
      ov.setUint32(TC_OPTS.prog_id, 0, true);
      ov.setUint32(TC_OPTS.flags, 0, true);
      b.bpf_tc_detach(ptr(hook), ptr(opts));
    }
  };
}
