// The Prometheus text exposition format (version 0.0.4), written from families of samples: HELP and
// TYPE once per family, label values escaped, counters named *_total, histograms as cumulative
// _bucket{le} lines ending at +Inf with _sum and _count. Sources produce families when scraped
// (counters live in shared memory; nothing is kept here between scrapes).

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Record<string, string>;

export interface Sample {
  labels?: Labels;
  value: number;
}

export interface HistogramSample {
  labels?: Labels;
  /** [upper bound, cumulative count] in increasing bounds, without +Inf */
  buckets: [number, number][];
  sum: number;
  count: number;
}

export type Family =
  | { name: string; help: string; type: "counter" | "gauge"; samples: Sample[] }
  | { name: string; help: string; type: "histogram"; samples: HistogramSample[] };

/** Something that reports metrics when scraped (a switch, the plugin, pktgen). */
export type MetricsSource = () => Family[];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const escLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

function labelText(l: Labels | undefined, extra?: [string, string]): string {
  const pairs = Object.entries(l ?? {});
  if (extra) pairs.push(extra);
  if (!pairs.length) return "";
  for (const [k] of pairs) if (!LABEL.test(k) || k.startsWith("__")) throw new Error(`metrics: bad label name ${k}`);
  return `{${pairs.map(([k, v]) => `${k}="${escLabel(v)}"`).join(",")}}`;
}

/** A number as the format writes it (Go's float syntax: NaN, +Inf, -Inf). */
export function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

/** Families as the text format; families of the same name from several sources are merged. */
export function render(families: Family[]): string {
  const byName = new Map<string, Family>();
  for (const f of families) {
    if (!NAME.test(f.name)) throw new Error(`metrics: bad metric name ${f.name}`);
    if (f.type === "counter" && !f.name.endsWith("_total"))
      throw new Error(`metrics: counter ${f.name} must end in _total`);
    const had = byName.get(f.name);
    if (!had) byName.set(f.name, { ...f, samples: [...f.samples] } as Family);
    else if (had.type !== f.type) throw new Error(`metrics: ${f.name} is both ${had.type} and ${f.type}`);
    else (had.samples as unknown[]).push(...f.samples);
  }
  const out: string[] = [];
  for (const f of byName.values()) {
    out.push(`# HELP ${f.name} ${escHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    if (f.type === "histogram") {
      for (const h of f.samples) {
        for (const [le, c] of h.buckets) out.push(`${f.name}_bucket${labelText(h.labels, ["le", num(le)])} ${num(c)}`);
        out.push(`${f.name}_bucket${labelText(h.labels, ["le", "+Inf"])} ${num(h.count)}`);
        out.push(
          `${f.name}_sum${labelText(h.labels)} ${num(h.sum)}`,
          `${f.name}_count${labelText(h.labels)} ${num(h.count)}`,
        );
      }
    } else for (const s of f.samples) out.push(`${f.name}${labelText(s.labels)} ${num(s.value)}`);
  }
  return `${out.join("\n")}\n`;
}

/** Scrape every source (one failing is reported as a gauge, not a failed scrape). */
export function scrape(sources: MetricsSource[]): string {
  const fams: Family[] = [];
  let errors = 0;
  for (const s of sources) {
    try {
      fams.push(...s());
    } catch {
      errors++;
    }
  }
  fams.push({
    name: "bunmap_scrape_errors",
    help: "Metric sources that failed in this scrape.",
    type: "gauge",
    samples: [{ value: errors }],
  });
  return render(fams);
}
