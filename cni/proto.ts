// What the CNI executable asks the datapath process (POST /bunmap/cni on its socket) and what comes
// back: a result, or a CNI error the executable prints as it came. Both ends check it (TypeBox).
import { type Static, Type } from "@sinclair/typebox";
import { CniErrorSchema, NetConfSchema, ResultSchema } from "./spec.ts";

export const CNI_ROUTE = "/bunmap/cni";

export const CniCallSchema = Type.Object({
  command: Type.Union([
    Type.Literal("ADD"),
    Type.Literal("DEL"),
    Type.Literal("CHECK"),
    Type.Literal("GC"),
    Type.Literal("STATUS"),
  ]),
  /** CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME ("" where the command has none) */
  containerId: Type.String({ maxLength: 256 }),
  netns: Type.String({ maxLength: 4096 }),
  ifName: Type.String({ maxLength: 15 }),
  /** The namespace as this executable holds it open: /proc/PID/fd/FD reaches it from any mount
   * namespace (a runtime's netns path may be a mount only the runtime's own namespace sees). */
  netnsFd: Type.Optional(Type.Object({ pid: Type.Integer({ minimum: 1 }), fd: Type.Integer({ minimum: 0 }) })),
  conf: NetConfSchema,
  /** ADD: what the IPAM plugin answered (asked for only when the attachment is not there whole) */
  ipam: Type.Optional(ResultSchema),
  /** ADD in a chain, CHECK, DEL: the result so far */
  prevResult: Type.Optional(ResultSchema),
});
export type CniCall = Static<typeof CniCallSchema>;

/** An attachment as CNI names it (GC's valid-attachments, and what a GC removed). */
export const AttachmentRef = Type.Object({ containerID: Type.String(), ifname: Type.String() });

export const CniAnswerSchema = Type.Union([
  /** removed: GC's attachments taken away, whose addresses an IPAM plugin without GC gets back by DEL */
  Type.Object({ result: ResultSchema, removed: Type.Optional(Type.Array(AttachmentRef)) }),
  /** ADD without an address: none is held yet (stale: a half-made or broken one is, whose address goes back first) */
  Type.Object({ needAddress: Type.Literal(true), stale: Type.Boolean() }),
  Type.Object({ error: CniErrorSchema }),
]);
export type CniAnswer = Static<typeof CniAnswerSchema>;
