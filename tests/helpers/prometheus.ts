// A real parser of the Prometheus text format for the tests: the official Python client's
// (Debian's python3-prometheus-client), run on the text.
import { spawnSync } from "node:child_process";

const PY = "/usr/bin/python3";

/** Why the parser cannot run here, or null. */
export function prometheusParserUnavailable(): string | null {
  return spawnSync(PY, ["-c", "import prometheus_client.parser"]).status === 0
    ? null
    : "python3-prometheus-client is not installed (apt-get install python3-prometheus-client; .ci/run does)";
}

/** Every sample as the official parser reads the text: [name, labels, value]. */
export function parseWithPrometheus(text: string): [string, Record<string, string>, number][] {
  // (NaN comes back as the string "NaN": JSON has no NaN)
  const r = spawnSync(
    PY,
    [
      "-c",
      'import sys,json\nfrom prometheus_client.parser import text_string_to_metric_families as p\nprint(json.dumps([[s.name,s.labels,s.value if s.value==s.value else "NaN"] for f in p(sys.stdin.read()) for s in f.samples]))',
    ],
    { input: text, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`the Prometheus parser refused the text: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
