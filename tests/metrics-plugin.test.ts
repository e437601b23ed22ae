// The plugin's metrics and web view, live: a datapath process in a namespace of the test's own with
// BUNMAP_PLUGIN_HTTP on its loopback, two containers attached by the CNI executable, pings of a
// known size between them. /metrics (on the TCP address and on the Unix socket) is read by the
// official Prometheus parser and the counts compared with what was sent; the TCP address serves no
// method that changes anything; a non-loopback address is refused unless asked. Then headless
// Chromium (playwright-core) opens the web view while traffic flows and sees the port's counter and
// plot rise; the screenshot is saved in tests/out/.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { buildCniDir, cniEnv, cniUnavailable, removeDir, runPlugin } from "./helpers/cni.ts";
import { privilegedUnavailable } from "./helpers/netns.ts";
import { must, PluginProc, sh } from "./helpers/plugin-proc.ts";
import { parseWithPrometheus, prometheusParserUnavailable } from "./helpers/prometheus.ts";

setDefaultTimeout(120_000);
const why = privilegedUnavailable() ?? cniUnavailable() ?? prometheusParserUnavailable();
if (why) console.warn(`SKIP plugin metrics tests: ${why}`);
const browserWhy =
  why ??
  (existsSync("/usr/bin/chromium") ? null : "chromium is not installed (apt-get install chromium; .ci/run does)");
if (!why && browserWhy) console.warn(`SKIP the web view in a browser: ${browserWhy}`);

const H = `bmmx${process.pid}h`;
const ADDR = "127.0.0.1:9121";
let dir = "";
let work = "";
let plugin: PluginProc | null = null;
const containers: string[] = [];
const attached: Record<string, { ip: string; host: string; mac: string }> = {};

const curl = (...a: string[]) => sh(["ip", "netns", "exec", H, "curl", "-s", "--max-time", "5", ...a]);
const metrics = () => parseWithPrometheus(curl(`http://${ADDR}/metrics`).stdout);
const value = (all: ReturnType<typeof metrics>, name: string, labels: Record<string, string>) =>
  all.find((s) => s[0] === name && Object.entries(labels).every(([k, v]) => s[1][k] === v))?.[2] ?? Number.NaN;

