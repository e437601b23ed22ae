// The Prometheus text format as bunmap writes it, read back by a real parser of the format (the
// official Python client's, Debian's python3-prometheus-client), and the rules for a management
// address. No root needed.
import { describe, expect, test } from "bun:test";
import { type Family, parseListenAddr, renderMetrics } from "../src/index.ts";
import { parseWithPrometheus, prometheusParserUnavailable } from "./helpers/prometheus.ts";

const parserWhy = prometheusParserUnavailable();
if (parserWhy) console.warn(`SKIP the format read back by a real parser: ${parserWhy}`);

const families: Family[] = [
  {
    name: "bunmap_port_rx_packets_total",
    help: "Packets received.\nSecond line, with a \\ backslash.",
    type: "counter",
    samples: [
      { labels: { port: "vh0", container: 'odd "name"\\ with\nnewline' }, value: 12 },
      { labels: { port: "vh1", container: "" }, value: 2 ** 53 },
    ],
  },
  {
    name: "bunmap_switch_stations",
    help: "Entries.",
    type: "gauge",
    samples: [{ value: 3 }, { labels: { switch: "x" }, value: Number.NaN }],
  },
  {
    name: "bunmap_gen_latency_seconds",
    help: "Latency.",
    type: "histogram",
    samples: [
      {
        labels: { stream: "0" },
        buckets: [
          [1e-6, 1],
          [1e-5, 5],
          [1e-3, 9],
        ],
        sum: 0.0021,
        count: 10,
      },
    ],
  },
];

describe("metrics: the text format", () => {
  test.skipIf(!!parserWhy)("a real parser reads back every sample, label and value as written", () => {
    const got = parseWithPrometheus(renderMetrics(families));
    expect(got).toContainEqual([
      "bunmap_port_rx_packets_total",
      { port: "vh0", container: 'odd "name"\\ with\nnewline' },
      12,
    ]);
    expect(got).toContainEqual(["bunmap_port_rx_packets_total", { port: "vh1", container: "" }, 2 ** 53]);
    expect(got).toContainEqual(["bunmap_switch_stations", {}, 3]);
    const nan = got.find((s) => s[0] === "bunmap_switch_stations" && s[1].switch === "x")!;
    expect(nan[2]).toBe("NaN" as unknown as number); // NaN, written as the format spells it
    // a histogram: cumulative buckets ending at +Inf = count, then sum and count
    const b = got
      .filter((s) => s[0] === "bunmap_gen_latency_seconds_bucket")
      .map((s) => [s[1].le === "+Inf" ? Infinity : Number(s[1].le), s[2]]);
    expect(b).toEqual([
      [1e-6, 1],
      [1e-5, 5],
      [0.001, 9],
      [Infinity, 10],
    ]);
    expect(got).toContainEqual(["bunmap_gen_latency_seconds_sum", { stream: "0" }, 0.0021]);
    expect(got).toContainEqual(["bunmap_gen_latency_seconds_count", { stream: "0" }, 10]);
  });

  test("HELP and TYPE once per family, families of one name from two sources merged", () => {
    const gauge: Family = { name: "bunmap_switch_stations", help: "Entries.", type: "gauge", samples: [{ value: 3 }] };
    const text = renderMetrics([gauge, { ...gauge, samples: [{ labels: { switch: "y" }, value: 1 }] }]);
    expect(text.match(/# TYPE bunmap_switch_stations gauge/g)).toHaveLength(1);
    expect(text).toContain('bunmap_switch_stations{switch="y"} 1');
    expect(text.endsWith("\n")).toBe(true);
  });

  test("names the format forbids are refused, not written", () => {
    const bad = (f: Partial<Extract<Family, { type: "counter" | "gauge" }>>) => () =>
      renderMetrics([{ name: "x_total", help: "", type: "counter", samples: [], ...f } as Family]);
    expect(bad({ name: "1x_total" })).toThrow("bad metric name");
    expect(bad({ name: "x" })).toThrow("must end in _total");
    expect(bad({ samples: [{ labels: { "a-b": "1" }, value: 1 }] })).toThrow("bad label name");
    expect(bad({ samples: [{ labels: { __x: "1" }, value: 1 }] })).toThrow("bad label name");
    const g: Family = { name: "bunmap_x_total", help: "", type: "gauge", samples: [] };
    expect(() => renderMetrics([g, { ...g, type: "counter" }])).toThrow("is both gauge and counter");
  });
});

describe("metrics: where a management address may listen", () => {
  const parse = (raw: string, pub = false) => parseListenAddr(raw, "--metrics", pub, "--metrics-public");
  test("loopback by default; anything else only when asked", () => {
    expect(parse("127.0.0.1:9100")).toEqual({ hostname: "127.0.0.1", port: 9100 });
    expect(parse("[::1]:9100")).toEqual({ hostname: "::1", port: 9100 });
    expect(parse("localhost:1")).toEqual({ hostname: "localhost", port: 1 });
    expect(() => parse("0.0.0.0:9100")).toThrow("is not a loopback address");
    expect(() => parse("0.0.0.0:9100")).toThrow("add --metrics-public");
    expect(() => parse("[::]:9100")).toThrow("is not a loopback address");
    expect(parse("0.0.0.0:9100", true)).toEqual({ hostname: "0.0.0.0", port: 9100 });
  });
  test("malformed addresses are one sentence naming the flag", () => {
    for (const raw of [
      "9100",
      ":9100",
      "127.0.0.1",
      "127.0.0.1:0",
      "127.0.0.1:65536",
      "::1:9100",
      "host name:1",
      "[127.0.0.1]:9",
      "999.0.0.1:9",
    ])
      expect(() => parse(raw), raw).toThrow(`--metrics ${JSON.stringify(raw)}: expected HOST:PORT`);
  });
});
