// The only door to libc. Everything here is one syscall per call; callers batch.
import { CString, dlopen, FFIType, type Pointer, ptr, read } from "bun:ffi";

const { i32, i64, u32, u64, ptr: P, cstring } = FFIType;
const usize = u64;

const lib = dlopen("libc.so.6", {
  open: { args: [cstring, i32, u32], returns: i32 },
  close: { args: [i32], returns: i32 },
  ftruncate: { args: [i32, i64], returns: i32 },
  lseek: { args: [i32, i64, i32], returns: i64 },
  unlink: { args: [cstring], returns: i32 },
  mmap: { args: [P, usize, i32, i32, i32, i64], returns: P },
  munmap: { args: [P, usize], returns: i32 },
  kill: { args: [i32, i32], returns: i32 },
  syscall: { args: [i64, P, i32, u32, P], returns: i32 },
  sched_setaffinity: { args: [i32, usize, P], returns: i32 },
  strerror: { args: [i32], returns: P },
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, P, u32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, P, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, P, P], returns: i32 },
  sendto: { args: [i32, P, usize, i32, P, u32], returns: i64 },
  recvfrom: { args: [i32, P, usize, i32, P, P], returns: i64 },
  poll: { args: [P, u64, i32], returns: i32 },
  if_nametoindex: { args: [cstring], returns: u32 },
  ioctl: { args: [i32, u64, P], returns: i32 },
  read: { args: [i32, P, usize], returns: i64 },
  sendmmsg: { args: [i32, P, u32, i32], returns: i32 },
  recvmmsg: { args: [i32, P, u32, i32, P], returns: i32 },
  write: { args: [i32, P, usize], returns: i64 },
  eventfd: { args: [u32, i32], returns: i32 },
  epoll_create1: { args: [i32], returns: i32 },
  epoll_ctl: { args: [i32, i32, i32, P], returns: i32 },
  epoll_wait: { args: [i32, P, i32, i32], returns: i32 },
  setns: { args: [i32, i32], returns: i32 },
  flock: { args: [i32, i32], returns: i32 },
  sched_yield: { args: [], returns: i32 },
  __errno_location: { args: [], returns: P },
});

const C = lib.symbols;

export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const EEXIST = 17;
export const ENOENT = 2;
export const EPERM = 1;
export const ESRCH = 3;

const SYS_futex = 202; // x86_64
const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;

const errnoPtr = C.__errno_location()!;
export function errno(): number {
  return read.i32(errnoPtr, 0);
}

export function strerror(e: number): string {
  const p = C.strerror(e);
  return p ? new CString(p).toString() : `errno ${e}`;
}

/** Error carrying errno, with the call and its subject named in the message. */
export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    subject = "",
  ) {
    super(`${call}${subject ? ` ${subject}` : ""}: ${strerror(errno)}`);
  }
}

const cstr = (s: string) => Buffer.from(`${s}\0`);

export function open(path: string, flags: number, mode = 0o600): number {
  const fd = C.open(cstr(path), flags, mode);
  if (fd < 0) throw new SysError("open", errno(), path);
  return fd;
}

/** open() that reports errno instead of throwing (for O_EXCL races). */
export function tryOpen(path: string, flags: number, mode = 0o600): { fd: number; errno: number } {
  const fd = C.open(cstr(path), flags, mode);
  return { fd, errno: fd < 0 ? errno() : 0 };
}

export function close(fd: number): void {
  C.close(fd);
}

export function ftruncate(fd: number, size: number): void {
  if (C.ftruncate(fd, size) < 0) throw new SysError("ftruncate", errno());
}

export function fileSize(fd: number): number {
  const r = Number(C.lseek(fd, 0, 2 /* SEEK_END */));
  if (r < 0) throw new SysError("lseek", errno());
  return r;
}

export function unlink(path: string): boolean {
  return C.unlink(cstr(path)) === 0;
}

export function mmapShared(fd: number, size: number): Pointer {
  const p = C.mmap(null, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) as unknown as number;
  // MAP_FAILED is (void*)-1: bun hands pointers over as numbers, so it arrives as ~2^64
  if (!p || p >= 2 ** 63 || p < 0) throw new SysError("mmap", errno());
  return p as Pointer;
}

const MAP_PRIVATE = 2,
  MAP_FIXED = 0x10,
  MAP_ANONYMOUS = 0x20,
  MAP_NORESERVE = 0x4000;

/** Reserve (and back with zeroed memory) an anonymous region: the container for one port's memory. */
export function mmapAnon(size: number): Pointer {
  const p = C.mmap(
    null,
    size,
    PROT_READ | PROT_WRITE,
    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
    -1,
    0,
  ) as unknown as number;
  if (!p || p >= 2 ** 63) throw new SysError("mmap", errno(), `(anonymous, ${size} bytes)`);
  return p as Pointer;
}

