// The output netmap's apps share (apps/include, as pkt-gen prints it), for every program in src/app: D() log lines on stderr, norm() units, tx_output's final summary on stdout.
// Kept character-compatible so scripts that scrape pkt-gen ("Speed: (\d+\.\d+) (\w+)pps") work.

const UNITS = ["", "K", "M", "G", "T"];

/** apps/include/ctrs.h norm(): "%.3f %s" with K/M/G/T, or "%.0f " unnormalised. */
export function norm(val: number, normalize: boolean): string {
  let i = 0;
  if (normalize) {
    while (val >= 1000 && i < UNITS.length - 1) {
      val /= 1000;
      i++;
    }
    return `${val.toFixed(3)} ${UNITS[i]}`;
  }
  return `${val.toFixed(0)} `;
}

/** D(): "%03d.%06d %s [%d] " — seconds mod 1000 and microseconds of the wall clock. */
export function dPrefix(fn: string, line: number, nowMs = performance.timeOrigin + performance.now()): string {
  const s = Math.floor(nowMs / 1000);
  const us = Math.floor((nowMs - s * 1000) * 1000);
  return `${String(s % 1000).padStart(3, "0")}.${String(us).padStart(6, "0")} ${fn} [${line}] `;
}

export type Log = (fn: string, line: number, msg: string) => void;
export const D: Log = (fn, line, msg) => process.stderr.write(`${dPrefix(fn, line) + msg}\n`);

export interface Totals {
  pkts: number;
  bytes: number;
  events: number;
}

/** tx_output(): the final two lines (or "Sent nothing."). */
export function txOutput(
  cur: Totals,
  delta: number,
  msg: "Sent" | "Received",
  normalize: boolean,
  framing: number,
): string {
  if (cur.pkts === 0) return `${msg} nothing.\n`;
  const size = Math.trunc(cur.bytes / cur.pkts);
  let out = `${msg} ${cur.pkts} packets ${cur.bytes} bytes ${cur.events} events ${size} bytes each in ${delta.toFixed(2)} seconds.\n`;
  if (delta === 0) delta = 1e-6;
  const pps = cur.pkts / delta;
  const bw = (8.0 * cur.bytes) / delta;
  const raw = (8.0 * cur.bytes + cur.pkts * framing) / delta;
  const abs = cur.pkts / cur.events;
  out += `Speed: ${norm(pps, normalize)}pps Bandwidth: ${norm(bw, normalize)}bps (raw ${norm(raw, normalize)}bps). Average batch: ${abs.toFixed(2)} pkts\n`;
  return out;
}

/** main_thread's periodic line. */
export function rateLine(
  pkts: number,
  bytes: number,
  events: number,
  usec: number,
  minSpace: number,
  normalize: boolean,
  framing: number,
  stats = "",
): string {
  const pps = Math.floor((pkts * 1e6 + usec / 2) / usec);
  const abs = events > 0 ? pkts / events : 0;
  return `${norm(pps, normalize)}pps ${stats}(${norm(pkts, normalize)}pkts ${norm(bytes * 8 + pkts * framing, normalize)}bps in ${Math.round(usec)} usec) ${abs.toFixed(2)} avg_batch ${minSpace} min_space`;
}

/** -A: mean and standard deviation over the last 15 samples. */
export class PpsWindow {
  private readonly win = new Float64Array(15);
  private idx = 0;
  push(pps: number, normalize: boolean): string {
    this.win[this.idx] = pps;
    this.idx = (this.idx + 1) % this.win.length;
    let sum = 0,
      n = 0;
    for (const v of this.win)
      if (v) {
        sum += v;
        n++;
      }
    const avg = n ? sum / n : 0;
    let dev = 0;
    for (const v of this.win) if (v) dev += (v - avg) * (v - avg);
    dev = n ? Math.sqrt(dev / n) : 0;
    return `[avg/std ${norm(avg, normalize)}/${norm(dev, normalize)} pps]`;
  }
}

/** pkt-gen's dump_payload (-X): a slot header line, then 16 bytes per line, hex then printable. */
export function dumpPayload(
  p: Uint8Array,
  off: number,
  len: number,
  ringOff: number,
  cur: number,
  bufIdx: number,
  flags: number,
): string {
  const lines = [
    `ring 0x${ringOff.toString(16)} cur ${String(cur).padStart(5)} [buf ${String(bufIdx).padStart(6)} flags 0x${flags.toString(16).padStart(4, "0")} len ${String(len).padStart(5)}]`,
  ];
  for (let i = 0; i < len; i += 16) {
    let hex = "",
      asc = "";
    for (let j = 0; j < 16 && i + j < len; j++) {
      const b = p[off + i + j];
      hex += `${b.toString(16).padStart(2, "0")} `;
      asc += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".";
    }
    lines.push(`${String(i).padStart(5)}: ${hex.padEnd(48)}${asc}`);
  }
  return `${lines.join("\n")}\n`;
}
