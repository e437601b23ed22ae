// IPv4 sockets beyond AF_PACKET: sockaddr_in, multicast membership, and classic BPF socket filters
// (SO_ATTACH_FILTER), laid out once with byte offsets (checked against gcc in tests/abi.test.ts).
import { ptr } from "bun:ffi";
import * as libc from "./libc.ts";

export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SOL_IP = 0;
export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_MTU_DISCOVER = 10;
export const IP_PMTUDISC_DONT = 0;
export const IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33;
export const IP_MULTICAST_LOOP = 34;
export const IP_ADD_MEMBERSHIP = 35;
export const SO_BINDTODEVICE = 25;
export const SO_ATTACH_FILTER = 26;
export const SO_REUSEPORT = 15;
export const EADDRINUSE = 98;

/** struct sockaddr_in: family (host order), port and address (network order). */
export const SOCKADDR_IN = { sin_family: 0, sin_port: 2, sin_addr: 4, size: 16 } as const;
/** struct ip_mreqn: group, local address, interface index. */
export const IP_MREQN = { imr_multiaddr: 0, imr_address: 4, imr_ifindex: 8, size: 12 } as const;
/** struct sock_filter (one classic BPF instruction) and struct sock_fprog. */
export const SOCK_FILTER = { code: 0, jt: 2, jf: 3, k: 4, size: 8 } as const;
export const SOCK_FPROG = { len: 0, filter: 8, size: 16 } as const;

/** Classic BPF opcode parts (linux/filter.h). */
export const BPF = {
  LD: 0x00,
  LDX: 0x01,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  W: 0x00,
  H: 0x08,
  B: 0x10,
  ABS: 0x20,
  IND: 0x40,
  MSH: 0xa0,
  K: 0x00,
  AND: 0x50,
  JEQ: 0x10,
  JSET: 0x40,
} as const;

/** Write a sockaddr_in for `addr` (host-order number) and `port` at byte o of u8. */
export function writeSockaddrIn(u8: Uint8Array, o: number, addr: number, port: number): void {
  u8.fill(0, o, o + SOCKADDR_IN.size);
  u8[o + SOCKADDR_IN.sin_family] = AF_INET; // little-endian u16
  u8[o + SOCKADDR_IN.sin_port] = port >>> 8;
  u8[o + SOCKADDR_IN.sin_port + 1] = port;
  u8[o + SOCKADDR_IN.sin_addr] = addr >>> 24;
  u8[o + SOCKADDR_IN.sin_addr + 1] = addr >>> 16;
  u8[o + SOCKADDR_IN.sin_addr + 2] = addr >>> 8;
  u8[o + SOCKADDR_IN.sin_addr + 3] = addr;
}

export function sockaddrIn(addr: number, port: number): Uint8Array {
  const u8 = new Uint8Array(SOCKADDR_IN.size);
  writeSockaddrIn(u8, 0, addr, port);
  return u8;
}

/** One classic BPF instruction: [code, jt, jf, k]. */
export type Insn = readonly [code: number, jt: number, jf: number, k: number];

/** Attach a classic BPF program to a socket (SO_ATTACH_FILTER): the kernel drops what it returns 0 for. */
export function attachFilter(fd: number, prog: readonly Insn[], what: string): void {
  const insns = new Uint8Array(prog.length * SOCK_FILTER.size);
  const dv = new DataView(insns.buffer);
  prog.forEach(([code, jt, jf, k], i) => {
    const o = i * SOCK_FILTER.size;
    dv.setUint16(o + SOCK_FILTER.code, code, true);
    insns[o + SOCK_FILTER.jt] = jt;
    insns[o + SOCK_FILTER.jf] = jf;
    dv.setUint32(o + SOCK_FILTER.k, k >>> 0, true);
  });
  const fprog = new Uint8Array(SOCK_FPROG.size);
  const fv = new DataView(fprog.buffer);
  fv.setUint16(SOCK_FPROG.len, prog.length, true);
  fv.setBigUint64(SOCK_FPROG.filter, BigInt(ptr(insns)), true);
  libc.setsockopt(fd, libc.SOL_SOCKET, SO_ATTACH_FILTER, fprog, what); // the kernel copies the program
}

/** Join multicast group `group` on interface `ifindex` (host-order addresses). */
export function joinGroup(fd: number, group: number, ifindex: number, what: string): void {
  const m = new Uint8Array(IP_MREQN.size);
  const dv = new DataView(m.buffer);
  dv.setUint32(IP_MREQN.imr_multiaddr, group, false);
  dv.setInt32(IP_MREQN.imr_ifindex, ifindex, true);
  libc.setsockopt(fd, SOL_IP, IP_ADD_MEMBERSHIP, m, what);
}

/** Send multicast out of interface `ifindex` (IP_MULTICAST_IF with an ip_mreqn). */
export function multicastInterface(fd: number, ifindex: number, what: string): void {
  const m = new Uint8Array(IP_MREQN.size);
  new DataView(m.buffer).setInt32(IP_MREQN.imr_ifindex, ifindex, true);
  libc.setsockopt(fd, SOL_IP, IP_MULTICAST_IF, m, what);
}

/** True if `addr` (host order) is an address of this host (of this network namespace): a UDP socket
 * binds to it. */
export function isLocalAddress(addr: number): boolean {
  const fd = libc.socket(AF_INET, SOCK_DGRAM, 0, "UDP socket");
  try {
    libc.bind(fd, sockaddrIn(addr, 0), "probe");
    return true;
  } catch {
    return false;
  } finally {
    libc.close(fd);
  }
}

/** SO_BINDTODEVICE: the socket sends and receives through this interface only. */
export function bindToDevice(fd: number, ifname: string, what: string): void {
  libc.setsockopt(fd, libc.SOL_SOCKET, SO_BINDTODEVICE, new TextEncoder().encode(`${ifname}\0`), what);
}