/** Map fd's shared memory at a fixed address inside a region we reserved (MAP_FIXED). */
export function mmapFixed(at: number, size: number, fd: number, offset = 0): void {
  const p = C.mmap(
    at as Pointer,
    size,
    PROT_READ | PROT_WRITE,
    MAP_SHARED | MAP_FIXED,
    fd,
    offset,
  ) as unknown as number;
  if (p !== at) throw new SysError("mmap", errno(), "(fixed)");
}

export function munmap(p: Pointer, size: number): void {
  C.munmap(p, size);
}

/** Let another runnable thread have this CPU (returns at once when none waits). */
export function yieldCpu(): void {
  C.sched_yield();
}

/** true when a process with this pid exists (EPERM still means it exists). */
export function pidAlive(pid: number): boolean {
  if (pid <= 0) return false;
  if (C.kill(pid, 0) === 0) return true;
  return errno() === EPERM;
}

const tsBuf = new BigInt64Array(2);
/** futex(FUTEX_WAIT) on a shared u32 at addr; returns when woken, on timeout, or if *addr != expected. */
export function futexWait(addr: number, expected: number, timeoutMs: number): void {
  if (timeoutMs < 0) {
    C.syscall(SYS_futex, addr as Pointer, FUTEX_WAIT, expected >>> 0, null);
    return;
  }
  tsBuf[0] = BigInt(Math.floor(timeoutMs / 1000));
  tsBuf[1] = BigInt(Math.round((timeoutMs % 1000) * 1e6));
  C.syscall(SYS_futex, addr as Pointer, FUTEX_WAIT, expected >>> 0, ptr(tsBuf));
}

export function futexWake(addr: number): void {
  C.syscall(SYS_futex, addr as Pointer, FUTEX_WAKE, 0x7fffffff, null);
}

/** A CPU list as the kernel writes it ("0-3,8,10-11": Cpus_allowed_list, .../cpu/possible). */
export function parseCpuList(text: string): number[] {
  return text
    .trim()
    .split(",")
    .filter(Boolean)
    .flatMap((r) => {
      const [a, b = a] = r.split("-").map(Number);
      return Array.from({ length: b - a + 1 }, (_, i) => a + i);
    });
}

/** Pin the calling thread (a Worker runs on its own OS thread) to one CPU. */
export function pinThisThread(cpu: number): void {
  const mask = new BigUint64Array(16); // 1024 CPUs
  mask[cpu >> 6] = 1n << BigInt(cpu & 63);
  if (C.sched_setaffinity(0, mask.byteLength, ptr(mask)) < 0)
    throw new SysError("sched_setaffinity", errno(), `cpu ${cpu}`);
}

// ---- sockets

export const AF_PACKET = 17;
export const AF_XDP = 44;
export const SOCK_RAW = 3;
export const SOL_PACKET = 263;
export const SOL_SOCKET = 1;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const EAGAIN = 11;
export const EINTR = 4;
export const SO_RCVBUFFORCE = 33;
export const SO_ATTACH_BPF = 50;
export const ENOBUFS = 105;
export const EBUSY = 16;
export const ENETDOWN = 100;
export const ENXIO = 6;

export function socket(domain: number, type: number, proto: number, what: string): number {
  const fd = C.socket(domain, type, proto);
  if (fd < 0) throw new SysError("socket", errno(), what);
  return fd;
}

export function bind(fd: number, addr: Uint8Array, what: string): void {
  if (C.bind(fd, ptr(addr), addr.byteLength) < 0) throw new SysError("bind", errno(), what);
}

export function setsockopt(
  fd: number,
  level: number,
  name: number,
  val: Uint8Array | Int32Array | Uint32Array,
  what: string,
): void {
  if (C.setsockopt(fd, level, name, ptr(val), val.byteLength) < 0) throw new SysError("setsockopt", errno(), what);
}

export function setsockoptInt(fd: number, level: number, name: number, v: number, what: string): void {
  setsockopt(fd, level, name, Int32Array.of(v), what);
}

const optLen = new Uint32Array(1);
export function getsockopt(fd: number, level: number, name: number, into: Uint8Array | Uint32Array): number {
  optLen[0] = into.byteLength;
  if (C.getsockopt(fd, level, name, ptr(into), ptr(optLen)) < 0) throw new SysError("getsockopt", errno());
  return optLen[0];
}

/** sendto(fd, NULL, 0, flags): the kick that makes the kernel walk a tx ring. Returns -errno on failure. */
export function kick(fd: number, flags = MSG_DONTWAIT): number {
  const r = Number(C.sendto(fd, null, 0, flags, null, 0));
  return r < 0 ? -errno() : r;
}

