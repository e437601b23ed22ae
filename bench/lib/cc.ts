// The C baselines of bench/c, built on first use (again when a source or shmregion.h is newer).
import { existsSync, mkdirSync, statSync } from "node:fs";

const here = `${import.meta.dir}/..`;

/** bench/c/NAME.c compiled to bench/out/NAME; its path. */
export function buildC(name: string): string {
  const bin = `${here}/out/${name}`,
    src = `${here}/c/${name}.c`;
  const newest = Math.max(statSync(src).mtimeMs, statSync(`${here}/c/shmregion.h`).mtimeMs);
  if (!existsSync(bin) || statSync(bin).mtimeMs < newest) {
    mkdirSync(`${here}/out`, { recursive: true });
    const cc = Bun.spawnSync(["gcc", "-O2", "-Wall", "-o", bin, src]);
    if (cc.exitCode !== 0) throw new Error(`gcc failed: ${cc.stderr.toString()}`);
  }
  return bin;
}
