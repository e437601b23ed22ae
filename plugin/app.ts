// The HTTP face of the driver: Docker's remote NetworkDriver API (POST /<Method>, JSON, often no
// Content-Type, empty bodies for Activate/GetCapabilities) and a small management API, as Elysia
// routes. One parser takes every body as JSON whatever the headers say; each route declares its
// body schema (TypeBox), checked as it came (normalisation off: see schemas.ts), so handlers
// receive typed, checked bodies; errors map to answers in one place: a malformed body or a field of
// the wrong type 400 {"Err"} naming the field, a body over 64 KiB 413, a refusal 200 {"Err"} (what
// Docker shows the user), an unknown method 404, anything else 500 with one line.
import type { TSchema } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { CNI_ROUTE, CniCallSchema } from "../cni/proto.ts";
import { metricsRoutes } from "../src/index.ts";
import type { Driver } from "./driver.ts";
import { pluginMetrics, pluginState } from "./metrics.ts";
import { Refused } from "./refused.ts";
import * as S from "./schemas.ts";
import { MAX_BODY } from "./validate.ts";

const MIME = "application/vnd.docker.plugins.v1.2+json";

class TooLarge extends Error {}

const reply = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": MIME } });

/** The first thing wrong with a body, as "invalid request: /Field: expected ..., got ...". */
function invalid(error: unknown): string {
  const e = error as { validator?: { schema?: TSchema } & TSchema; value?: unknown };
  const schema = e.validator?.schema ?? e.validator;
  const first = schema ? S.firstError(schema, e.value) : null;
  return `invalid request: ${first ?? (error as Error).message}`;
}

export function makeApp(driver: Driver) {
  return (
    // normalize: false: a body is checked as sent, never rebuilt from the schema first
    new Elysia({ normalize: false })
      .onParse({ as: "global" }, async ({ request }) => {
        const text = await request.text();
        if (text.length > MAX_BODY) throw new TooLarge(`request body of ${text.length} bytes: at most ${MAX_BODY}`);
        if (!text.trim()) return {};
        try {
          return JSON.parse(text);
        } catch (e) {
          throw new S.BadRequest(`malformed JSON: ${(e as Error).message}`);
        }
      })
      .onError({ as: "global" }, ({ code, error, set }) => {
        const answer = (Err: string, status: number) => {
          set.status = status;
          return { Err };
        };
        if (code === "NOT_FOUND") return answer("unknown method", 404);
        if (code === "VALIDATION") return answer(invalid(error), 400);
        // what the parser threw comes wrapped in Elysia's ParseError, as its cause
        const e = code === "PARSE" ? ((error as Error).cause ?? error) : error;
        if (e instanceof TooLarge) return answer(e.message, 413);
        if (e instanceof S.BadRequest) return answer(e.message, 400);
        if (e instanceof Refused) return answer(e.message, 200);
        return answer(`internal error: ${(e as Error).message}`, 500);
      })
      // every answer is JSON with the plugin protocol's media type
      .mapResponse({ as: "global" }, ({ responseValue, set }) =>
        responseValue instanceof Response ? responseValue : reply(responseValue, Number(set.status ?? 200)),
      )
      .post("/Plugin.Activate", () => driver.activate())
      .post("/NetworkDriver.GetCapabilities", () => driver.capabilities())
      .post("/NetworkDriver.CreateNetwork", ({ body }) => driver.createNetwork(body), { body: S.CreateNetwork })
      .post("/NetworkDriver.DeleteNetwork", ({ body }) => driver.deleteNetwork(body), { body: S.NetworkOnly })
      .post("/NetworkDriver.CreateEndpoint", ({ body }) => driver.createEndpoint(body), { body: S.CreateEndpoint })
      .post("/NetworkDriver.EndpointOperInfo", ({ body }) => driver.endpointOperInfo(body), { body: S.EndpointRef })
      .post("/NetworkDriver.DeleteEndpoint", ({ body }) => driver.deleteEndpoint(body), { body: S.EndpointRef })
      .post("/NetworkDriver.Join", ({ body }) => driver.join(body), { body: S.Join })
      .post("/NetworkDriver.Leave", ({ body }) => driver.leave(body), { body: S.EndpointRef })
      .post("/NetworkDriver.DiscoverNew", () => ({}), { body: S.Discovery })
      .post("/NetworkDriver.DiscoverDelete", () => ({}), { body: S.Discovery })
      .post("/NetworkDriver.ProgramExternalConnectivity", ({ body }) => driver.programExternalConnectivity(body), {
        body: S.ProgramExternalConnectivity,
      })
      .post("/NetworkDriver.RevokeExternalConnectivity", ({ body }) => driver.revokeExternalConnectivity(body), {
        body: S.EndpointRef,
      })
      // swarm (global scope): the manager's answer is what every node's CreateNetwork receives: the -o options
      .post("/NetworkDriver.AllocateNetwork", ({ body }) => driver.allocateNetwork(body), { body: S.AllocateNetwork })
      .post("/NetworkDriver.FreeNetwork", () => ({}), { body: S.NetworkOnly })
      // management: what the driver holds, with per-port packet counters; metrics and the web view
      .get("/bunmap/networks", () => driver.view())
      .use(management(driver))
      // CNI runtimes' containers, through the bunmap executable (cni/main.ts): a result or a CNI error
      .post(CNI_ROUTE, ({ body }) => driver.cni.handle(body), { body: CniCallSchema })
  );
}

/** The read-only routes: metrics, the web view, its state. */
const management = (driver: Driver) =>
  metricsRoutes({ sources: [pluginMetrics(driver)], state: () => pluginState(driver) });

/**
 * What the opted-in TCP address serves: the read-only routes and the networks' view, nothing else.
 * Docker's methods and the CNI route stay on the Unix socket (root's only): over TCP they are 404.
 */
export function makeManagementApp(driver: Driver) {
  return new Elysia().use(management(driver)).get("/bunmap/networks", () => driver.view());
}
