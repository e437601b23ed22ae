// Container runtimes of a test's own, each in a network namespace the test made (or the host's):
// a containerd with its own root, state and socket, driven by ctr (`ctr run --cni`, whose CNI
// config directory and plugin directory are fixed at /etc/cni/net.d and /opt/cni/bin: ctr runs in a
// private mount namespace where those two are the test's directories); and podman with its own
// storage, run directory and containers.conf (CNI backend, the test's config and plugin
// directories). Images are built offline: ctr takes the root filesystem as a directory, podman
// imports it as a tar. Nothing outside the test's directories is written.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";

const sh = (cmd: string[], timeout = 120_000) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout });
// nsenter, not ip netns exec: that one remounts /sys for the namespace, hiding the cgroup mounts runc needs
const inNs = (ns: string | null, cmd: string[]) => (ns ? ["nsenter", `--net=/var/run/netns/${ns}`, ...cmd] : cmd);

/** Why these runtimes cannot run here, or null. */
export function runtimesUnavailable(): string | null {
  for (const [tool, pkg] of [
    ["containerd", "containerd (comes with docker.io)"],
    ["ctr", "containerd (comes with docker.io)"],
    ["podman", "podman"],
    ["unshare", "util-linux"],
  ])
    if (sh(["sh", "-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed (apt-get install ${pkg})`;
  return null;
}

// ctr with our CNI directories: a private mount namespace where /etc/cni/net.d and /opt/cni/bin are
// the test's ($1, $2); /opt is a fresh tmpfs there, and /etc/cni too when the host has no net.d
const CTR_CNI = `set -e
NETD=$1 BIN=$2; shift 2
if [ -d /etc/cni/net.d ]; then mount --bind "$NETD" /etc/cni/net.d
elif [ -d /etc/cni ]; then mount -t tmpfs none /etc/cni; mkdir /etc/cni/net.d; mount --bind "$NETD" /etc/cni/net.d
else mount -t tmpfs none /etc; echo "no /etc/cni" >&2; exit 1; fi
mount -t tmpfs none /opt; mkdir -p /opt/cni/bin; mount --bind "$BIN" /opt/cni/bin
exec ctr "$@"`;

export class Containerd {
  private pid = 0;
  readonly sock: string;
  constructor(
    private readonly dir: string,
    private readonly ns: string | null,
    /** CNI config directory and plugin directory for ctr run --cni */
    private readonly netd: string,
    private readonly bin: string,
  ) {
    this.sock = `${dir}/containerd.sock`;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(
      `${this.dir}/config.toml`,
      `version = 2\nroot = "${this.dir}/root"\nstate = "${this.dir}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${this.sock}"\n[ttrpc]\n  address = "${this.sock}.ttrpc"\n`,
    );
    const p = Bun.spawn(inNs(this.ns, ["containerd", "--config", `${this.dir}/config.toml`]), {
      stdout: "ignore",
      stderr: Bun.file(`${this.dir}/containerd.log`),
    });
    this.pid = p.pid;
    for (let i = 0; i < 100 && !existsSync(this.sock); i++) await Bun.sleep(100);
    if (!existsSync(this.sock)) throw new Error(`containerd did not start: see ${this.dir}/containerd.log`);
  }

  /** ctr against this containerd, with the CNI directories in place. */
  ctrArgs(args: string[]): string[] {
    return inNs(this.ns, [
      "unshare",
      "-m",
      "--propagation",
      "private",
      "sh",
      "-c",
      CTR_CNI,
      "ctr-cni",
      this.netd,
      this.bin,
      "-a",
      this.sock,
      ...args,
    ]);
  }
  ctr(...args: string[]) {
    return sh(this.ctrArgs(args));
  }

  /** `ctr run --rm --cni` in the foreground (its CNI DEL runs when the task ends), as a child process. */
  run(id: string, rootfs: string, mounts: [string, string][], cmd: string[]) {
    const m = mounts.flatMap(([src, dst]) => ["--mount", `type=bind,src=${src},dst=${dst},options=rbind:ro`]);
    return Bun.spawn(
      this.ctrArgs(["run", "--rm", "--cni", "--env", "PATH=/bin", ...m, "--rootfs", rootfs, id, ...cmd]),
      {
        stdout: "ignore",
        stderr: Bun.file(this.log(id)),
      },
    );
  }
  /** Where `run` writes what ctr says (its CNI errors). */
  log(id: string): string {
    return `${this.dir}/ctr-${id}.log`;
  }

  /** Run a command in a running task; its output. */
  exec(id: string, ...cmd: string[]) {
    return sh(
      this.ctrArgs(["task", "exec", "--exec-id", `x${Date.now()}${Math.floor(Math.random() * 1e6)}`, id, ...cmd]),
    );
  }

  /** Start a shell command in a running task and leave it running. */
  detached(id: string, cmd: string) {
    return Bun.spawn(this.ctrArgs(["task", "exec", "--exec-id", `d${Date.now()}`, id, "sh", "-c", cmd]));
  }

  async stop(): Promise<void> {
    if (!this.pid) return;
    for (const t of this.ctr("task", "ls", "-q").stdout.split("\n").filter(Boolean))
      this.ctr("task", "kill", "-s", "SIGKILL", t);
    await Bun.sleep(500);
    for (const c of this.ctr("containers", "ls", "-q").stdout.split("\n").filter(Boolean)) {
      this.ctr("task", "rm", "-f", c);
      this.ctr("containers", "rm", c);
    }
    process.kill(this.pid, "SIGTERM");
    for (let i = 0; i < 50 && sh(["kill", "-0", String(this.pid)]).status === 0; i++) await Bun.sleep(100);
    this.pid = 0;
  }
}

export class Podman {
  constructor(
    private readonly dir: string,
    private readonly ns: string | null,
    netd: string,
    bin: string,
  ) {
    mkdirSync(dir, { recursive: true });
    // limits no higher than this machine's hard limits (podman's defaults are refused where they are lower)
    writeFileSync(
      `${dir}/containers.conf`,
      `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ["${bin}"]\nnetwork_config_dir = "${netd}"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n`,
    );
  }
  args(a: string[]): string[] {
    return inNs(this.ns, [
      "env",
      `CONTAINERS_CONF=${this.dir}/containers.conf`,
      "podman",
      "--root",
      `${this.dir}/storage`,
      "--runroot",
      `${this.dir}/run`,
      "--storage-driver",
      "vfs",
      ...a,
    ]);
  }
  podman(...a: string[]) {
    return sh(this.args(a), 180_000);
  }
  /** Import a root filesystem directory as an image. */
  importRootfs(rootfs: string, image: string): void {
    const r = spawnSync(
      "sh",
      [
        "-c",
        `tar -C ${rootfs} -c . | ${this.args(["import", "-", image])
          .map((x) => `'${x}'`)
          .join(" ")}`,
      ],
      {
        encoding: "utf8",
        timeout: 180_000,
      },
    );
    if (r.status !== 0) throw new Error(`podman import: ${r.stderr}`);
  }
  /** Remove every container (their CNI DEL runs) and the storage's mounts. */
  stop(): void {
    this.podman("rm", "-af", "-t", "0");
  }
}
