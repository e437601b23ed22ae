// --metrics on the long-running apps (no root: shm ports): bun run switch, pktgen --profile and bun
// run nf serve Prometheus metrics while they run; a known amount of traffic is sent through each and
// the counts, read by the official parser, are what was sent. Bad --metrics flags are one line.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { parseWithPrometheus, prometheusParserUnavailable } from "./helpers/prometheus.ts";

setDefaultTimeout(60_000);
const repo = `${import.meta.dir}/..`;
const why = prometheusParserUnavailable();
if (why) console.warn(`SKIP apps' metrics: ${why}`);

const tag = `mx${process.pid}`;
const port = (k: number) => 20000 + ((process.pid * 7 + k) % 20000);
const bun = (...a: string[]) =>
  Bun.spawn([process.execPath, ...a], { cwd: repo, stdout: "pipe", stderr: "pipe", env: { ...process.env } });
const run = (...a: string[]) => spawnSync(process.execPath, a, { cwd: repo, encoding: "utf8", timeout: 60_000 });

/** pktgen receiving examples/profile.ts's streams on port `i`. */
const profileRx = (i: string) => ["src/app/pktgen/main.ts", "--profile", "examples/profile.ts", "-f", "rx", "-i", i];

/** The metrics at addr once it answers (the app is starting). */
async function scrape(addr: string): Promise<[string, Record<string, string>, number][]> {
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`http://${addr}/metrics`).catch(() => null);
    if (r?.ok) return parseWithPrometheus(await r.text());
    await Bun.sleep(100);
  }
  throw new Error(`nothing answers on ${addr}`);
}
const val = (all: [string, Record<string, string>, number][], name: string, labels: Record<string, string> = {}) =>
  all.find((s) => s[0] === name && Object.entries(labels).every(([k, v]) => s[1][k] === v))?.[2];

