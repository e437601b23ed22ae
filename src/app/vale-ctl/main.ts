// bun run vale-ctl: netmap's vale-ctl (getopt "d:a:h:g:l:n:r:C:p:P:m:v") on bunmap's request
// builders, plus -A best|native|generic to set netmap's admode (emulated adapter for veths).
import { run, type Conf4, type Op } from "./requests.ts";
import { DevNetmapCtl, setAdmode, ADMODE } from "../../port/netmap-ctl.ts";

export const USAGE = `Usage: bun run vale-ctl [-l | -l valeX:Y | -n name | -r name | -a valeX:if | -h valeX:if | -d valeX:if | -g valeX:port | -p valeX:port | -P valeX:port] [-C a,b,c,d] [-m memid] [-v] | -A best|native|generic
  (no option)  list all VALE ports          -l valeX:Y  show one port's bridge/port index
  -n name      create a persistent VALE port (-C tx_slots,rx_slots,tx_rings,rx_rings, -m memid)
  -r name      remove a persistent VALE port
  -a valeX:if  attach interface if to switch valeX, detached from the host stack
  -h valeX:if  attach keeping the host stack (adds if^)
  -d valeX:if  detach                      -g valeX:port  port info (memsize, slots, rings, mem_id)
  -p/-P valeX:port  enable/disable kernel polling (-C mode,first_cpu,ncpus)
  -A mode      netmap admode: best (native, else generic), native, generic (emulated adapter)`;

export class UsageError extends Error {}

const NAME = /^vale[0-9A-Za-z_]*:[0-9A-Za-z_]+\^?$/;

export function parse(argv: string[]): { op: Op | { op: "admode"; mode: keyof typeof ADMODE } | "help"; verbose: boolean } {
  let conf: Conf4 = [0, 0, 0, 0], memId = 0, verbose = false;
  let op: Op | { op: "admode"; mode: keyof typeof ADMODE } | null = null;
  const set = (o: NonNullable<typeof op>) => { if (op) throw new UsageError("give one operation at a time"); op = o; };
  const valeName = (flag: string, v: string) => { if (!NAME.test(v)) throw new UsageError(`-${flag} ${v}: expected valeX:name (letters, digits, _)`); return v; };
  const portName = (flag: string, v: string) => { if (!/^[0-9A-Za-z_]{1,15}$/.test(v)) throw new UsageError(`-${flag} ${v}: expected an interface name of up to 15 letters, digits or _`); return v; };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^-([a-zA-Z])(.*)$/.exec(a);
    if (!m) throw new UsageError(`unexpected argument '${a}'`);
    const f = m[1];
    if (f === "v") { verbose = true; continue; }
    if (f === "H" || a === "--help") return { op: "help", verbose };
    if (f === "l" && !m[2] && (i + 1 >= argv.length || argv[i + 1].startsWith("-"))) { set({ op: "listAll" }); continue; }
    if (!"dahglnrCpPmA".includes(f)) throw new UsageError(`unknown option -${f}`);
    const v = m[2] || argv[++i];
    if (v === undefined) throw new UsageError(`option -${f} needs a value`);
    switch (f) {
      case "n": set({ op: "newif", name: portName(f, v), conf, memId }); break;
      case "r": set({ op: "delif", name: portName(f, v) }); break;
      case "a": set({ op: "attach", name: valeName(f, v), hostStack: false, conf, memId }); break;
      case "h": set({ op: "attach", name: valeName(f, v), hostStack: true, conf, memId }); break;
      case "d": set({ op: "detach", name: valeName(f, v) }); break;
      case "l": set({ op: "list", name: valeName(f, v) }); break;
      case "g": set({ op: "info", name: valeName(f, v) }); break;
      case "p": set({ op: "pollOn", name: valeName(f, v), conf }); break;
      case "P": set({ op: "pollOff", name: valeName(f, v) }); break;
      case "A":
        if (!(v in ADMODE)) throw new UsageError(`-A ${v}: expected best, native or generic`);
        set({ op: "admode", mode: v as keyof typeof ADMODE });
        break;
      case "m":
        if (!/^[0-9]+$/.test(v) || Number(v) > 0xffff) throw new UsageError(`-m ${v}: expected a memory region id 0..65535`);
        memId = Number(v);
        break;
      case "C": {
        const p = v.split(",");
        if (p.length > 4 || p.some((x) => !/^[0-9]+$/.test(x))) throw new UsageError(`-C ${v}: expected up to four numbers a,b,c,d`);
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

if (import.meta.main) {
  try {
    const { op, verbose } = parse(process.argv.slice(2));
    if (op === "help") { process.stdout.write(USAGE + "\n"); process.exit(0); }
    if (op.op === "admode") { setAdmode(op.mode); process.exit(0); }
    const ctl = new DevNetmapCtl();
    for (const line of run(ctl, op, verbose)) process.stdout.write(line + "\n");
    ctl.close();
  } catch (e) {
    process.stderr.write(`vale-ctl: ${(e as Error).message}${e instanceof UsageError ? " (bun run vale-ctl -H for help)" : ""}\n`);
    process.exit(1);
  }
}

