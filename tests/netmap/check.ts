// What the netmap guest's scripts share: a command's output, and a check that prints "ok" or fails the
// job at once ("FAIL", exit 1).
import { spawnSync } from "node:child_process";

export const sh = (...a: string[]) => spawnSync(a[0], a.slice(1), { encoding: "utf8", timeout: 300_000 });

export function check(ok: boolean, what: string): void {
  if (!ok) {
    console.error(`FAIL ${what}`);
    process.exit(1);
  }
  console.log(`ok   ${what}`);
}
