// One plugin per state directory and per socket. The lock (flock on vale.lock beside the database)
// is held for the process's life and released by the kernel when it ends, however it ends; the
// socket is taken only if nothing answers on it, and given back only if it is still the one we made.
import { chmodSync, chownSync, existsSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { type Lock, lockFile } from "../src/index.ts";

export class InstanceError extends Error {}

/** Take the state directory's lock, or say which process holds it. */
export function lockStateDir(dir: string): Lock {
  const r = lockFile(`${dir}/vale.lock`);
  if ("heldBy" in r) {
    throw new InstanceError(
      `another vale plugin (pid ${r.heldBy}) uses the state directory ${dir}; stop it first (one plugin per state directory)`,
    );
  }
  return r.lock;
}

/** Refuse a socket path something answers on; remove a stale one (nobody listening). */
export async function claimSocket(sock: string): Promise<void> {
  if (!existsSync(sock)) return;
  const answered = await fetch("http://plugin/Plugin.Activate", {
    method: "POST",
    unix: sock,
    signal: AbortSignal.timeout(2000),
  } as RequestInit).then(
    () => true,
    () => false,
  );
  if (answered)
    throw new InstanceError(
      `${sock} is served by another process (it answered Plugin.Activate): stop that plugin first, or set BUNMAP_PLUGIN_SOCK`,
    );
  unlinkSync(sock);
}

/** Mode 0600 (or 0660 with the named group), whatever the umask; returns the inode to recognise it by. */
export function secureSocket(sock: string, group?: string): number {
  if (group) {
    const line = readFileSync("/etc/group", "utf8")
      .split("\n")
      .find((l) => l.split(":")[0] === group);
    if (!line) throw new InstanceError(`BUNMAP_PLUGIN_GROUP=${group}: no such group in /etc/group`);
    chownSync(sock, process.getuid?.() ?? 0, Number(line.split(":")[2]));
    chmodSync(sock, 0o660);
  } else {
    chmodSync(sock, 0o600);
  }
  return statSync(sock).ino;
}

/** Remove the socket only if it is still ours (a later plugin may have replaced it). */
export function releaseSocket(sock: string, ino: number): void {
  try {
    if (statSync(sock).ino === ino) unlinkSync(sock);
  } catch {
    /* already gone */
  }
}
