// Where a shm region lives: a file in /dev/shm mapped by every process (and worker) that opens it,
// or a SharedArrayBuffer handed to workers. Both give one ArrayBuffer per thread plus a way to sleep
// on a word until another thread changes it (futex for files, Atomics.wait for SABs).
import { type Pointer, toArrayBuffer } from "bun:ffi";
import * as libc from "../../ffi/libc.ts";
import { PortError } from "./port.ts";
import { CHAN, initRegion, layout, readLayout, SHM_DEFAULTS, type ShmConf, type ShmLayout } from "./shm-layout.ts";

export interface Region {
  readonly key: string;
  readonly mem: ArrayBufferLike;
  readonly L: ShmLayout;
  /** Sleep while the u32 at byte offset `off` equals `expected`, at most timeoutMs (-1: forever). */
  wait(off: number, expected: number, timeoutMs: number): void;
  wake(off: number): void;
  /** Unmap; `unlinkIfUnused` removes the file when no port end is claimed. */
  release(unlinkIfUnused: boolean): void;
  refs: number;
}

export function shmDir(): string {
  return process.env.BUNMAP_SHM_DIR ?? "/dev/shm";
}

export function shmPath(name: string): string {
  return `${shmDir()}/bunmap-${name}`;
}

const MAX_REGION = 2 ** 32 - 1; // header fields are u32

/** Regions this thread has mapped, so ports on one region share one ArrayBuffer (zero-copy swaps). */
const mapped = new Map<string, Region>();

export function checkConf(name: string, c: ShmConf): void {
  const L = layout(c);
  if (L.size > MAX_REGION) {
    throw new PortError(
      `shm region '${name}' would need ${L.size} bytes (> 4 GiB): lower pipes, rings, slots or buf_size`,
    );
  }
}

/** Map the file-backed region `name`, creating it with `conf` if it does not exist. */
export function openFileRegion(name: string, conf: ShmConf, explicit: Partial<ShmConf>): Region {
  const key = `file:${name}`;
  const have = mapped.get(key);
  if (have) {
    mismatch(name, have.L, explicit);
    have.refs++;
    return have;
  }
  const path = shmPath(name);
  checkConf(name, conf);
  const created = libc.tryOpen(path, libc.O_RDWR | libc.O_CREAT | libc.O_EXCL, 0o666);
  let fd: number, L: ShmLayout, p: Pointer, size: number;
  if (created.fd >= 0) {
    fd = created.fd;
    L = layout(conf);
    size = L.size;
    try {
      libc.ftruncate(fd, size);
      p = libc.mmapShared(fd, size);
    } catch (e) {
      libc.close(fd);
      libc.unlink(path);
      throw new PortError(`cannot create shm region ${path}: ${(e as Error).message}`);
    }
    initRegion(toArrayBuffer(p, 0, size), L);
  } else if (created.errno === libc.EEXIST) {
    ({ fd, L, p, size } = attachExisting(name, path));
    mismatch(name, L, explicit);
  } else {
    throw new PortError(
      `cannot open shm region ${path}: ${libc.strerror(created.errno)} (set BUNMAP_SHM_DIR to a writable tmpfs)`,
    );
  }
  return fileBacked(key, fd, p, size, L, path);
}

/**
 * A mapped file's region, known to this thread by `key`. release() unmaps it and closes fd; with
 * `path` (a region this process may remove) it unlinks the file when no end is claimed any more.
 */
function fileBacked(key: string, fd: number, p: Pointer, size: number, L: ShmLayout, path: string | null): Region {
  const mem = toArrayBuffer(p, 0, size);
  const base = p as number;
  const region: Region = {
    key,
    mem,
    L,
    refs: 1,
    wait: (off, expected, t) => libc.futexWait(base + off, expected, t),
    wake: (off) => libc.futexWake(base + off),
    release(unlinkIfUnused) {
      if (--this.refs > 0) return;
      mapped.delete(key);
      const unused = path !== null && unlinkIfUnused && !anyOwner(mem, L);
      libc.munmap(p, size);
      libc.close(fd);
      if (unused) libc.unlink(path);
    },
  };
  mapped.set(key, region);
  return region;
}

/**
 * Make the file-backed region `name` afresh (an old file of that name is replaced) and return a
 * descriptor of it, for a server that hands the region to another process (the ports protocol).
 */
export function createRegionFile(name: string, conf: ShmConf): number {
  const path = shmPath(name);
  checkConf(name, conf);
  libc.unlink(path);
  const fd = libc.open(path, libc.O_RDWR | libc.O_CREAT | libc.O_EXCL, 0o600);
  const L = layout(conf);
  try {
    libc.ftruncate(fd, L.size);
    const p = libc.mmapShared(fd, L.size);
    initRegion(toArrayBuffer(p, 0, L.size), L);
    libc.munmap(p, L.size);
  } catch (e) {
    libc.close(fd);
    libc.unlink(path);
    throw new PortError(`cannot create shm region ${path}: ${(e as Error).message}`);
  }
  return fd;
}

