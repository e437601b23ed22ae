// The metric families bunmap's programs report, each name, help and label stated once: a switch's
// (the plugin's networks and `bun run switch`), an NF graph's (`bun run nf`), the generator's
// streams (`bun run pktgen --profile`). Pure: readings in, families out.
import type { Histogram } from "../gen/histogram.ts";
import type { SwitchCounters, PortCounters as SwitchPortCounters } from "../switch/layout.ts";
import type { Family, HistogramSample, Labels, Sample } from "./exposition.ts";

export interface SwitchReading {
  labels: Labels;
  counters: SwitchCounters;
  /** learning-table entries now, and those the kernel fast path redirects to */
  stations: number;
  kernelStations: number;
  ports: { labels: Labels; counters: SwitchPortCounters; fast: { rx: number; tx: number } }[];
}

type Kind = "counter" | "gauge";
const family = (name: string, type: Kind, help: string) => ({ name, type, help, samples: [] as Sample[] });

export function switchFamilies(readings: SwitchReading[]): Family[] {
  const f = {
    rx: family(
      "bunmap_port_rx_packets_total",
      "counter",
      "Packets received from the port (the kernel fast path's included).",
    ),
    tx: family(
      "bunmap_port_tx_packets_total",
      "counter",
      "Packets sent to the port (the kernel fast path's included).",
    ),
    rxB: family(
      "bunmap_port_rx_bytes_total",
      "counter",
      "Bytes of frames received from the port (the kernel fast path's included; a GSO frame counts whole).",
    ),
    txB: family(
      "bunmap_port_tx_bytes_total",
      "counter",
      "Bytes of frames sent to the port (the kernel fast path's included).",
    ),
    drops: family(
      "bunmap_port_drops_total",
      "counter",
      "Frames for the port dropped, by reason: no_room (its ring full), too_long, offload (one it cannot be given).",
    ),
    fast: family(
      "bunmap_port_fastpath_packets_total",
      "counter",
      "Packets the kernel fast path redirected, by direction (rx: from the port).",
    ),
    fwd: family("bunmap_switch_forwarded_packets_total", "counter", "Unicast frames the switch's worker forwarded."),
    flood: family("bunmap_switch_flooded_packets_total", "counter", "Frames the switch's worker flooded."),
    sdrops: family(
      "bunmap_switch_drops_total",
      "counter",
      "Frames the switch dropped before any port, by reason: same_port, lookup, runt.",
    ),
    learned: family(
      "bunmap_switch_stations_learned_total",
      "counter",
      "Stations learned (new, or back after ageing out).",
    ),
    moves: family(
      "bunmap_switch_station_moves_total",
      "counter",
      "Stations seen on another port than the one learned.",
    ),
    busy: family(
      "bunmap_switch_busy_seconds_total",
      "counter",
      "Time the switch's workers spent in rounds that moved packets.",
    ),
    stations: family("bunmap_switch_stations", "gauge", "Entries in the learning table now."),
    kstations: family("bunmap_switch_fastpath_stations", "gauge", "Stations the kernel fast path redirects to now."),
  };
  for (const r of readings) {
    const s = r.labels,
      c = r.counters;
    f.fwd.samples.push({ labels: s, value: c.forwarded });
    f.flood.samples.push({ labels: s, value: c.flooded });
    for (const [reason, v] of [
      ["same_port", c.dropSamePort],
      ["lookup", c.dropLookup],
      ["runt", c.dropRunt],
    ] as const)
      f.sdrops.samples.push({ labels: { ...s, reason }, value: v });
    f.learned.samples.push({ labels: s, value: c.learned });
    f.moves.samples.push({ labels: s, value: c.moved });
    f.busy.samples.push({ labels: s, value: c.busyUs / 1e6 });
    f.stations.samples.push({ labels: s, value: r.stations });
    f.kstations.samples.push({ labels: s, value: r.kernelStations });
    for (const p of r.ports) {
      const l = p.labels,
        q = p.counters;
      f.rx.samples.push({ labels: l, value: q.rx });
      f.tx.samples.push({ labels: l, value: q.tx });
      f.rxB.samples.push({ labels: l, value: q.rxBytes });
      f.txB.samples.push({ labels: l, value: q.txBytes });
      for (const [reason, v] of [
        ["no_room", q.dropNoRoom],
        ["too_long", q.dropTooLong],
        ["offload", q.dropOffload],
      ] as const)
        f.drops.samples.push({ labels: { ...l, reason }, value: v });
      f.fast.samples.push({ labels: { ...l, direction: "rx" }, value: p.fast.rx });
      f.fast.samples.push({ labels: { ...l, direction: "tx" }, value: p.fast.tx });
    }
  }
  return Object.values(f);
}

