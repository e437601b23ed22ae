// Docker's remote NetworkDriver protocol (moby libnetwork drivers/remote/api): every request body
// as a TypeBox schema. Docker sends no Content-Type and empty bodies for Activate/GetCapabilities,
// so one parser in plugin/app.ts takes every body as JSON and each route checks its own against these;
// extra keys are allowed (the engine adds fields over time), missing required ones are an error.
// Every field the driver reads is typed here, nested ones too: a body of the wrong shape is refused
// (400, naming the field) before anything is written. plugin/app.ts checks bodies as they came:
// Elysia's normalisation, which rebuilt a body from its schema first (a string where an object
// belongs became {}), is off.
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

const Id = Type.String({ minLength: 1, maxLength: 128, pattern: "^[0-9A-Za-z_.-]+$" });
const Options = Type.Record(Type.String(), Type.Unknown());
/** Docker's -o map (com.docker.network.generic): every value a string; its keys are checked later. */
export const GENERIC = "com.docker.network.generic";
export const INTERNAL = "com.docker.network.internal";
export const PORTMAP = "com.docker.network.portmap";
const Strings = Type.Record(Type.String(), Type.String());
/** What an engine has sent for a flag: a boolean (current) or its text (older engines). */
const Flag = Type.Union([Type.Boolean(), Type.Literal("true"), Type.Literal("false")]);

export const IPAMData = Type.Object({
  AddressSpace: Type.Optional(Type.String()),
  Pool: Type.String(),
  Gateway: Type.Optional(Type.String()),
  AuxAddresses: Type.Optional(Type.Record(Type.String(), Type.String())),
});

export const CreateNetwork = Type.Object({
  NetworkID: Id,
  Options: Type.Optional(
    Type.Object({
      [GENERIC]: Type.Optional(Type.Union([Strings, Type.Null()])),
      [INTERNAL]: Type.Optional(Flag),
      "com.docker.network.enable_ipv6": Type.Optional(Flag),
    }),
  ),
  IPv4Data: Type.Optional(Type.Union([Type.Array(IPAMData), Type.Null()])),
  IPv6Data: Type.Optional(Type.Union([Type.Array(IPAMData), Type.Null()])),
});
export const NetworkOnly = Type.Object({ NetworkID: Id });
export const EndpointInterface = Type.Object({
  Address: Type.Optional(Type.String()),
  AddressIPv6: Type.Optional(Type.String()),
  MacAddress: Type.Optional(Type.String()),
});
export const CreateEndpoint = Type.Object({
  NetworkID: Id,
  EndpointID: Id,
  Options: Type.Optional(Type.Union([Options, Type.Null()])),
  Interface: Type.Optional(Type.Union([EndpointInterface, Type.Null()])),
});
export const EndpointRef = Type.Object({ NetworkID: Id, EndpointID: Id });
export const Join = Type.Object({
  NetworkID: Id,
  EndpointID: Id,
  SandboxKey: Type.String({ minLength: 1 }),
  Options: Type.Optional(Type.Union([Options, Type.Null()])),
});
/** One -p binding as Docker sends it (types.PortBinding; Proto 6 tcp, 17 udp, 132 sctp). */
export const PortBinding = Type.Object({
  Proto: Type.Integer(),
  IP: Type.Optional(Type.String()),
  Port: Type.Integer({ minimum: 1, maximum: 65535 }),
  HostIP: Type.Optional(Type.String({ maxLength: 64 })),
  HostPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  HostPortEnd: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
});
export const PortMap = Type.Array(PortBinding, { maxItems: 4096 });
export type PortBinding = Static<typeof PortBinding>;
export const ProgramExternalConnectivity = Type.Object({
  NetworkID: Id,
  EndpointID: Id,
  Options: Type.Optional(
    Type.Union([Type.Object({ [PORTMAP]: Type.Optional(Type.Union([PortMap, Type.Null()])) }), Type.Null()]),
  ),
});
export const Discovery = Type.Object({ DiscoveryType: Type.Integer(), DiscoveryData: Type.Optional(Type.Unknown()) });
export const AllocateNetwork = Type.Object({
  NetworkID: Id,
  Options: Type.Optional(Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()])),
  IPv4Data: Type.Optional(Type.Union([Type.Array(IPAMData), Type.Null()])),
  IPv6Data: Type.Optional(Type.Union([Type.Array(IPAMData), Type.Null()])),
});

export type AllocateNetwork = Static<typeof AllocateNetwork>;
export type CreateNetwork = Static<typeof CreateNetwork>;
export type CreateEndpoint = Static<typeof CreateEndpoint>;
export type Join = Static<typeof Join>;
export type EndpointRef = Static<typeof EndpointRef>;

export type ProgramExternalConnectivity = Static<typeof ProgramExternalConnectivity>;

export class BadRequest extends Error {}

/** What a value of this schema is, in words ("an object or null"). */
function expected(s: TSchema): string {
  if (s.anyOf) return (s.anyOf as TSchema[]).map(expected).join(" or ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  const words: Record<string, string> = {
    object: "an object",
    array: "an array",
    string: "a string",
    integer: "an integer",
    number: "a number",
    boolean: "true or false",
    null: "null",
  };
  return words[s.type as string] ?? "something else";
}

function ofType(type: unknown, v: unknown): boolean {
  if (type === "integer") return Number.isInteger(v);
  if (type === "array") return Array.isArray(v);
  if (type === "object") return v !== null && typeof v === "object" && !Array.isArray(v);
  if (type === "null") return v === null;
  return typeof v === type;
}

/** The first thing wrong with a body, at the deepest field that can be named: within a union, the
 * variant of the value's own kind is followed (Interface: {"Address": 5} names Interface/Address). */
export function firstError(schema: TSchema, value: unknown, at = ""): string | null {
  const e = Value.Errors(schema, value).First();
  if (!e) return null;
  const here = `${at}${e.path}`;
  if (e.schema.anyOf && e.value !== null && typeof e.value === "object") {
    const kind = Array.isArray(e.value) ? "array" : "object";
    const variant = (e.schema.anyOf as TSchema[]).find((v) => v.type === kind);
    const deeper = variant && firstError(variant, e.value, here);
    if (deeper) return deeper;
  }
  // a type mismatch says what was expected; a value of the right type says what is wrong with it
  const wrongType = e.schema.anyOf || !ofType(e.schema.type, e.value);
  return `${here || "body"}: ${wrongType ? `expected ${expected(e.schema)}, got ${JSON.stringify(e.value) ?? "nothing"}` : e.message}`;
}
