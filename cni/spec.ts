// The Container Network Interface as bunmap speaks it (spec 1.0.0, with 1.1.0's STATUS and GC):
// versions, error codes, the network config it reads and the result it writes, stated once for the
// executable (cni/main.ts) and the datapath process (plugin/cni.ts). TypeBox schemas: what comes from
// a runtime is checked field by field, and a wrong one is named in a CNI error object.
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

/** What the plugin's type is called in a network config (and its file's name in /opt/cni/bin). */
export const PLUGIN_TYPE = "bunmap";
/** Versions of the spec whose configs and results this plugin reads and writes. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export const LATEST = "1.1.0";
/** The first version each command exists in (CHECK came with 0.4.0, STATUS and GC with 1.1.0). */
export const COMMAND_SINCE = {
  ADD: "0.3.0",
  DEL: "0.3.0",
  CHECK: "0.4.0",
  VERSION: "0.3.0",
  STATUS: "1.1.0",
  GC: "1.1.0",
};
export type Command = keyof typeof COMMAND_SINCE;
export const COMMANDS = Object.keys(COMMAND_SINCE) as Command[];

/** The spec's well-known error codes (100 and up are the plugin's own). */
export const CODE = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  /** ours: CHECK found the attachment not as ADD left it */
  attachmentBroken: 100,
  /** ours: the datapath process refused the request (its sentence says why) */
  refused: 101,
} as const;

/** A CNI error object (what the plugin prints on stdout, exiting non-zero). */
export const CniErrorSchema = Type.Object({
  cniVersion: Type.Optional(Type.String()),
  code: Type.Integer({ minimum: 1 }),
  msg: Type.String(),
  details: Type.Optional(Type.String()),
});
export type CniErrorObject = Static<typeof CniErrorSchema>;

/** An error on its way to becoming a CNI error object. */
export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = "",
  ) {
    super(msg);
  }
  object(cniVersion: string): CniErrorObject {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

const Cidr = Type.String({ minLength: 3, maxLength: 64 });
const Ip = Type.String({ minLength: 2, maxLength: 64 });

export const InterfaceSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 15 }),
  mac: Type.Optional(Type.String()),
  mtu: Type.Optional(Type.Integer()),
  sandbox: Type.Optional(Type.String()),
});
export const IpConfigSchema = Type.Object({
  address: Cidr,
  gateway: Type.Optional(Ip),
  interface: Type.Optional(Type.Integer({ minimum: 0 })),
  /** 0.3.x only: "4" or "6" */
  version: Type.Optional(Type.Union([Type.Literal("4"), Type.Literal("6")])),
});
export const RouteSchema = Type.Object({ dst: Cidr, gw: Type.Optional(Ip) });
export const DnsSchema = Type.Object({
  nameservers: Type.Optional(Type.Array(Type.String())),
  domain: Type.Optional(Type.String()),
  search: Type.Optional(Type.Array(Type.String())),
  options: Type.Optional(Type.Array(Type.String())),
});
/** A result (ADD's answer; prevResult in a chain; what an IPAM plugin returns, without interfaces). */
export const ResultSchema = Type.Object({
  cniVersion: Type.Optional(Type.String()),
  interfaces: Type.Optional(Type.Array(InterfaceSchema)),
  ips: Type.Optional(Type.Array(IpConfigSchema)),
  routes: Type.Optional(Type.Array(RouteSchema)),
  dns: Type.Optional(DnsSchema),
});
export type Result = Static<typeof ResultSchema>;

/** The names CNI allows for a network and a container ID (alphanumeric first, then [A-Za-z0-9_.-]). */
const NAME = "^[A-Za-z0-9][A-Za-z0-9_.\\-]*$";
/** The `-o` keys of a Docker vale network, as strings: the same options reach the same code. */
const Options = Type.Record(Type.String(), Type.String());

/** bunmap's network config (one entry of a conflist, with what the runtime adds to it). */
export const NetConfSchema = Type.Object({
  cniVersion: Type.String({ minLength: 1 }),
  name: Type.String({ minLength: 1, maxLength: 100, pattern: NAME }),
  type: Type.String({ minLength: 1 }),
  /** The datapath process's socket (default: the Docker plugin's). */
  socket: Type.Optional(Type.String({ minLength: 1, maxLength: 107 })),
  /** Join a network the datapath already has (a Docker vale network's ID, or a unique prefix of it)
   * instead of one of this config's own. */
  network: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: "^[0-9A-Za-z_.-]+$" })),
  /** Docker's -o options: backend, switch/slice_id, mtu, vni, peers, group, vxlan_dev, vxlan_local, vxlan_port. */
  options: Type.Optional(Options),
  /** No gateway port, no NAT (Docker's --internal). */
  internal: Type.Optional(Type.Boolean()),
  ipam: Type.Optional(Type.Object({ type: Type.String({ minLength: 1, pattern: "^[A-Za-z0-9_.-]+$" }) })),
  dns: Type.Optional(DnsSchema),
  runtimeConfig: Type.Optional(Type.Object({ mac: Type.Optional(Type.String()) })),
  prevResult: Type.Optional(Type.Unknown()),
  /** GC (1.1): the attachments the runtime still holds; every other one of this network goes. */
  "cni.dev/valid-attachments": Type.Optional(
    Type.Array(Type.Object({ containerID: Type.String(), ifname: Type.String() })),
  ),
});
export type NetConf = Static<typeof NetConfSchema>;

/** The first thing wrong with a value, as "/field: message" (the path JSON-pointer style). */
export function firstError(schema: TSchema, v: unknown): string | null {
  const e = [...Value.Errors(schema, v)][0];
  if (!e) return null;
  return `${e.path || "/"}: ${e.message}${e.value === undefined ? "" : ` (got ${JSON.stringify(e.value)?.slice(0, 60)})`}`;
}

/** Compare dotted versions ("0.4.0" < "1.0.0"). */
export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split(".").map(Number),
    b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

/** A result as the config's version writes it: 0.3.x names each address's family, later ones do not. */
export function resultFor(version: string, r: Result): Result {
  const old = !versionAtLeast(version, "0.4.0");
  return {
    ...r,
    cniVersion: version,
    ips: r.ips?.map(({ version: _v, ...ip }) => (old ? { ...ip, version: ip.address.includes(":") ? "6" : "4" } : ip)),
  };
}
