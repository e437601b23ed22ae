// The HTTP face of the driver: Docker's remote NetworkDriver API (POST /<Method>, JSON, often no
// Content-Type, empty bodies for Activate/GetCapabilities) and a small management API, as Elysia
// routes. Semantic failures answer 200 {"Err"}, malformed bodies 400 {"Err"}, unknown methods 404.

import type { TSchema } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { type Driver, DriverError } from "./driver.ts";
import * as S from "./schemas.ts";
import { InputError, MAX_BODY } from "./validate.ts";

const MIME = "application/vnd.docker.plugins.v1.2+json";

export function makeApp(driver: Driver) {
  const reply = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": MIME } });
  /** One protocol method: read the raw body ourselves, check it, run, map errors. */
  const method =
    <T extends TSchema>(schema: T | null, f: (b: never) => unknown) =>
    async ({ request }: { request: Request }) => {
      try {
        const text = await request.text();
        if (text.length > MAX_BODY)
          return reply({ Err: `request body of ${text.length} bytes: at most ${MAX_BODY}` }, 413);
        const body = schema ? S.parseBody(schema, text) : {}; // Activate/GetCapabilities: no arguments
        return reply(await f(body as never));
      } catch (e) {
        if (e instanceof S.BadRequest) return reply({ Err: e.message }, 400);
        if (e instanceof DriverError || e instanceof InputError) return reply({ Err: e.message });
        return reply({ Err: `internal error: ${(e as Error).message}` }, 500);
      }
    };
  return (
    new Elysia()
      // Elysia would parse by Content-Type; the protocol sends none, so handlers read the text themselves
      .onParse(() => null)
      .post(
        "/Plugin.Activate",
        method(null, () => driver.activate()),
      )
      .post(
        "/NetworkDriver.GetCapabilities",
        method(null, () => driver.capabilities()),
      )
      .post(
        "/NetworkDriver.CreateNetwork",
        method(S.CreateNetwork, (b) => driver.createNetwork(b)),
      )
      .post(
        "/NetworkDriver.DeleteNetwork",
        method(S.NetworkOnly, (b) => driver.deleteNetwork(b)),
      )
      .post(
        "/NetworkDriver.CreateEndpoint",
        method(S.CreateEndpoint, (b) => driver.createEndpoint(b)),
      )
      .post(
        "/NetworkDriver.EndpointOperInfo",
        method(S.EndpointRef, (b) => driver.endpointOperInfo(b)),
      )
      .post(
        "/NetworkDriver.DeleteEndpoint",
        method(S.EndpointRef, (b) => driver.deleteEndpoint(b)),
      )
      .post(
        "/NetworkDriver.Join",
        method(S.Join, (b) => driver.join(b)),
      )
      .post(
        "/NetworkDriver.Leave",
        method(S.EndpointRef, (b) => driver.leave(b)),
      )
      .post(
        "/NetworkDriver.DiscoverNew",
        method(S.Discovery, () => ({})),
      )
      .post(
        "/NetworkDriver.DiscoverDelete",
        method(S.Discovery, () => ({})),
      )
      .post(
        "/NetworkDriver.ProgramExternalConnectivity",
        method(S.ProgramExternalConnectivity, (b) => driver.programExternalConnectivity(b)),
      )
      .post(
        "/NetworkDriver.RevokeExternalConnectivity",
        method(S.EndpointRef, (b) => driver.revokeExternalConnectivity(b)),
      )
      .post(
        "/NetworkDriver.AllocateNetwork",
        method(S.AllocateNetwork, () => ({ Options: {} })),
      )
      .post(
        "/NetworkDriver.FreeNetwork",
        method(S.NetworkOnly, () => ({})),
      )
      // management: what the driver holds, with per-port packet counters
      .get("/bunmap/networks", () => driver.view())
      .onError(({ code }) => (code === "NOT_FOUND" ? reply({ Err: "unknown method" }, 404) : undefined))
  );
}
