// What every Docker benchmark needs before it starts: root, an engine that answers, no other vale
// plugin on the socket (the benchmark measures its own), the test image. Exits with one line if not.
import { existsSync } from "node:fs";
import { ensureImage } from "../../tests/helpers/docker-image.ts";
import { docker, SOCK } from "../../tests/helpers/plugin-proc.ts";

export function dockerBenchReady(): void {
  if (process.getuid?.() !== 0 || docker("info").status !== 0) {
    console.error("needs root and a running Docker engine");
    process.exit(1);
  }
  if (existsSync(SOCK)) {
    console.error(`${SOCK} is in use: stop that plugin first (this benchmark measures its own)`);
    process.exit(1);
  }
  ensureImage();
}
