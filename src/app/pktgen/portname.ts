// pkt-gen's -p: with several threads each opens one ring (NR_REG_ONE_NIC, "-N" suffix).
import { NR_REG, parsePortName } from "../../port/name.ts";
import type { Config } from "./args.ts";

export function threadPortName(cfg: Config, idx: number): string {
  const spec = withConf(cfg.ifname, cfg.ringConf);
  if (cfg.threads <= 1) return spec;
  const pn = parsePortName(spec);
  if (pn.backend === "xdp") {
    // AF_XDP binds one queue per socket: thread i takes queue q + i (xdp:eth0@q, q defaults to 0)
    const q = (pn.queue ?? 0) + idx;
    const at = spec.search(/@(?![0-9])/);
    const base = (at >= 0 ? spec.slice(0, at) : spec).replace(/@[0-9]+$/, "");
    return `${base}@${q}${at >= 0 ? spec.slice(at) : ""}`;
  }
  if (pn.mode === NR_REG.ONE_NIC) return spec; // the user chose a ring: keep it
  const at = spec.search(/@(?![0-9])/);
  const [base, opts] = at >= 0 ? [spec.slice(0, at), spec.slice(at)] : [spec, ""];
  return `${base}-${idx}${opts}`;
}

/**
 * pkt-gen's bare interface name (`-i eth0`, `-i eth0-1`): netmap:eth0 there, and here where
 * /dev/netmap exists; without it packet:eth0 (AF_PACKET, the same interface), which `note` reports.
 */
export function withSubsystem(spec: string, netmap: boolean, note: (msg: string) => void): string {
  const at = spec.indexOf("@");
  if ((at < 0 ? spec : spec.slice(0, at)).includes(":")) return spec;
  if (netmap) return `netmap:${spec}`;
  note(`no /dev/netmap here: -i ${spec} opens packet:${spec} (AF_PACKET on the same interface)`);
  return `packet:${spec}`;
}

/** -C tx_slots[,rx_slots[,tx_rings[,rx_rings]]] turned into libnetmap's @conf option. */
export function withConf(spec: string, conf: string | null): string {
  if (!conf) return spec;
  const v = conf.split(",").map((x) => Number(x));
  if (v.some((x) => !Number.isInteger(x) || x < 0))
    throw new Error(`-C ${conf}: expected numbers tx_slots[,rx_slots[,tx_rings[,rx_rings]]]`);
  const [txs, rxs = txs, txr, rxr = txr] = v;
  const kv: string[] = [];
  if (txs) kv.push(`tx_slots=${txs}`);
  if (rxs) kv.push(`rx_slots=${rxs}`);
  if (txr) kv.push(`tx_rings=${txr}`);
  if (rxr) kv.push(`rx_rings=${rxr}`);
  return kv.length ? `${spec}@conf:${kv.join(",")}` : spec;
}