let fdSeq = 0;
/**
 * Map a region given as a descriptor (received from a server, memif's way). The descriptor is the
 * region's from now on: release() closes it. Nothing is ever unlinked: the server owns the file.
 */
export function openFdRegion(fd: number, label: string): Region {
  const size = libc.fileSize(fd);
  if (size < 4096 || size > MAX_REGION) {
    libc.close(fd);
    throw new PortError(`${label}: the region passed is ${size} bytes, not a bunmap region`);
  }
  const p = libc.mmapShared(fd, size);
  const L = readLayout(toArrayBuffer(p, 0, 4096));
  if (!L || L.size !== size) {
    libc.munmap(p, size);
    libc.close(fd);
    throw new PortError(`${label}: the region passed is not a bunmap shm region (a server of another version?)`);
  }
  return fileBacked(`fd:${label}:${process.pid}:${++fdSeq}`, fd, p, size, L, null);
}

function attachExisting(name: string, path: string): { fd: number; L: ShmLayout; p: Pointer; size: number } {
  const fd = libc.open(path, libc.O_RDWR);
  // the creator may still be initialising: wait for the magic word, briefly
  const deadline = performance.now() + 2000;
  for (;;) {
    const size = libc.fileSize(fd);
    if (size >= 4096) {
      const p = libc.mmapShared(fd, size);
      const L = readLayout(toArrayBuffer(p, 0, 4096));
      if (L && L.size === size) return { fd, L, p, size };
      libc.munmap(p, size);
    }
    if (performance.now() > deadline) {
      libc.close(fd);
      throw new PortError(
        `shm region '${name}' at ${path} is not a valid bunmap region (stale or foreign file?): remove it if no bunmap process uses it`,
      );
    }
    Bun.sleepSync(5);
  }
}

function mismatch(name: string, L: ShmLayout, explicit: Partial<ShmConf>): void {
  const diff = (Object.keys(explicit) as (keyof ShmConf)[]).filter((k) => explicit[k] !== L[k]);
  if (diff.length) {
    throw new PortError(
      `shm region '${name}' already exists with pipes=${L.pipes} rings=${L.rings} slots=${L.slots} buf_size=${L.bufSize}; ` +
        `it does not match ${diff.map((k) => `${k}=${explicit[k]}`).join(",")} (close its ports first, or use another name)`,
    );
  }
}

/** A region in a SharedArrayBuffer, for workers of one process: post the SAB, open ports on it. */
export function createSharedRegion(conf: Partial<ShmConf> = {}): SharedArrayBuffer {
  const c = { ...SHM_DEFAULTS, ...conf };
  checkConf("(shared)", c);
  const L = layout(c);
  const sab = new SharedArrayBuffer(L.size);
  initRegion(sab, L);
  return sab;
}

const sabKeys = new WeakMap<SharedArrayBuffer, string>();
let sabSeq = 0;

export function openSharedRegion(sab: SharedArrayBuffer): Region {
  let key = sabKeys.get(sab);
  if (!key) sabKeys.set(sab, (key = `sab:${process.pid}:${++sabSeq}:${Math.random().toString(36).slice(2, 8)}`));
  const have = mapped.get(key);
  if (have) {
    have.refs++;
    return have;
  }
  const L = readLayout(sab);
  if (!L || L.size !== sab.byteLength)
    throw new PortError("SharedArrayBuffer is not a bunmap shm region (make it with createSharedRegion)");
  const i32 = new Int32Array(sab);
  const region: Region = {
    key,
    mem: sab,
    L,
    refs: 1,
    wait: (off, expected, t) => {
      Atomics.wait(i32, off >> 2, expected | 0, t < 0 ? Infinity : t);
    },
    wake: (off) => {
      Atomics.notify(i32, off >> 2);
    },
    release() {
      if (--this.refs <= 0) mapped.delete(key!);
    },
  };
  mapped.set(key, region);
  return region;
}

/** True if any channel end in the region is claimed. */
function anyOwner(mem: ArrayBufferLike, L: ShmLayout): boolean {
  const u32 = new Uint32Array(mem);
  const n = L.pipes * 2 * L.rings;
  for (let c = 0; c < n; c++) {
    const off = L.chanBase + c * L.chanStride;
    if (Atomics.load(u32, (off + CHAN.prodOwner) >> 2) || Atomics.load(u32, (off + CHAN.consOwner) >> 2)) return true;
  }
  return false;
}
