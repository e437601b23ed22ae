// Docker's remote NetworkDriver protocol (moby libnetwork drivers/remote/api): every request body
// as a TypeBox schema. Docker sends no Content-Type and empty bodies for Activate/GetCapabilities,
// so one parser in plugin/app.ts takes every body as JSON and each route checks its own against these;
// extra keys are allowed (the engine adds fields over time), missing required ones are an error.
import { type Static, Type } from "@sinclair/typebox";

const Id = Type.String({ minLength: 1, maxLength: 128, pattern: "^[0-9A-Za-z_.-]+$" });
const Options = Type.Record(Type.String(), Type.Unknown());

export const IPAMData = Type.Object({
  AddressSpace: Type.Optional(Type.String()),
  Pool: Type.String(),
  Gateway: Type.Optional(Type.String()),
  AuxAddresses: Type.Optional(Type.Record(Type.String(), Type.String())),
});

export const CreateNetwork = Type.Object({
  NetworkID: Id,
  Options: Type.Optional(Options),
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
export const ProgramExternalConnectivity = Type.Object({
  NetworkID: Id,
  EndpointID: Id,
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

export class BadRequest extends Error {}
