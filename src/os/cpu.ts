// The CPUs a thread runs on: the ones this process may use, and pinning a thread (a Worker runs on
// its own OS thread) to one of them.
import { readFileSync } from "node:fs";
import { parseCpuList, pinThisThread } from "../../ffi/libc.ts";

/** CPUs this process may run on (Cpus_allowed_list), e.g. inside a cpuset or under taskset. */
export function allowedCpus(): number[] {
  const m = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? parseCpuList(m[1]) : [];
}

/** Pin the calling thread to one CPU. */
export function pinThread(cpu: number): void {
  pinThisThread(cpu);
}
