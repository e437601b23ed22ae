// VALE control: vale-ctl's operations as netmap NIOCCTRL requests (the C tool's semantics and output),
// independent of how they are sent (Ctl: /dev/netmap, or a fake in tests). The library's; the
// vale-ctl app and the Docker driver's kernel-VALE datapath both use it.

import * as libc from "../../ffi/libc.ts";
import {
  decodePortInfo,
  decodeValeList,
  decodeValeNewif,
  encodePolling,
  encodeValeAttach,
  encodeValeDetach,
  encodeValeList,
  encodeValeNewif,
  NR_REG,
  PORT_INFO,
  REQ,
  VALE_ATTACH,
  VALE_DETACH,
} from "../../ffi/netmap.ts";
import type { Ctl } from "./netmap-ctl.ts";

export type Conf4 = [number, number, number, number]; // -C x,y,z,w

export type Op =
  | { op: "newif"; name: string; conf: Conf4; memId: number }
  | { op: "delif"; name: string }
  | { op: "attach"; name: string; hostStack: boolean; conf: Conf4; memId: number }
  | { op: "detach"; name: string }
  | { op: "list"; name: string }
  | { op: "listAll" }
  | { op: "info"; name: string }
  | { op: "pollOn"; name: string; conf: Conf4 }
  | { op: "pollOff"; name: string };

/** The request an operation sends: type, header name, body bytes. */
export function request(o: Exclude<Op, { op: "listAll" }>): { reqtype: number; name: string; body: Uint8Array } {
  switch (o.op) {
    case "newif": {
      const [txs, rxs, txr, rxr] = o.conf;
      return {
        reqtype: REQ.VALE_NEWIF,
        name: o.name,
        body: encodeValeNewif({ txSlots: txs, rxSlots: rxs, txRings: txr, rxRings: rxr, memId: o.memId }),
      };
    }
    case "delif":
      return { reqtype: REQ.VALE_DELIF, name: o.name, body: new Uint8Array(0) };
    case "attach": {
      const [txs, rxs, txr, rxr] = o.conf;
      const mode = o.hostStack ? NR_REG.NIC_SW : NR_REG.ALL_NIC;
      return {
        reqtype: REQ.VALE_ATTACH,
        name: o.name,
        body: encodeValeAttach({ mode, txSlots: txs, rxSlots: rxs, txRings: txr, rxRings: rxr, memId: o.memId }),
      };
    }
    case "detach":
      return { reqtype: REQ.VALE_DETACH, name: o.name, body: encodeValeDetach() };
    case "list":
      return { reqtype: REQ.VALE_LIST, name: o.name, body: encodeValeList() };
    case "info":
      return { reqtype: REQ.PORT_INFO_GET, name: o.name, body: new Uint8Array(PORT_INFO.size) };
    case "pollOn": {
      const [mode, first, n] = o.conf;
      return { reqtype: REQ.VALE_POLLING_ENABLE, name: o.name, body: encodePolling(mode || 1, first, n || 1) };
    }
    case "pollOff":
      return { reqtype: REQ.VALE_POLLING_DISABLE, name: o.name, body: encodePolling(0, 0, 0) };
  }
}

/** The verb netmap's vale-ctl puts in "failed to <verb> <name>: <why>". */
const ACTION: Record<Op["op"], string> = {
  newif: "create",
  delif: "remove",
  attach: "attach",
  detach: "detach",
  list: "list",
  listAll: "list all",
  info: "obtain info for",
  pollOn: "enable polling on",
  pollOff: "disable polling on",
};

/**
 * Run one operation; returns the lines netmap's vale-ctl prints for it, in its format (its
 * dump_port_info, dump_newif and dump_vale_list, "port_index:" under -v), or throws its
 * "failed to <verb> <name>: <strerror>".
 */
export function run(ctl: Ctl, o: Op, verbose = false): string[] {
  if (o.op === "listAll") {
    // empty name: the kernel returns the next port at or after (bridge_idx, port_idx)
    const out: string[] = [];
    const body = encodeValeList();
    for (let guard = 0; guard < 8 * 256; guard++) {
      const r = ctl.request(REQ.VALE_LIST, "", body);
      if (r.errno === 2 /* ENOENT */) break;
      if (r.errno) throw new Error(`failed to list all: ${libc.strerror(r.errno)}`);
      const { bridgeIdx, portIdx } = decodeValeList(r.body);
      out.push(`${r.name} bridge_idx ${bridgeIdx} port_idx ${portIdx}`);
      new DataView(body.buffer).setUint32(4, portIdx + 1, true);
    }
    return out;
  }
  const q = request(o);
  const r = ctl.request(q.reqtype, q.name, q.body);
  if (r.errno) throw new Error(`failed to ${ACTION[o.op]} ${o.name}: ${libc.strerror(r.errno)}`);
  const dv = new DataView(r.body.buffer, r.body.byteOffset);
  switch (o.op) {
    case "list": {
      const { bridgeIdx, portIdx } = decodeValeList(r.body);
      return [`bridge_idx: ${bridgeIdx}`, `port_idx:   ${portIdx}`];
    }
    case "info": {
      const i = decodePortInfo(r.body);
      // "rx_rings    " without a colon: netmap's own line, kept so scripts parse both alike
      return [
        `memsize:    ${i.memsize}`,
        `tx_slots:   ${i.txSlots}`,
        `rx_slots:   ${i.rxSlots}`,
        `tx_rings:   ${i.txRings}`,
        `rx_rings    ${i.rxRings}`,
        `mem_id:     ${i.memId}`,
      ];
    }
    case "newif": {
      if (!verbose) return [];
      const n = decodeValeNewif(r.body);
      return [
        `tx_slots:   ${n.txSlots}`,
        `rx_slots:   ${n.rxSlots}`,
        `tx_rings:   ${n.txRings}`,
        `rx_ring:    ${n.rxRings}`,
        `mem_id:     ${n.memId}`,
      ];
    }
    case "attach":
      return verbose ? [`port_index: ${dv.getUint32(VALE_ATTACH.port_index, true)}`] : [];
    case "detach":
      return verbose ? [`port_index: ${dv.getUint32(VALE_DETACH.port_index, true)}`] : [];
    default:
      return [];
  }
}
