// Port names, libnetmap's syntax where it applies:
//   subsystem:vpname[{N|}N][mode][/flags][@options]
//   netmap:eth0  netmap:eth0-1  netmap:eth0^  netmap:eth0*  vale0:vi0  vale0:vi0{1  shm:ch}0-0
//   xdp:veth0@2 (queue)  packet:veth0  pcap:file.pcap  vxlan:42 (VNI)   options: @conf:rings=4,slots=1024
//   net:eth0 / net:NETWORK-ID (a port into that network of the datapath process), net:eth0{3 (pipe 3 between containers)
import { NR_REG } from "../../ffi/netmap.ts";
import { PortError } from "./port.ts";

export type Backend = "netmap" | "vale" | "shm" | "xdp" | "packet" | "pcap" | "vxlan" | "net";

/** NR_REG_* register modes (netmap's, stated once in ffi/netmap.ts). */
export { NR_REG };

export interface PortName {
  spec: string;
  backend: Backend;
  /** netmap: what libnetmap puts in nr_name (`eth0`, `vale0:vi0`); others: interface, region or file. */
  ifname: string;
  pipe?: { role: "master" | "slave"; id: number };
  mode: number;
  ringId: number;
  /** `/x z t r R T` flag letters. */
  flags: string;
  memId?: number;
  /** `@conf:k=v,...` and the like, keyed by option name. */
  options: Record<string, Record<string, string>>;
  /** xdp queue (`xdp:eth0@2`). */
  queue?: number;
}

const bad = (spec: string, why: string) => new PortError(`bad port name '${spec}': ${why}`);

const IDENT = /^[0-9A-Za-z_.-]+$/;

export function parsePortName(spec: string): PortName {
  const colon = spec.indexOf(":");
  if (colon <= 0) {
    throw bad(
      spec,
      "expected subsystem:name, e.g. shm:pipe{0, netmap:eth0, vale0:vi0, xdp:veth0, packet:veth0, pcap:file.pcap, vxlan:42, net:eth0",
    );
  }
  const sub = spec.slice(0, colon);
  let rest = spec.slice(colon + 1);
  let backend: Backend;
  if (
    sub === "netmap" ||
    sub === "shm" ||
    sub === "xdp" ||
    sub === "packet" ||
    sub === "pcap" ||
    sub === "vxlan" ||
    sub === "net"
  )
    backend = sub;
  else if (/^vale[0-9A-Za-z_]*$/.test(sub)) backend = "vale";
  else throw bad(spec, `unknown subsystem '${sub}' (use netmap, valeX, shm, xdp, packet, pcap, vxlan or net)`);

  const out: PortName = { spec, backend, ifname: "", mode: NR_REG.ALL_NIC, ringId: 0, flags: "", options: {} };

  if (backend === "pcap") {
    // a path, taken verbatim up to an optional trailing @conf:...
    const at = rest.lastIndexOf("@conf:");
    if (at >= 0) {
      parseOptions(spec, rest.slice(at + 1), out.options);
      rest = rest.slice(0, at);
    }
    if (!rest) throw bad(spec, "missing file name after pcap:");
    out.ifname = rest;
    return out;
  }

  // options: from the first '@' not followed by a digit (a digit is a memory region / xdp queue)
  const opt = rest.search(/@(?![0-9])/);
  if (opt >= 0) {
    parseOptions(spec, rest.slice(opt + 1), out.options);
    rest = rest.slice(0, opt);
  }

  const m = /^([0-9A-Za-z_.-]*?)(?:([{}])([0-9]+))?(\^[0-9]*|\*|-[0-9]+)?(?:\/([xztrRT]+))?(?:@([0-9]+))?$/.exec(rest);
  if (!m?.[1]) throw bad(spec, `cannot parse '${rest}' as name[{N|}N][-ring|^|*][/flags][@N]`);
  const [, name, pipeCh, pipeId, mode, flags, at] = m;
  if (name.length > 63) throw bad(spec, "name longer than 63 characters");
  if (!IDENT.test(name)) throw bad(spec, "name may only hold letters, digits, '_', '.', '-'");
  out.ifname = backend === "vale" ? `${sub}:${name}` : name;

  if (pipeCh) {
    if (backend === "xdp" || backend === "packet" || backend === "vxlan")
      throw bad(spec, `${backend} ports have no pipes`);
    out.pipe = { role: pipeCh === "{" ? "master" : "slave", id: Number(pipeId) };
    if (out.pipe.id > 0xffff) throw bad(spec, "pipe id above 65535");
  } else if (backend === "shm") {
    throw bad(spec, "shm ports are pipe ends: shm:NAME{N (master) or shm:NAME}N (slave)");
  }

  if (mode) {
    if (mode === "*") out.mode = NR_REG.NIC_SW;
    else if (mode === "^") out.mode = NR_REG.SW;
    else if (mode[0] === "^") {
      out.mode = NR_REG.ONE_SW;
      out.ringId = Number(mode.slice(1));
    } else {
      out.mode = NR_REG.ONE_NIC;
      out.ringId = Number(mode.slice(1));
    }
    if (backend !== "netmap" && backend !== "vale" && out.mode !== NR_REG.ONE_NIC) {
      throw bad(spec, `host rings (${mode}) exist only on netmap ports`);
    }
    if (out.ringId > 0xfff) throw bad(spec, `ring ${out.ringId} above 4095`);
  }
  if (backend === "vxlan" && !/^[0-9]+$/.test(name)) throw bad(spec, "a vxlan port is named by its VNI: vxlan:42");
  if (flags) out.flags = flags;
  if (at !== undefined) {
    if (backend === "xdp") out.queue = Number(at);
    else out.memId = Number(at);
  }
  return out;
}

