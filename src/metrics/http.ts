// The routes every bunmap server with metrics has, as an Elysia plugin: GET /metrics (the text
// format, scraped from its sources when asked), GET / (the web view) and, when given, GET
// /api/state (what the view lists beyond counters). Read-only: nothing here changes anything.
import { Elysia } from "elysia";
import { CONTENT_TYPE, type MetricsSource, scrape } from "./exposition.ts";
import type { ListenAddr } from "./listen.ts";
import { VIEW_HTML } from "./view.ts";

export interface MetricsRoutes {
  sources: MetricsSource[];
  /** JSON for the view's learning tables (the plugin's switches) */
  state?: () => unknown;
}

export function metricsRoutes(r: MetricsRoutes) {
  const app = new Elysia({ name: "bunmap-metrics" })
    .get("/metrics", () => new Response(scrape(r.sources), { headers: { "content-type": CONTENT_TYPE } }))
    .get("/", () => new Response(VIEW_HTML, { headers: { "content-type": "text/html; charset=utf-8" } }));
  return r.state ? app.get("/api/state", () => Response.json(r.state!())) : app;
}

/** A server of its own for an app's --metrics address (pktgen, switch, nf); stop() ends it. */
export function serveMetrics(addr: ListenAddr, r: MetricsRoutes): { stop(): Promise<void>; url: string } {
  const app = new Elysia().use(metricsRoutes(r)).listen({ hostname: addr.hostname, port: addr.port });
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    stop: async () => {
      await app.stop();
    },
    url: `http://${host}:${app.server?.port ?? addr.port}/`,
  };
}