/** An NF graph's ports (as the runner counts them) and NFs. */
export function nfFamilies(
  ports: {
    name: string;
    rxPackets: number;
    rxBytes: number;
    txPackets: number;
    txBytes: number;
    drops: Record<string, number>;
  }[],
  nfs: { name: string; packets: number; forwarded: number; drops: Record<string, number> }[],
  labels: Labels = {},
): Family[] {
  const f = {
    rx: family("bunmap_nf_port_rx_packets_total", "counter", "Packets the runner took from the port."),
    rxB: family("bunmap_nf_port_rx_bytes_total", "counter", "Bytes the runner took from the port."),
    tx: family("bunmap_nf_port_tx_packets_total", "counter", "Packets the runner put on the port."),
    txB: family("bunmap_nf_port_tx_bytes_total", "counter", "Bytes the runner put on the port."),
    pdrops: family(
      "bunmap_nf_port_drops_total",
      "counter",
      "Packets the runner dropped on the way out of the port, by reason.",
    ),
    pk: family("bunmap_nf_packets_total", "counter", "Packets into the NF."),
    fw: family("bunmap_nf_forwarded_packets_total", "counter", "Packets the NF passed on."),
    drops: family("bunmap_nf_drops_total", "counter", "Packets the NF dropped, by its reason."),
  };
  for (const p of ports) {
    const l = { ...labels, port: p.name };
    f.rx.samples.push({ labels: l, value: p.rxPackets });
    f.rxB.samples.push({ labels: l, value: p.rxBytes });
    f.tx.samples.push({ labels: l, value: p.txPackets });
    f.txB.samples.push({ labels: l, value: p.txBytes });
    for (const [reason, v] of Object.entries(p.drops)) f.pdrops.samples.push({ labels: { ...l, reason }, value: v });
  }
  for (const n of nfs) {
    const l = { ...labels, nf: n.name };
    f.pk.samples.push({ labels: l, value: n.packets });
    f.fw.samples.push({ labels: l, value: n.forwarded });
    for (const [reason, v] of Object.entries(n.drops)) f.drops.samples.push({ labels: { ...l, reason }, value: v });
  }
  return Object.values(f);
}

/** Latency bucket bounds in seconds, 1 µs to 10 s (1-2-5 steps): what Prometheus aggregates. */
export const LATENCY_BOUNDS = [1, 2, 5]
  .flatMap((m) => [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1].map((e) => m * e))
  .filter((b) => b <= 10)
  .sort((a, b) => a - b);

/** An HDR latency histogram (ns) as cumulative Prometheus buckets in seconds: each bucket of the
 * histogram counts under the first bound its upper edge does not exceed. */
export function latencyBuckets(h: Histogram, bounds = LATENCY_BOUNDS): [number, number][] {
  const HistogramClass = h.constructor as typeof Histogram;
  const out = bounds.map((b) => [b, 0] as [number, number]);
  for (let b = 0; b < h.counts.length; b++) {
    const n = h.counts[b];
    if (!n) continue;
    const upperS = (HistogramClass.lower(b) + HistogramClass.width(b)) / 1e9;
    for (const o of out) if (upperS <= o[0] + 1e-15) o[1] += n;
  }
  return out;
}

export interface StreamReading {
  labels: Labels;
  txPackets?: number;
  txBytes?: number;
  rx?: { packets: number; bytes: number; lost: number; duplicates: number; reordered: number; latency: Histogram };
}

/** The generator's streams: what each sent, and what came back (loss, duplicates, reordering, latency). */
export function genFamilies(streams: StreamReading[]): Family[] {
  const f = {
    tx: family("bunmap_gen_tx_packets_total", "counter", "Packets the stream sent."),
    txB: family("bunmap_gen_tx_bytes_total", "counter", "Bytes the stream sent."),
    rx: family("bunmap_gen_rx_packets_total", "counter", "Packets of the stream received (duplicates not counted)."),
    rxB: family("bunmap_gen_rx_bytes_total", "counter", "Bytes of the stream received."),
    lost: family("bunmap_gen_lost_packets", "gauge", "Packets of the stream not received (so far)."),
    dup: family("bunmap_gen_duplicate_packets_total", "counter", "Packets of the stream received twice."),
    reord: family(
      "bunmap_gen_reordered_packets_total",
      "counter",
      "Packets of the stream that arrived after a later one.",
    ),
  };
  const lat: Family = {
    name: "bunmap_gen_latency_seconds",
    help: "One-way latency of the stream's packets.",
    type: "histogram",
    samples: [] as HistogramSample[],
  };
  for (const s of streams) {
    if (s.txPackets !== undefined) f.tx.samples.push({ labels: s.labels, value: s.txPackets });
    if (s.txBytes !== undefined) f.txB.samples.push({ labels: s.labels, value: s.txBytes });
    const r = s.rx;
    if (!r) continue;
    f.rx.samples.push({ labels: s.labels, value: r.packets });
    f.rxB.samples.push({ labels: s.labels, value: r.bytes });
    f.lost.samples.push({ labels: s.labels, value: r.lost });
    f.dup.samples.push({ labels: s.labels, value: r.duplicates });
    f.reord.samples.push({ labels: s.labels, value: r.reordered });
    lat.samples.push({
      labels: s.labels,
      buckets: latencyBuckets(r.latency),
      sum: r.latency.sum / 1e9,
      count: r.latency.count,
    });
  }
  return [...Object.values(f), lat];
}

export interface PktgenThreadReading {
  packets: number;
  bytes: number;
  /** rxseq: sequence numbers never seen, and those that came out of order */
  missing: number;
  outOfOrder: number;
}

/** pkt-gen's classic mode: what each thread sent or received (`function`: tx, rx, txseq, ...). */
export function pktgenFamilies(func: string, threads: PktgenThreadReading[]): Family[] {
  const f = {
    pk: family(
      "bunmap_pktgen_packets_total",
      "counter",
      "Packets the thread sent (tx functions) or received (rx functions).",
    ),
    by: family("bunmap_pktgen_bytes_total", "counter", "Bytes the thread sent or received."),
    miss: family("bunmap_pktgen_missing_packets_total", "counter", "rxseq: sequence numbers never received."),
    ooo: family("bunmap_pktgen_out_of_order_packets_total", "counter", "rxseq: packets received out of order."),
  };
  for (const [i, t] of threads.entries()) {
    const l = { function: func, thread: String(i) };
    f.pk.samples.push({ labels: l, value: t.packets });
    f.by.samples.push({ labels: l, value: t.bytes });
    f.miss.samples.push({ labels: l, value: t.missing });
    f.ooo.samples.push({ labels: l, value: t.outOfOrder });
  }
  return Object.values(f);
}
