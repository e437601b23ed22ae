// A lock held for a process's life: flock on a file the kernel releases when the process ends,
// however it ends. The file names its holder (a PID) for the error another process prints.
import { readFileSync, writeFileSync } from "node:fs";
import * as libc from "../../ffi/libc.ts";

export type Lock = { release(): void };

/** Take the lock at path, or return the PID written by whoever holds it ("?" if unreadable). */
export function lockFile(path: string): { lock: Lock } | { heldBy: string } {
  const fd = libc.open(path, libc.O_RDWR | libc.O_CREAT, 0o600);
  if (!libc.tryLock(fd)) {
    libc.close(fd);
    try {
      return { heldBy: readFileSync(path, "utf8").trim() || "?" };
    } catch {
      return { heldBy: "?" };
    }
  }
  writeFileSync(path, `${process.pid}\n`); // the lock is on the open file, not its contents
  return { lock: { release: () => libc.close(fd) } };
}