beforeAll(async () => {
  if (why) return;
  dir = buildCniDir();
  work = mkdtempSync(`${tmpdir()}/bunmap-metrics-`);
  must(["ip", "netns", "add", H]);
  must(["ip", "-n", H, "link", "set", "lo", "up"]);
  must(["ip", "netns", "exec", H, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  plugin = new PluginProc({ BUNMAP_PLUGIN_SOCK: `${work}/p.sock`, BUNMAP_PLUGIN_HTTP: ADDR }, [
    "ip",
    "netns",
    "exec",
    H,
  ]);
  const banner = await plugin.start();
  expect(banner).toContain(`metrics and web view on http://${ADDR}/`);
  const conf = {
    cniVersion: "1.0.0",
    name: "seen",
    type: "bunmap",
    socket: `${work}/p.sock`,
    ipam: { type: "host-local", dataDir: `${work}/ipam`, ranges: [[{ subnet: "198.18.66.0/24" }]] },
  };
  for (const c of ["c1", "c2"]) {
    const ns = `bmmx${process.pid}${c}`;
    must(["ip", "netns", "add", ns]);
    containers.push(ns);
    // a quiet container: no IPv6 (router solicitations, MLD), so the counts below are the test's frames
    must(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    must(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    const r = runPlugin(
      `${dir}/bunmap`,
      cniEnv(dir, { command: "ADD", container: c, netns: `/var/run/netns/${ns}` }),
      JSON.stringify(conf),
      H,
    );
    if (r.code !== 0) throw new Error(r.out);
    const res = r.json as { ips: { address: string }[]; interfaces: { name: string; mac: string; sandbox?: string }[] };
    attached[c] = {
      ip: res.ips[0].address.split("/")[0],
      host: res.interfaces.find((i) => !i.sandbox)!.name,
      mac: res.interfaces.find((i) => i.sandbox)!.mac,
    };
  }
});

afterAll(async () => {
  if (why) return;
  await plugin?.dispose();
  for (const ns of [...containers, H]) sh(["ip", "netns", "del", ns]);
  removeDir(dir);
  removeDir(work);
});

const ns = (c: string) => `bmmx${process.pid}${c}`;

describe.skipIf(!!why)("the plugin's metrics", () => {
  test("pings of a known size are counted on both ports, packets and bytes, as the parser reads them", () => {
    // neighbours fixed (no ARP frames among the counted ones), then a measured burst
    for (const [a, b] of [
      ["c1", "c2"],
      ["c2", "c1"],
    ])
      must([
        "ip",
        "-n",
        ns(a),
        "neigh",
        "replace",
        attached[b].ip,
        "lladdr",
        attached[b].mac,
        "nud",
        "permanent",
        "dev",
        "eth0",
      ]);
    must(["ip", "netns", "exec", ns("c1"), "ping", "-c", "2", "-i", "0.2", attached.c2.ip]);
    const port = (c: string) => ({ port: attached[c].host, kind: "container", container: c, network: "cni-seen" });
    const before = metrics();
    must(["ip", "netns", "exec", ns("c1"), "ping", "-c", "20", "-i", "0.01", "-s", "100", attached.c2.ip]);
    const after = metrics();
    const delta = (name: string, c: string) => value(after, name, port(c)) - value(before, name, port(c));
    const frame = 14 + 20 + 8 + 100; // Ethernet, IPv4, ICMP, 100 bytes of payload
    expect(delta("bunmap_port_rx_packets_total", "c1")).toBe(20); // requests from c1
    expect(delta("bunmap_port_tx_packets_total", "c1")).toBe(20); // replies to c1
    expect(delta("bunmap_port_rx_bytes_total", "c1")).toBe(20 * frame);
    expect(delta("bunmap_port_tx_bytes_total", "c2")).toBe(20 * frame);
    expect(delta("bunmap_port_rx_bytes_total", "c2")).toBe(20 * frame);
    for (const reason of ["no_room", "too_long", "offload"])
      expect(value(after, "bunmap_port_drops_total", { ...port("c1"), reason })).toBe(0);
    // known unicast between two containers takes the kernel fast path, and is counted there
    expect(
      value(after, "bunmap_port_fastpath_packets_total", { ...port("c1"), direction: "rx" }),
    ).toBeGreaterThanOrEqual(20);
    expect(value(after, "bunmap_switch_stations", { network: "cni-seen" })).toBe(3); // two containers and the gateway
    expect(value(after, "bunmap_endpoints", { joined: "true" })).toBe(2);
    // the same families on the plugin's Unix socket
    const onSocket = parseWithPrometheus(
      sh(["curl", "-s", "--unix-socket", `${work}/p.sock`, "http://x/metrics"]).stdout,
    );
    expect(onSocket.map((s) => s[0])).toEqual(after.map((s) => s[0]));
    // the learning table as the view lists it
    const state = JSON.parse(curl(`http://${ADDR}/api/state`).stdout) as {
      switches: { stations: { mac: string; port: string; container: string }[] }[];
    };
    expect(state.switches[0].stations).toContainEqual(
      expect.objectContaining({ mac: attached.c1.mac, port: attached.c1.host, container: "c1" }),
    );
  });

  test("the TCP address serves nothing that changes anything", () => {
    const status = (method: string, path: string) =>
      curl("-o", "/dev/null", "-w", "%{http_code}", "-X", method, "-d", "{}", `http://${ADDR}${path}`).stdout;
    for (const path of [
      "/Plugin.Activate",
      "/NetworkDriver.CreateNetwork",
      "/NetworkDriver.DeleteEndpoint",
      "/NetworkDriver.Join",
      "/bunmap/cni",
    ])
      expect(status("POST", path), path).toBe("404");
    expect(status("GET", "/bunmap/networks")).toBe("200");
    expect(status("GET", "/metrics")).toBe("200");
  });

  test("a non-loopback or malformed address is refused in one sentence, nothing made; allowed when asked", async () => {
    must(["ip", "-n", H, "addr", "add", "198.18.67.1/32", "dev", "lo"]);
    const start = (env: Record<string, string>) => {
      const d = `${work}/second-${Object.values(env)
        .join("-")
        .replace(/[^0-9a-z]/gi, "")}`;
      const r = sh([
        "ip",
        "netns",
        "exec",
        H,
        "env",
        ...Object.entries({
          BUNMAP_PLUGIN_SOCK: `${d}.sock`,
          BUNMAP_PLUGIN_DB: `${d}/vale.db`,
          BUNMAP_PLUGIN_BACKEND: "packet",
          ...env,
        }).map(([k, v]) => `${k}=${v}`),
        process.execPath,
        `${import.meta.dir}/../plugin/main.ts`,
      ]);
      return { ...r, made: existsSync(d) };
    };
    const far = start({ BUNMAP_PLUGIN_HTTP: "198.18.67.1:9122" });
    expect(far.status).toBe(1);
    expect(far.stderr.trim()).toBe(
      "plugin: BUNMAP_PLUGIN_HTTP 198.18.67.1:9122 is not a loopback address: the metrics and the web view show this host's traffic; add BUNMAP_PLUGIN_HTTP_PUBLIC=1 to serve them there",
    );
    expect(far.made).toBe(false);
    const bad = start({ BUNMAP_PLUGIN_HTTP: "9122" });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe(
      'plugin: BUNMAP_PLUGIN_HTTP "9122": expected HOST:PORT, e.g. 127.0.0.1:9100 or [::1]:9100',
    );
    // asked: it serves there
    const asked = new PluginProc(
      {
        BUNMAP_PLUGIN_SOCK: `${work}/asked.sock`,
        BUNMAP_PLUGIN_HTTP: "198.18.67.1:9122",
        BUNMAP_PLUGIN_HTTP_PUBLIC: "1",
      },
      ["ip", "netns", "exec", H],
    );
    try {
      expect(await asked.start()).toContain("metrics and web view on http://198.18.67.1:9122/");
      expect(curl("http://198.18.67.1:9122/metrics").stdout).toContain("# TYPE bunmap_networks gauge");
    } finally {
      await asked.dispose();
    }
  });
});

describe.skipIf(!!browserWhy)("the web view in a browser", () => {
  test("headless Chromium sees a port's counter and plot rise while traffic flows; screenshot saved", async () => {
    const { chromium } = await import("playwright-core");
    // the browser in the test's namespace, where the plugin's loopback address is
    const wrapper = `${work}/chromium-in-ns.sh`;
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${H} /usr/bin/chromium "$@"\n`, { mode: 0o755 });
    const traffic = Bun.spawn(
      ["ip", "netns", "exec", ns("c1"), "ping", "-c", "1500", "-i", "0.005", "-s", "500", attached.c2.ip],
      { stdout: "ignore" },
    );
    const browser = await chromium.launch({ executablePath: wrapper, args: ["--headless", "--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`http://${ADDR}/`);
      const row = page.locator(`#ports tr[data-port="${attached.c1.host}"]`);
      await row.waitFor({ timeout: 10_000 });
      const total = async () => Number(await row.locator("td.rx-total").getAttribute("data-value"));
      const first = await total();
      // at least three refreshes (one a second; a loaded machine may be slower): a plot of two rates or more
      const plot = `#ports tr[data-port="${attached.c1.host}"] td.pps-plot polyline`;
      await page.waitForFunction(
        `Number(document.querySelector('${plot}')?.getAttribute("data-points")) >= 3`,
        undefined,
        { timeout: 20_000 },
      );
      const later = await total();
      expect(later).toBeGreaterThan(first + 100); // ~200 pings a second
      expect(Number((await row.locator("td.rx-pps").textContent())?.trim().split(" ")[0])).toBeGreaterThan(0);
      const line = row.locator("td.pps-plot polyline");
      expect(Number(await line.getAttribute("data-points"))).toBeGreaterThanOrEqual(3);
      expect(Number(await line.getAttribute("data-max"))).toBeGreaterThan(50); // the plot's top: pps, not zero
      // 500-byte pings, ~200 a second each way: the bit rate's plot tops above 1 Mbit/s
      expect(Number(await row.locator("td.bps-plot polyline").getAttribute("data-max"))).toBeGreaterThan(1e6);
      // the learning table lists the container's MAC behind its port; the other counters are there
      expect(await page.locator(`#fdb td.mac:text("${attached.c1.mac}")`).count()).toBe(1);
      expect(await page.locator('#other tr[data-metric="bunmap_networks"] td.value').textContent()).toBe("1");
      mkdirSync(`${import.meta.dir}/out`, { recursive: true });
      await page.screenshot({ path: `${import.meta.dir}/out/web-view.png`, fullPage: true });
      console.log(`web view screenshot: ${import.meta.dir}/out/web-view.png`);
    } finally {
      await browser.close();
      traffic.kill();
      await traffic.exited;
    }
  });

  test("an NF's counters and a generator's latency histograms on their apps' pages", async () => {
    const { chromium } = await import("playwright-core");
    const repo = `${import.meta.dir}/..`;
    const [nfAddr, genAddr] = [
      `127.0.0.1:${21000 + (process.pid % 9000)}`,
      `127.0.0.1:${30000 + (process.pid % 9000)}`,
    ];
    const app = (...a: string[]) =>
      Bun.spawn([process.execPath, ...a], { cwd: repo, stdout: "ignore", stderr: "ignore" });
    const nf = app("src/app/nf/main.ts", "examples/graph.ts", "-t", "60", "--metrics", nfAddr);
    const rx = app(
      "src/app/pktgen/main.ts",
      "--profile",
      "examples/profile.ts",
      "-f",
      "rx",
      "-i",
      `shm:bmv${process.pid}}0`,
      "--seconds",
      "60",
      "--metrics",
      genAddr,
    );
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox"],
    });
    try {
      await Bun.sleep(1500);
      const send = (...a: string[]) => sh([process.execPath, `${repo}/src/app/pktgen/main.ts`, ...a]);
      expect(send("-i", "shm:g}0", "-f", "tx", "-n", "3000").status).toBe(0);
      expect(
        send("--profile", `${repo}/examples/profile.ts`, "-f", "tx", "-i", `shm:bmv${process.pid}{0`, "-n", "1000")
          .status,
      ).toBe(0);
      const page = await browser.newPage();
      await page.goto(`http://${nfAddr}/`);
      const fw = page.locator('#nfs tr[data-nf="fw"] td.nf-total');
      await fw.waitFor({ timeout: 10_000 });
      await page.waitForFunction(
        `document.querySelector('#nfs tr[data-nf="fw"] td.nf-total')?.textContent === "3.0 k"`,
      ); // 3000 packets
      await page.goto(`http://${genAddr}/`);
      await page.waitForSelector('[data-histogram="bunmap_gen_latency_seconds"]');
      expect(await page.locator('[data-histogram="bunmap_gen_latency_seconds"]').count()).toBe(2); // two streams
      expect(await page.locator('[data-histogram="bunmap_gen_latency_seconds"] rect.bar').count()).toBeGreaterThan(0);
      await page.screenshot({ path: `${import.meta.dir}/out/web-view-pktgen.png`, fullPage: true });
    } finally {
      await browser.close();
      nf.kill("SIGINT");
      rx.kill("SIGINT");
      await Promise.all([nf.exited, rx.exited]);
    }
  });
});
