// A counting XDP_DROP program, written as raw BPF instructions and loaded through libbpf: the
// neutral receiver for benchmarks (no clang, no kernel BTF needed). Count = packets that reached
// the interface's XDP hook, summed over CPUs.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { readFileSync } from "node:fs";
import * as libc from "./libc.ts";

const { i32, u32, ptr: P, cstring, u64 } = FFIType;
const BPF_PROG_TYPE_XDP = 6;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const XDP_FLAGS_DRV_MODE = 1 << 2;
export const XDP_FLAGS_SKB_MODE = 1 << 1;

function bpf() {
  return dlopen("libbpf.so.1", {
    bpf_map_create: { args: [u32, cstring, u32, u32, u32, P], returns: i32 },
    bpf_prog_load: { args: [u32, cstring, cstring, P, u64, P], returns: i32 },
    bpf_xdp_attach: { args: [i32, i32, u32, P], returns: i32 },
    bpf_xdp_detach: { args: [i32, u32, P], returns: i32 },
    bpf_map_lookup_elem: { args: [i32, P, P], returns: i32 },
  }).symbols;
}

/** struct bpf_insn: code, dst:4|src:4, s16 off, s32 imm. */
function insn(code: number, dst: number, src: number, off: number, imm: number): number[] {
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

function possibleCpus(): number {
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
  const b = bpf();
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
  const b = bpf();
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
