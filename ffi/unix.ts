// Unix sockets with what Bun's own sockets lack: SOCK_SEQPACKET (one message per read, whole),
// file descriptors passed with SCM_RIGHTS, the peer's credentials and a pidfd of it, and
// pidfd_getfd (a descriptor of another process, taken back after a restart). x86_64 layouts.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { close, errno, SysError } from "./libc.ts";

const { i32, i64, u32, ptr: P } = FFIType;

const lib = dlopen("libc.so.6", {
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, P, u32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  accept4: { args: [i32, P, P, i32], returns: i32 },
  connect: { args: [i32, P, u32], returns: i32 },
  sendmsg: { args: [i32, P, i32], returns: i64 },
  recvmsg: { args: [i32, P, i32], returns: i64 },
  getsockopt: { args: [i32, i32, i32, P, P], returns: i32 },
  setsockopt: { args: [i32, i32, i32, P, u32], returns: i32 },
  syscall: { args: [i64, i64, i64, i64], returns: i64 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
});
const C = lib.symbols;

const AF_UNIX = 1;
export const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000,
  SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1,
  SCM_RIGHTS = 1,
  SO_PEERCRED = 17,
  SO_RCVTIMEO = 20,
  SO_PEERPIDFD = 77;
const MSG_CMSG_CLOEXEC = 0x40000000,
  MSG_DONTWAIT = 0x40,
  MSG_NOSIGNAL = 0x4000;
const SYS_pidfd_open = 434,
  SYS_pidfd_getfd = 438;
/** Most descriptors one message carries (the ports protocol passes two). */
export const MAX_FDS = 4;

/** struct sockaddr_un: family, then a path of at most 107 bytes and its NUL. */
function sockaddr(path: string): Uint8Array {
  const b = Buffer.from(path);
  if (b.length > 107) throw new Error(`socket path ${path} is longer than 107 bytes`);
  const a = new Uint8Array(110);
  a[0] = AF_UNIX;
  a.set(b, 2);
  return a;
}

/** A listening SEQPACKET socket at `path` (non-blocking: accept() returns -1 when nobody waits). */
export function listenSeqpacket(path: string, backlog = 64): number {
  const fd = C.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SysError("socket", errno(), path);
  const a = sockaddr(path);
  if (C.bind(fd, ptr(a), a.length) < 0 || C.listen(fd, backlog) < 0) {
    const e = errno();
    closeFd(fd);
    throw new SysError("bind/listen", e, path);
  }
  return fd;
}

/** A connection to `path`, blocking, its replies awaited at most timeoutMs. Throws SysError (ENOENT, ECONNREFUSED...). */
export function connectSeqpacket(path: string, timeoutMs: number): number {
  const fd = C.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SysError("socket", errno(), path);
  const a = sockaddr(path);
  if (C.connect(fd, ptr(a), a.length) < 0) {
    const e = errno();
    closeFd(fd);
    throw new SysError("connect", e, path);
  }
  const tv = new BigInt64Array([BigInt(Math.floor(timeoutMs / 1000)), BigInt((timeoutMs % 1000) * 1000)]);
  C.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, ptr(tv), 16);
  return fd;
}

