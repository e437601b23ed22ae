// The C baselines of bench/c, built on first use (again when a source or shmregion.h is newer).
import { existsSync, mkdirSync, statSync } from "node:fs";

const here = `${import.meta.dir}/..`;

/** bench/c/NAME.c compiled to bench/out/NAME; its path. Static (libc inside): for programs run in
 * containers, whose image has no libc of the host's. */
export function buildC(name: string, opts: { static?: boolean } = {}): string {
  const bin = `${here}/out/${name}`,
    src = `${here}/c/${name}.c`;
  const newest = Math.max(statSync(src).mtimeMs, statSync(`${here}/c/shmregion.h`).mtimeMs);
  if (!existsSync(bin) || statSync(bin).mtimeMs < newest) {
    mkdirSync(`${here}/out`, { recursive: true });
    const cc = Bun.spawnSync(["gcc", "-O2", "-Wall", ...(opts.static ? ["-static"] : []), "-o", bin, src]);
    if (cc.exitCode !== 0) throw new Error(`gcc failed: ${cc.stderr.toString()}`);
  }
  return bin;
}
