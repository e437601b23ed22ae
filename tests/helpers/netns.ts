// Two network namespaces joined by a veth pair, made and removed by the test; packets carry 198.18.0.0/15.
// Everything a test sends stays on this pair.
import { spawnSync } from "node:child_process";

export interface Pair {
  a: string;
  b: string;
  ifA: string;
  ifB: string;
  macA: string;
  macB: string;
}

const sh = (cmd: string[]) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout: 180_000 });

/** Why privileged tests cannot run here, or null if they can. */
export function privilegedUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "not root: network namespaces need CAP_SYS_ADMIN/CAP_NET_ADMIN";
  if (sh(["ip", "-V"]).status !== 0) return "iproute2 (ip) is not installed";
  const probe = `bmprobe${process.pid}`;
  const r = sh(["ip", "netns", "add", probe]);
  if (r.status !== 0) return `cannot create a network namespace: ${r.stderr.trim()}`;
  sh(["ip", "netns", "del", probe]);
  return null;
}

export function makePair(tag: string): Pair {
  const a = `bm${tag}a`,
    b = `bm${tag}b`,
    ifA = `${tag}a0`.slice(0, 15),
    ifB = `${tag}b0`.slice(0, 15);
  const run = (cmd: string[]) => {
    const r = sh(cmd);
    if (r.status !== 0) {
      destroyPair({ a, b } as Pair);
      throw new Error(`${cmd.join(" ")}: ${r.stderr.trim()}`);
    }
    return r.stdout;
  };
  run(["ip", "netns", "add", a]);
  run(["ip", "netns", "add", b]);
  run(["ip", "link", "add", ifA, "netns", a, "type", "veth", "peer", "name", ifB, "netns", b]);
  // pure L2: no addresses on the veths (198.18.x only inside the packets), no IPv6, so the
  // namespaces' own stacks never answer or emit anything (no ICMP, ARP or ND) onto the pair
  for (const [ns, dev] of [
    [a, ifA],
    [b, ifB],
  ]) {
    run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    run(["ip", "-n", ns, "link", "set", dev, "up"]);
  }
  const mac = (ns: string, dev: string) =>
    run(["ip", "netns", "exec", ns, "cat", `/sys/class/net/${dev}/address`]).trim();
  return { a, b, ifA, ifB, macA: mac(a, ifA), macB: mac(b, ifB) };
}

export function destroyPair(p: Pick<Pair, "a" | "b">): void {
  sh(["ip", "netns", "del", p.a]); // deleting a namespace deletes the veth end in it, and so its peer
  sh(["ip", "netns", "del", p.b]);
}

export function nsExists(ns: string): boolean {
  return sh(["ip", "netns", "list"])
    .stdout.split("\n")
    .some((l) => l.split(" ")[0] === ns);
}

/** Run a bun script inside a namespace. */
export function inNs(ns: string, args: string[], env: Record<string, string> = {}) {
  return Bun.spawn(["ip", "netns", "exec", ns, process.execPath, ...args], {
    timeout: 180_000,
    killSignal: "SIGKILL",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
}

export function counter(
  ns: string,
  dev: string,
  what: "rx_packets" | "tx_packets" | "rx_dropped" | "tx_dropped",
): number {
  return Number(sh(["ip", "netns", "exec", ns, "cat", `/sys/class/net/${dev}/statistics/${what}`]).stdout.trim());
}

/** Everything a child prints, read as it comes: wait for a line, or for the end. */
export function output(p: ReturnType<typeof Bun.spawn>) {
  let text = "";
  const done = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of p.stdout as ReadableStream<Uint8Array>) text += dec.decode(chunk);
    return text;
  })();
  return {
    async until(re: RegExp): Promise<string> {
      const deadline = Date.now() + 20_000;
      while (!re.test(text)) {
        if (Date.now() > deadline || p.exitCode !== null)
          throw new Error(`no ${re} in: ${text} ${await new Response(p.stderr as ReadableStream).text()}`);
        await Bun.sleep(20);
      }
      return text;
    },
    all: () => done,
  };
}

/** Why a Docker engine of a test's own (docker/host-ns.sh) cannot run here, or null. */
export function privateEngineUnavailable(): string | null {
  return (
    privilegedUnavailable() ??
    (sh(["dockerd", "--version"]).status !== 0 ? "dockerd is not installed (apt-get install docker.io)" : null) ??
    (sh(["test", "-x", "/bin/busybox"]).status !== 0 ? "busybox-static is not installed" : null)
  );
}
