// The TCP tool of the container benchmarks (bench/c/tcpx.c: static C, 1 MiB writes, every byte
// checked), and what it moves on a plain veth pair between two namespaces, where nothing but the
// kernel limits it: a setup that moves less is measured, not the tool (issue 25).
import { spawnSync } from "node:child_process";
import { buildC } from "./cc.ts";

/** The tool on this host (built static on first use). */
export const tcpxHost = () => buildC("tcpx", { static: true });
/** The tool inside a container that mounts the repository at /bunmap. */
export const TCPX = "/bunmap/bench/out/tcpx";
/** Bytes per transfer. */
export const TCP_BYTES = "1000000000";

/** MB/s from the client's line ("sent BYTES MB/s R"). */
export const tcpxRate = (out: string): number => Number(/MB\/s ([0-9.]+)/.exec(out)?.[1] ?? Number.NaN);

export interface VethRun {
  mtu?: number;
  /** Client and server on the first namespace's loopback instead (what the tool alone moves). */
  loopback?: boolean;
  /** Run in each namespace (x: the client's, y: the server's) once the pair is up, e.g. to attach XDP. */
  prepare?: (ns: { x: string; y: string }) => void;
}

/** One transfer on a fresh veth pair between two namespaces named from `tag`; MB/s. */
export function tcpxOnVeth(tag: string, o: VethRun = {}): number {
  const bin = tcpxHost();
  const [x, y] = [`${tag}x`, `${tag}y`];
  try {
    must("ip", "netns", "add", x);
    must("ip", "netns", "add", y);
    must("ip", "link", "add", "vt0", "netns", x, "type", "veth", "peer", "name", "vt0", "netns", y);
    for (const [n, a] of [
      [x, "198.18.153.1/30"],
      [y, "198.18.153.2/30"],
    ]) {
      must("ip", "-n", n, "addr", "add", a, "dev", "vt0");
      must("ip", "-n", n, "link", "set", "vt0", "mtu", String(o.mtu ?? 1500), "up");
    }
    o.prepare?.({ x, y });
    if (o.loopback) must("ip", "-n", x, "link", "set", "lo", "up");
    const srv = Bun.spawn(["ip", "netns", "exec", o.loopback ? x : y, bin, "server", "5001"], { stdout: "ignore" });
    Bun.sleepSync(300);
    const to = o.loopback ? "127.0.0.1" : "198.18.153.2";
    const out = must("ip", "netns", "exec", x, bin, "client", to, "5001", TCP_BYTES);
    srv.kill();
    return tcpxRate(out);
  } finally {
    spawnSync("ip", ["netns", "del", x]);
    spawnSync("ip", ["netns", "del", y]);
  }
}

export function must(...a: string[]): string {
  const r = spawnSync(a[0], a.slice(1), { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${a.join(" ")}: ${r.stderr || r.stdout}`);
  return r.stdout;
}
