// bun run vale-ctl: netmap's vale-ctl (getopt "d:a:h:g:l:n:r:C:p:P:m:v") on the library's VALE
// control requests, its output line for line, plus -A best|native|generic to set netmap's admode
// (emulated adapter for veths). Where it differs on purpose, USAGE says so.

import { ADMODE, type Ctl, DevNetmapCtl, setAdmode } from "../../port/netmap-ctl.ts";
import { type Conf4, type Op, run } from "../../port/vale-control.ts";

export const USAGE = `Usage: bun run vale-ctl [-l | -l valeX:Y | -n name | -r name | -a valeX:if | -h valeX:if | -d valeX:if | -g port | -p port | -P port] [-C a,b,c,d] [-m memid] [-v] | -A best|native|generic
  (no option)  list all VALE ports          -l valeX:Y  show one port's bridge_idx and port_idx
  -n name      create a persistent VALE port (-C tx_slots,rx_slots,tx_rings,rx_rings, -m memid)
  -r name      remove a persistent VALE port
  -a valeX:if  attach interface if to switch valeX, detached from the host stack
  -h valeX:if  attach keeping the host stack (adds if^)
  -d valeX:if  detach                      -g port  port info (memsize, slots, rings, mem_id)
  -p/-P port   enable/disable kernel polling (-C mode,first_cpu,ncpus)
  -v           print what the kernel answered (port_index, or the new port's rings)
  -A mode      netmap admode: best (native, else generic), native, generic (emulated adapter)
Output and "failed to ..." errors are netmap's vale-ctl's, line for line. Differences, on purpose:
listing all ports exits 0 (netmap's exits 1 even on success); a bad flag or value is one sentence
("vale-ctl: ...") instead of the usage text; a missing /dev/netmap says to load the module.`;

import { UsageError } from "../cli.ts";

export { UsageError };

const VALE_PREFIX = "vale"; // netmap's NM_BDG_NAME: -l takes only VALE port names

export function parse(argv: string[]): {
  op: Op | { op: "admode"; mode: keyof typeof ADMODE } | "help";
  verbose: boolean;
} {
  let conf: Conf4 = [0, 0, 0, 0],
    memId = 0,
    verbose = false;
  let op: Op | { op: "admode"; mode: keyof typeof ADMODE } | null = null;
  const set = (o: NonNullable<typeof op>) => {
    if (op) throw new UsageError("give one operation at a time");
    op = o;
  };
  // any netmap port name (valeX:port, a NIC, a persistent port): the kernel decides, as with netmap's
  // tool; only what cannot fit the request's 64-byte name is refused here
  const portName = (flag: string, v: string) => {
    if (!/^[!-~]{1,63}$/.test(v))
      throw new UsageError(`-${flag} ${JSON.stringify(v)}: expected a port name of 1 to 63 printable characters`);
    return v;
  };
  const valeName = portName;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^-([a-zA-Z])(.*)$/.exec(a);
    if (!m) throw new UsageError(`unexpected argument '${a}'`);
    const f = m[1];
    if (f === "v") {
      verbose = true;
      continue;
    }
    if (f === "H" || a === "--help") return { op: "help", verbose };
    if (f === "l" && !m[2] && (i + 1 >= argv.length || argv[i + 1].startsWith("-"))) {
      set({ op: "listAll" });
      continue;
    }
    if (!"dahglnrCpPmA".includes(f)) throw new UsageError(`unknown option -${f}`);
    const v = m[2] || argv[++i];
    if (v === undefined) throw new UsageError(`option -${f} needs a value`);
    switch (f) {
      case "n":
        set({ op: "newif", name: portName(f, v), conf, memId });
        break;
      case "r":
        set({ op: "delif", name: portName(f, v) });
        break;
      case "a":
        set({ op: "attach", name: valeName(f, v), hostStack: false, conf, memId });
        break;
      case "h":
        set({ op: "attach", name: valeName(f, v), hostStack: true, conf, memId });
        break;
      case "d":
        set({ op: "detach", name: valeName(f, v) });
        break;
      case "l":
        if (!v.startsWith(VALE_PREFIX)) throw new UsageError(`invalid vale port name: '${v}'`);
        set({ op: "list", name: portName(f, v) });
        break;
      case "g":
        set({ op: "info", name: valeName(f, v) });
        break;
      case "p":
        set({ op: "pollOn", name: valeName(f, v), conf });
        break;
      case "P":
        set({ op: "pollOff", name: valeName(f, v) });
        break;
      case "A":
        if (!(v in ADMODE)) throw new UsageError(`-A ${v}: expected best, native or generic`);
        set({ op: "admode", mode: v as keyof typeof ADMODE });
        break;
      case "m":
        if (!/^[0-9]+$/.test(v) || Number(v) > 0xffff)
          throw new UsageError(`-m ${v}: expected a memory region id 0..65535`);
        memId = Number(v);
        break;
      case "C": {
        const p = v.split(",");
        if (p.length > 4 || p.some((x) => !/^[0-9]+$/.test(x)))
          throw new UsageError(`-C ${v}: expected up to four numbers a,b,c,d`);
        const n = p.map(Number);
        // one number: both slot counts; three: rings for both directions (vale-ctl's convention)
        conf = [n[0] ?? 0, n[1] ?? n[0] ?? 0, n[2] ?? 0, n[3] ?? n[2] ?? 0];
        break;
      }
    }
    // -C and -m may come after the operation: patch them in
    if (op && "conf" in (op as object) && (f === "C" || f === "m")) Object.assign(op, f === "C" ? { conf } : { memId });
  }
  return { op: op ?? { op: "listAll" }, verbose };
}

/** The whole program on argv: what it prints and its exit status (the CLI below writes them out). */
export function valeCtl(argv: string[], ctl: Ctl = new DevNetmapCtl()): { code: number; out: string; err: string } {
  try {
    const { op, verbose } = parse(argv);
    if (op === "help") return { code: 0, out: `${USAGE}\n`, err: "" };
    if (op.op === "admode") {
      setAdmode(op.mode);
      return { code: 0, out: "", err: "" };
    }
    try {
      const lines = run(ctl, op, verbose);
      return { code: 0, out: lines.map((l) => `${l}\n`).join(""), err: "" };
    } catch (e) {
      // the kernel refused: netmap's own words, "failed to <verb> <name>: <strerror>"
      if (!/^failed to /.test((e as Error).message)) throw e;
      return { code: 1, out: "", err: `${(e as Error).message}\n` };
    } finally {
      ctl.close?.();
    }
  } catch (e) {
    return {
      code: 1,
      out: "",
      err: `vale-ctl: ${(e as Error).message}${e instanceof UsageError ? " (bun run vale-ctl -H for help)" : ""}\n`,
    };
  }
}

if (import.meta.main) {
  const r = valeCtl(process.argv.slice(2));
  process.stdout.write(r.out);
  process.stderr.write(r.err);
  process.exit(r.code);
}
