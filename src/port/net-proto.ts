// The ports protocol: how a process inside a container asks the datapath process (the plugin) for a
// zero-copy port into one of its networks, memif's idea. One SOCK_SEQPACKET connection per port: the
// client sends a NetRequest; the server checks who is asking (its credentials -> its network
// namespace -> the sandbox of an endpoint on that network) and answers a NetReply, with the port's
// memory (a shm region's fd) and, for a switch port, the eventfd that wakes the switch. The
// connection stays open for the port's life: when it closes (the process exits), the port goes.
import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

export const NET_PROTO_VERSION = 1;

/** Where the server listens: the one directory a container mounts (`-v /run/bunmap:/run/bunmap`). */
export const NET_SOCK_DIR = "/run/bunmap";
export function netSockPath(): string {
  return process.env.BUNMAP_PORTS_SOCK ?? `${NET_SOCK_DIR}/ports.sock`;
}

/** Slots per ring a client may ask for (the default is the server's). */
export const NET_SLOTS = { min: 64, max: 4096, def: 1024 } as const;
/** Bytes of a request or reply at most (the server refuses longer ones). */
export const NET_MSG_MAX = 4096;

export const NetRequest = Type.Object(
  {
    v: Type.Literal(NET_PROTO_VERSION),
    /** A network by ID (or a unique prefix of it), or an interface of the caller's own on that network. */
    network: Type.String({ minLength: 1, maxLength: 64, pattern: "^[0-9A-Za-z_.-]+$" }),
    /** When `network` named the caller's interface: that interface's MAC, which the server matches. */
    mac: Type.Optional(Type.String({ pattern: "^[0-9a-f]{2}(:[0-9a-f]{2}){5}$" })),
    /** A pipe between two containers of the network, not a switch port: its id and this end. */
    pipe: Type.Optional(
      Type.Object(
        {
          id: Type.Integer({ minimum: 0, maximum: 65535 }),
          role: Type.Union([Type.Literal("master"), Type.Literal("slave")]),
        },
        { additionalProperties: false },
      ),
    ),
    slots: Type.Optional(Type.Integer({ minimum: NET_SLOTS.min, maximum: NET_SLOTS.max })),
    /** The MAC the port's NF sends from: learned on the port as it joins (a receiver that never sends is reached at once). */
    station: Type.Optional(Type.String({ pattern: "^[0-9a-f]{2}(:[0-9a-f]{2}){5}$" })),
  },
  { additionalProperties: false },
);
export type NetRequest = Static<typeof NetRequest>;

export const NetGranted = Type.Object(
  {
    ok: Type.Literal(true),
    /** The network's full ID. */
    network: Type.String(),
    /** The port's name on the server (as `GET /bunmap/networks` lists it). */
    port: Type.String(),
    /** The pipe end the client opens in the region it was given ({0 master, }0 slave). */
    role: Type.Union([Type.Literal("master"), Type.Literal("slave")]),
    mtu: Type.Integer(),
    /** "eventfd": a second descriptor wakes the peer (the switch); "futex": the region's own doorbell. */
    wake: Type.Union([Type.Literal("eventfd"), Type.Literal("futex")]),
  },
  { additionalProperties: false },
);
export const NetRefused = Type.Object(
  { ok: Type.Literal(false), error: Type.String() },
  { additionalProperties: false },
);
export const NetReply = Type.Union([NetGranted, NetRefused]);
export type NetGranted = Static<typeof NetGranted>;
export type NetReply = Static<typeof NetReply>;

/** The first failing field of a message, as one sentence; null when it fits. */
export function whyNot(schema: typeof NetRequest | typeof NetReply, v: unknown): string | null {
  const e = Value.Errors(schema, v).First();
  if (!e) return null;
  return `${e.path || "(the message)"}: ${e.message}`;
}

export function encode(m: NetRequest | NetReply): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m));
}

export function decode(b: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(b));
  } catch {
    return undefined;
  }
}
