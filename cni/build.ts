// The CNI executable as one file: `bun cni/build.ts [OUT]` (default dist/bunmap; `bun run cni:build`).
// Compiled to bytecode, minified: a runtime starts it for every container, and this halves its start.
import { spawnSync } from "node:child_process";

/** Build the executable at `out`; throws with bun's message if it fails. */
export function buildCni(out: string): void {
  const r = spawnSync(
    process.execPath,
    ["build", "--compile", "--minify", "--bytecode", `${import.meta.dir}/main.ts`, "--outfile", out],
    { encoding: "utf8", timeout: 180_000 },
  );
  if (r.status !== 0) throw new Error(`bun build --compile: ${r.stderr || r.stdout}`);
}

if (import.meta.main) {
  const out = process.argv[2] ?? "dist/bunmap";
  try {
    buildCni(out);
    process.stdout.write(`built ${out}\n`);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
}