describe.skipIf(!!why)("--metrics on the apps", () => {
  test("bun run switch: a flood of 1000 frames counted on both ports, packets and bytes", async () => {
    const addr = `127.0.0.1:${port(1)}`;
    const sw = bun(
      "src/app/switch/main.ts",
      "-i",
      `shm:${tag}s{0`,
      "-i",
      `shm:${tag}s{1`,
      "--metrics",
      addr,
      "-t",
      "20",
    );
    try {
      await scrape(addr);
      const rx = bun("src/app/pktgen/main.ts", "-i", `shm:${tag}s}1`, "-f", "rx", "-n", "1000");
      const tx = run("src/app/pktgen/main.ts", "-i", `shm:${tag}s}0`, "-f", "tx", "-n", "1000"); // broadcast frames: flooded
      expect(tx.status, tx.stderr).toBe(0);
      await rx.exited;
      const m = await scrape(addr);
      expect(val(m, "bunmap_port_rx_packets_total", { port: `shm:${tag}s{0` })).toBe(1000);
      expect(val(m, "bunmap_port_rx_bytes_total", { port: `shm:${tag}s{0` })).toBe(1000 * 60);
      expect(val(m, "bunmap_port_tx_packets_total", { port: `shm:${tag}s{1` })).toBe(1000);
      expect(val(m, "bunmap_port_tx_bytes_total", { port: `shm:${tag}s{1` })).toBe(1000 * 60);
      expect(val(m, "bunmap_switch_flooded_packets_total")).toBe(1000);
      expect(val(m, "bunmap_switch_busy_seconds_total")).toBeGreaterThan(0);
      const page = await (await fetch(`http://${addr}/`)).text();
      expect(page).toContain("<title>bunmap</title>");
      expect(page).not.toMatch(/src="https?:|href="https?:/); // nothing from elsewhere
    } finally {
      sw.kill("SIGINT");
      await sw.exited;
    }
  });

  test("pktgen --profile -f rx: each stream's packets, loss and latency histogram", async () => {
    const addr = `127.0.0.1:${port(2)}`;
    const rx = bun(...profileRx(`shm:${tag}p}0`), "--seconds", "20", "--metrics", addr);
    try {
      await scrape(addr);
      const tx = run(
        "src/app/pktgen/main.ts",
        "--profile",
        "examples/profile.ts",
        "-f",
        "tx",
        "-i",
        `shm:${tag}p{0`,
        "-n",
        "2000",
      );
      expect(tx.status, tx.stderr).toBe(0);
      await Bun.sleep(500);
      const m = await scrape(addr);
      for (const stream of ["dns", "web"]) {
        expect(val(m, "bunmap_gen_rx_packets_total", { stream }), stream).toBe(2000);
        expect(val(m, "bunmap_gen_lost_packets", { stream })).toBe(0);
        expect(val(m, "bunmap_gen_latency_seconds_count", { stream })).toBe(2000);
        const buckets = m
          .filter((s) => s[0] === "bunmap_gen_latency_seconds_bucket" && s[1].stream === stream)
          .map((s) => s[2]);
        expect(buckets.at(-1)).toBe(2000); // +Inf holds every packet
        for (let i = 1; i < buckets.length; i++) expect(buckets[i]).toBeGreaterThanOrEqual(buckets[i - 1]); // cumulative
        expect(val(m, "bunmap_gen_latency_seconds_sum", { stream })).toBeGreaterThan(0);
      }
    } finally {
      rx.kill("SIGINT");
      await rx.exited;
    }
  });

  test("pktgen's classic mode: what each thread received", async () => {
    const addr = `127.0.0.1:${port(4)}`;
    const rx = bun("src/app/pktgen/main.ts", "-i", `shm:${tag}c}0`, "-f", "rx", "--metrics", addr);
    try {
      await scrape(addr);
      const tx = run("src/app/pktgen/main.ts", "-i", `shm:${tag}c{0`, "-f", "tx", "-n", "5000", "-l", "100");
      expect(tx.status, tx.stderr).toBe(0);
      await Bun.sleep(300);
      const m = await scrape(addr);
      expect(val(m, "bunmap_pktgen_packets_total", { function: "rx", thread: "0" })).toBe(5000);
      expect(val(m, "bunmap_pktgen_bytes_total", { function: "rx", thread: "0" })).toBe(5000 * 100);
    } finally {
      rx.kill("SIGINT");
      await rx.exited;
    }
  });

  test("bun run nf: per-port and per-NF counters, drops by the NF's reason", async () => {
    const addr = `127.0.0.1:${port(3)}`;
    const nf = bun("src/app/nf/main.ts", "examples/graph.ts", "-t", "20", "--metrics", addr);
    try {
      await scrape(addr);
      const tx = run("src/app/pktgen/main.ts", "-i", "shm:g}0", "-f", "tx", "-n", "5000"); // examples/graph.ts's inside pipe
      expect(tx.status, tx.stderr).toBe(0);
      await Bun.sleep(500);
      const m = await scrape(addr);
      expect(val(m, "bunmap_nf_port_rx_packets_total", { port: "inside" })).toBe(5000);
      expect(val(m, "bunmap_nf_packets_total", { nf: "fw" })).toBe(5000);
      // the tutorial's firewall drops what its ACL does not allow: pkt-gen's UDP to port 1234 (README)
      expect(val(m, "bunmap_nf_drops_total", { nf: "fw", reason: "acl" })).toBe(5000);
    } finally {
      nf.kill("SIGINT");
      await nf.exited;
    }
  });

  for (const mode of ["workers", "processes"])
    test(`bun run nf on a split graph (${mode}): each part's counters, a second old at most`, async () => {
      const addr = `127.0.0.1:${port(mode === "workers" ? 5 : 6)}`;
      const nf = bun(
        "src/app/nf/main.ts",
        "examples/split.ts",
        "-t",
        "20",
        "--metrics",
        addr,
        ...(mode === "processes" ? ["--processes"] : []),
      );
      try {
        await scrape(addr);
        const tx = run("src/app/pktgen/main.ts", "-i", "shm:gs}0", "-f", "tx", "-n", "4000"); // examples/split.ts's inside pipe
        expect(tx.status, tx.stderr).toBe(0);
        await Bun.sleep(1500); // a report from each part
        const m = await scrape(addr);
        expect(val(m, "bunmap_nf_port_rx_packets_total", { part: "0", port: "inside" })).toBe(4000);
        expect(val(m, "bunmap_nf_drops_total", { part: "0", nf: "fw", reason: "acl" })).toBe(4000);
        expect(val(m, "bunmap_nf_packets_total", { part: "1", nf: "dedup" })).toBe(0); // the second part reports too
      } finally {
        nf.kill("SIGINT");
        await nf.exited;
      }
    });

  test("bad --metrics flags: one line each, exit 1, nothing started", () => {
    const cases: [string[], string][] = [
      [
        ["src/app/switch/main.ts", "-i", "shm:x{0", "-i", "shm:x{1", "--metrics", "0.0.0.0:9"],
        "is not a loopback address",
      ],
      [["src/app/switch/main.ts", "-i", "shm:x{0", "-i", "shm:x{1", "--metrics"], "--metrics needs HOST:PORT"],
      [
        ["src/app/switch/main.ts", "-i", "shm:x{0", "-i", "shm:x{1", "--metrics-public"],
        "--metrics-public goes with --metrics",
      ],
      [[...profileRx("shm:x}0"), "--metrics", "9100"], "expected HOST:PORT"],
      [
        ["src/app/pktgen/main.ts", "-i", "shm:x}0", "-f", "rx", "--metrics", "198.18.0.1:9"],
        "is not a loopback address",
      ],
      [["src/app/nf/main.ts", "examples/split.ts", "--metrics", "[::]:9"], "is not a loopback address"],
    ];
    for (const [argv, says] of cases) {
      const r = run(...argv);
      expect(r.status, argv.join(" ")).toBe(1);
      expect(r.stderr.trim().split("\n"), argv.join(" ")).toHaveLength(1);
      expect(r.stderr, argv.join(" ")).toContain(says);
    }
  });
});
