// --metrics ADDR (and --metrics-public) for the long-running apps: their Prometheus metrics and the
// web view on HOST:PORT, loopback unless --metrics-public. Checked with the other flags; served once
// the app runs.
import { type ListenAddr, type MetricsRoutes, parseListenAddr, serveMetrics } from "../index.ts";
import { UsageError } from "./cli.ts";

export const METRICS_USAGE =
  "--metrics HOST:PORT  Prometheus metrics and the web view there (loopback; --metrics-public: any)";

export interface MetricsFlag {
  raw: string;
  public: boolean;
}

/** Take --metrics ADDR or --metrics-public at argv[i]: how many arguments it used (0: not ours). */
export function takeMetricsFlag(argv: string[], i: number, into: MetricsFlag): number {
  if (argv[i] === "--metrics-public") {
    into.public = true;
    return 1;
  }
  if (argv[i] !== "--metrics") return 0;
  if (!argv[i + 1]) throw new UsageError("--metrics needs HOST:PORT (e.g. 127.0.0.1:9100)");
  into.raw = argv[i + 1];
  return 2;
}

/** The address, checked (a UsageError saying what to change), or null without --metrics. */
export function metricsAddr(m: MetricsFlag): ListenAddr | null {
  if (!m.raw) {
    if (m.public) throw new UsageError("--metrics-public goes with --metrics HOST:PORT");
    return null;
  }
  try {
    return parseListenAddr(m.raw, "--metrics", m.public, "--metrics-public");
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Serve them; a port that cannot be had is one sentence. */
export function startMetrics(addr: ListenAddr | null, routes: MetricsRoutes, app: string) {
  if (!addr) return null;
  try {
    const s = serveMetrics(addr, routes);
    process.stderr.write(`${app}: metrics and web view on ${s.url}\n`);
    return s;
  } catch (e) {
    throw new UsageError(
      `--metrics ${addr.hostname}:${addr.port}: cannot listen there (${(e as Error).message}); choose another port`,
    );
  }
}