/** accept4 without blocking: the connection's fd (close-on-exec, non-blocking), or -1. */
export function acceptConn(fd: number): number {
  return C.accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

export function closeFd(fd: number): void {
  if (fd >= 0) close(fd);
}

// struct msghdr (56 bytes), one iovec, and a control buffer for MAX_FDS descriptors
const CMSG_HDR = 16;
const CTRL = CMSG_HDR + 8 * Math.ceil((4 * MAX_FDS) / 8);
const msg = new BigUint64Array(7);
const iov = new BigUint64Array(2);
const ctrl = new Uint8Array(CTRL);
const ctrlDv = new DataView(ctrl.buffer);

function prepare(buf: Uint8Array, len: number, ctrlLen: number): void {
  msg.fill(0n);
  iov[0] = BigInt(ptr(buf));
  iov[1] = BigInt(len);
  msg[2] = BigInt(ptr(iov));
  msg[3] = 1n;
  if (ctrlLen) {
    msg[4] = BigInt(ptr(ctrl));
    msg[5] = BigInt(ctrlLen);
  }
}

/** Send one message with `fds` attached. Throws SysError when the peer is gone. */
export function sendWithFds(fd: number, data: Uint8Array, fds: number[] = []): void {
  if (fds.length > MAX_FDS) throw new Error(`at most ${MAX_FDS} descriptors a message`);
  ctrl.fill(0);
  const clen = fds.length ? CMSG_HDR + 4 * fds.length : 0;
  if (clen) {
    ctrlDv.setBigUint64(0, BigInt(clen), true);
    ctrlDv.setInt32(8, SOL_SOCKET, true);
    ctrlDv.setInt32(12, SCM_RIGHTS, true);
    for (const [k, f] of fds.entries()) ctrlDv.setInt32(CMSG_HDR + 4 * k, f, true);
  }
  prepare(data, data.length, clen ? CTRL : 0);
  if (clen) msg[5] = BigInt(clen);
  if (Number(C.sendmsg(fd, ptr(msg), MSG_NOSIGNAL)) < 0) throw new SysError("sendmsg", errno());
}

/**
 * Receive one message into `buf`, taking any descriptors it carries (close-on-exec). len -1 with
 * errno EAGAIN: nothing waiting (non-blocking sockets); len 0: the peer closed. Truncated messages
 * (longer than buf) are refused by the caller: `truncated` says so.
 */
export function recvWithFds(
  fd: number,
  buf: Uint8Array,
  wait = true,
): { len: number; fds: number[]; truncated: boolean; errno: number } {
  ctrl.fill(0);
  prepare(buf, buf.length, CTRL);
  const n = Number(C.recvmsg(fd, ptr(msg), MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT)));
  if (n < 0) return { len: -1, fds: [], truncated: false, errno: errno() };
  const fds: number[] = [];
  const clen = Number(msg[5]);
  if (clen >= CMSG_HDR && ctrlDv.getInt32(8, true) === SOL_SOCKET && ctrlDv.getInt32(12, true) === SCM_RIGHTS) {
    const count = (Number(ctrlDv.getBigUint64(0, true)) - CMSG_HDR) / 4;
    for (let k = 0; k < count; k++) fds.push(ctrlDv.getInt32(CMSG_HDR + 4 * k, true));
  }
  const truncated = (Number(msg[6] & 0xffffffffn) & 0x20) !== 0; // MSG_TRUNC in msg_flags
  return { len: n, fds, truncated, errno: 0 };
}

/** The peer's pid (in our pid namespace; 0 when it has none here), uid and gid, as at connect(). */
export function peerCred(fd: number): { pid: number; uid: number; gid: number } {
  const cred = new Int32Array(3),
    len = new Uint32Array([12]);
  if (C.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ptr(cred), ptr(len)) < 0) throw new SysError("SO_PEERCRED", errno());
  return { pid: cred[0], uid: cred[1] >>> 0, gid: cred[2] >>> 0 };
}

/** A pidfd of the peer process (Linux 6.5); -1 where the kernel has none. */
export function peerPidfd(fd: number): number {
  const v = new Int32Array(1),
    len = new Uint32Array([4]);
  return C.getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, ptr(v), ptr(len)) < 0 ? -1 : v[0];
}

/** pidfd_open(pid): -1 when the process is gone. */
export function pidfdOpen(pid: number): number {
  return Number(C.syscall(SYS_pidfd_open, pid, 0, 0));
}

/** pidfd_getfd: a copy of descriptor `target` of the process behind `pidfd`, or -1. */
export function pidfdGetfd(pidfd: number, target: number): number {
  return Number(C.syscall(SYS_pidfd_getfd, pidfd, target, 0));
}

const F_DUPFD_CLOEXEC = 1030;
/** A second descriptor for the same open file (close-on-exec). */
export function dupFd(fd: number): number {
  const r = C.fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (r < 0) throw new SysError("fcntl(F_DUPFD_CLOEXEC)", errno(), `fd ${fd}`);
  return r;
}
