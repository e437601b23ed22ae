// Run a test file's main thread in a network namespace of its own: every interface, address and
// iptables rule the code under test makes (through the processes it spawns, which follow the thread)
// lands there, never on the host. Worker threads stay where they were: use only with code that does
// its network work on the main thread or in child processes.
import { spawnSync } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import * as libc from "../../ffi/libc.ts";

export interface PrivateNetns {
  /** its name under /var/run/netns (ip netns exec NAME … works too) */
  name: string;
  /** Back to the namespace we came from, and the private one deleted (with all it holds). */
  leave(): void;
}

export function enterPrivateNetns(tag: string): PrivateNetns {
  const name = `bm${tag}${process.pid}`;
  const add = spawnSync("ip", ["netns", "add", name], { encoding: "utf8", timeout: 180_000 });
  if (add.status !== 0) throw new Error(`ip netns add ${name}: ${add.stderr}`);
  const home = openSync("/proc/thread-self/ns/net", "r");
  const ns = openSync(`/var/run/netns/${name}`, "r");
  try {
    libc.setns(ns, libc.CLONE_NEWNET);
  } finally {
    closeSync(ns);
  }
  spawnSync("ip", ["link", "set", "lo", "up"], { timeout: 180_000 });
  let left = false;
  return {
    name,
    leave() {
      if (left) return;
      left = true;
      libc.setns(home, libc.CLONE_NEWNET);
      closeSync(home);
      spawnSync("ip", ["netns", "del", name], { timeout: 180_000 });
    },
  };
}