function parseOptions(spec: string, s: string, into: PortName["options"]): void {
  for (const part of s.split("@")) {
    if (!part) throw bad(spec, "empty @option");
    // @name:key=val,... or @name=value (value may hold ':', as in @share=netmap:vi0)
    const colon = part.indexOf(":"),
      eq = part.indexOf("=");
    const listForm = colon >= 0 && (eq < 0 || colon < eq);
    const [key, body = ""] = splitOnce(part, listForm ? ":" : "=");
    if (!/^[a-z_-]+$/.test(key)) throw bad(spec, `bad option name '${key}'`);
    const kv: Record<string, string> = {};
    if (listForm) {
      for (const item of body.split(",")) {
        if (!item) continue;
        const [k, v] = splitOnce(item, "=");
        if (!k || v === undefined || v === "") throw bad(spec, `option ${key}: expected key=value, got '${item}'`);
        kv[k.replace(/-/g, "_")] = v;
      }
    } else {
      kv[""] = body; // @share=netmap:vi0 style
    }
    into[key] = kv;
  }
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

/** Integer option value with bounds, or the default. */
export function optInt(
  spec: string,
  kv: Record<string, string> | undefined,
  key: string,
  def: number,
  min: number,
  max: number,
): number {
  const v = kv?.[key];
  if (v === undefined) return def;
  if (!/^[0-9]+$/.test(v)) throw bad(spec, `${key}=${v} is not a number`);
  const n = Number(v);
  if (n < min || n > max) throw bad(spec, `${key}=${n} out of range ${min}..${max}`);
  return n;
}

/**
 * What a backend's `@conf:` accepts, stated once as a table: integers with default and bounds,
 * words from a list. readConf checks every given key against it (an unknown key names the known
 * ones) and returns the values, defaults filled in.
 */
export type ConfTable = Record<
  string,
  | { int: readonly [def: number, min: number, max: number] }
  | { oneOf: readonly string[]; def: string }
  | { text: RegExp; def: string; what: string }
>;
export type ConfValues<T extends ConfTable> = {
  [K in keyof T]: T[K] extends { int: unknown }
    ? number
    : T[K] extends { oneOf: readonly (infer V)[] }
      ? V
      : T[K] extends { text: RegExp }
        ? string
        : never;
};

export function readConf<const T extends ConfTable>(pn: PortName, table: T): ConfValues<T> {
  const kv = pn.options.conf ?? {};
  const keys = Object.keys(table);
  for (const k of Object.keys(kv)) {
    if (!keys.includes(k)) throw bad(pn.spec, `@conf key '${k}' is not one of ${keys.join(", ")}`);
  }
  const out: Record<string, number | string> = {};
  for (const [k, f] of Object.entries(table)) {
    if ("int" in f) out[k] = optInt(pn.spec, kv, k, ...f.int);
    else if ("text" in f) {
      const v = kv[k] ?? f.def;
      if (v !== f.def && !f.text.test(v)) throw bad(pn.spec, `${k}=${v}: expected ${f.what}`);
      out[k] = v;
    } else {
      const v = kv[k] ?? f.def;
      if (!f.oneOf.includes(v)) throw bad(pn.spec, `${k} is ${f.oneOf.slice(0, -1).join(", ")} or ${f.oneOf.at(-1)}`);
      out[k] = v;
    }
  }
  return out as ConfValues<T>;
}

/** The same port with ring `ring` only (`name-ring`, options kept); -1 gives the name unchanged. */
export function ringName(spec: string, ring: number): string {
  if (ring < 0) return spec;
  const at = spec.search(/@(?![0-9])/);
  return at < 0 ? `${spec}-${ring}` : `${spec.slice(0, at)}-${ring}${spec.slice(at)}`;
}