/** struct msghdr / mmsghdr / iovec (x86_64): what sendmmsg reads. */
export const MSGHDR = {
  msg_name: 0,
  msg_namelen: 8,
  msg_iov: 16,
  msg_iovlen: 24,
  msg_control: 32,
  msg_controllen: 40,
  msg_flags: 48,
  size: 56,
} as const;
export const MMSGHDR = { msg_hdr: 0, msg_len: 56, size: 64 } as const;
export const IOVEC = { iov_base: 0, iov_len: 8, size: 16 } as const;

/** sendmmsg(fd, msgs, n, MSG_DONTWAIT) over prepared mmsghdrs at an address: messages sent, or -errno. */
export function sendmmsg(fd: number, msgs: number, n: number): number {
  const r = C.sendmmsg(fd, msgs as Pointer, n, MSG_DONTWAIT);
  return r < 0 ? -errno() : r;
}

export const LOCK_EX = 2,
  LOCK_NB = 4;
/** flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file holds it. */
export function tryLock(fd: number): boolean {
  if (C.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const e = errno();
  if (e === EAGAIN) return false;
  throw new SysError("flock", e);
}

export const CLONE_NEWNET = 0x40000000;
/** Move the calling thread into the namespace open at fd (children it spawns follow it). */
export function setns(fd: number, nstype: number): void {
  if (C.setns(fd, nstype) !== 0) throw new SysError("setns", errno());
}

/** recvmmsg(fd, msgs, n, MSG_DONTWAIT, NULL) into prepared mmsghdrs at an address: messages received, or -errno. */
export function recvmmsg(fd: number, msgs: number, n: number): number {
  const r = C.recvmmsg(fd, msgs as Pointer, n, MSG_DONTWAIT, null);
  return r < 0 ? -errno() : r;
}

/** recvfrom(fd, NULL, 0, MSG_DONTWAIT): wakes the kernel to refill (AF_XDP need_wakeup on the fill ring). */
export function wakeRx(fd: number): void {
  C.recvfrom(fd, null, 0, MSG_DONTWAIT, null, null);
}

/** poll() over a prepared pollfd array (8 bytes each); returns the count, or -errno. */
export function poll(fds: Uint8Array, n: number, timeoutMs: number): number {
  const r = C.poll(ptr(fds), n, timeoutMs);
  return r < 0 ? -errno() : r;
}

export function ifIndex(name: string): number {
  return C.if_nametoindex(cstr(name));
}

/** ioctl(fd, req, arg): returns -errno on failure. */
export function ioctl(fd: number, req: number, arg: Pointer | null): number {
  const r = C.ioctl(fd, req, arg);
  return r < 0 ? -errno() : r;
}

// ---- epoll and eventfd: one sleep over many ports, and a doorbell another thread can ring

export const EPOLLIN = 0x001;
const EPOLL_CTL_ADD = 1,
  EPOLL_CTL_DEL = 2;
const EPOLL_CLOEXEC = 0o2000000,
  EFD_NONBLOCK = 0o4000,
  EFD_CLOEXEC = 0o2000000;
/** struct epoll_event is packed on x86_64: u32 events, u64 data. */
export const EPOLL_EVENT_SIZE = 12;

export function epollCreate(): number {
  const fd = C.epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw new SysError("epoll_create1", errno());
  return fd;
}

const evBuf = new Uint8Array(EPOLL_EVENT_SIZE);
/** Watch fd for `events`; the event's data is `tag` (a u32). */
export function epollAdd(ep: number, fd: number, events: number, tag: number): void {
  const dv = new DataView(evBuf.buffer);
  dv.setUint32(0, events, true);
  dv.setBigUint64(4, BigInt(tag >>> 0), true);
  if (C.epoll_ctl(ep, EPOLL_CTL_ADD, fd, ptr(evBuf)) < 0) throw new SysError("epoll_ctl(ADD)", errno(), `fd ${fd}`);
}

export function epollDel(ep: number, fd: number): void {
  C.epoll_ctl(ep, EPOLL_CTL_DEL, fd, ptr(evBuf)); // ENOENT/EBADF: already gone with its socket
}

/** epoll_wait into a prepared buffer of `max` events; returns the count, or -errno. */
export function epollWait(ep: number, events: Uint8Array, max: number, timeoutMs: number): number {
  const r = C.epoll_wait(ep, ptr(events), max, timeoutMs);
  return r < 0 ? -errno() : r;
}

export function eventfd(): number {
  const fd = C.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw new SysError("eventfd", errno());
  return fd;
}

const one = new BigUint64Array([1n]);
const drained = new BigUint64Array(1);
/** Ring the doorbell (any thread of this process). */
export function eventfdSignal(fd: number): void {
  C.write(fd, ptr(one), 8);
}
/** Reset the doorbell; EAGAIN (not rung) is fine. */
export function eventfdDrain(fd: number): void {
  C.read(fd, ptr(drained), 8);
}
