// The test image, built offline: busybox-static for the shell tools, plus the host's bun binary and
// the libraries it links (the repository is bind-mounted at /bunmap when a test needs bun inside).
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname } from "node:path";

export const IMAGE = "bunmap-test:bun";

/** Build the image unless the engine has it; `host`: another engine's socket (docker -H unix://…). */
export function ensureImage(host = ""): void {
  const H = host ? `-H unix://${host} ` : "";
  if (spawnSync("sh", ["-c", `docker ${H}image inspect ${IMAGE}`], { timeout: 180_000 }).status === 0) return;
  const root = mkdtempSync(`${tmpdir()}/bunmap-rootfs-`);
  buildRootfs(root);
  const tar = spawnSync(
    "sh",
    ["-c", `tar -C ${root} -c . | docker ${H}import -c 'ENV PATH=/bin' -c 'CMD ["sleep", "100000"]' - ${IMAGE}`],
    { encoding: "utf8" },
  );
  rmSync(root, { recursive: true, force: true });
  if (tar.status !== 0) throw new Error(`docker import: ${tar.stderr}`);
}

/** The test image's root filesystem in `root` (an empty directory): busybox-static with every applet
 * linked, bun and the libraries it links. For runtimes that take a directory or a tar (ctr --rootfs,
 * podman import). */
export function buildRootfs(root: string): void {
  mkdirSync(`${root}/bin`, { recursive: true });
  mkdirSync(`${root}/tmp`);
  const bb = "/bin/busybox";
  if (!existsSync(bb)) throw new Error("busybox-static is not installed (apt-get install busybox-static)");
  copyFileSync(bb, `${root}/bin/busybox`);
  for (const a of spawnSync(bb, ["--list"], { encoding: "utf8", timeout: 180_000 })
    .stdout.split("\n")
    .filter(Boolean)) {
    if (a !== "busybox" && !existsSync(`${root}/bin/${a}`)) symlinkSync("busybox", `${root}/bin/${a}`);
  }
  const bun = realpathSync(process.execPath);
  copyFileSync(bun, `${root}/bin/bun`);
  // the dynamic loader and every library bun links, at the same paths
  for (const line of spawnSync("ldd", [bun], { encoding: "utf8", timeout: 180_000 }).stdout.split("\n")) {
    const m = /(\/\S+) \(0x/.exec(line) ?? /=> (\/\S+)/.exec(line);
    if (!m) continue;
    const lib = m[1];
    mkdirSync(`${root}${dirname(lib)}`, { recursive: true });
    copyFileSync(realpathSync(lib), `${root}${lib}`);
  }
}
