// The plugin's metrics (GET /metrics) and the state its web view shows (GET /api/state): every
// network's switch and ports from the counters in shared memory, read when scraped. Labels: network
// (Docker's short ID, or cni-NAME), switch, port (its interface or port name), kind (container,
// gateway, uplink, nf) and container (a CNI container's ID; for Docker's, its sandbox's ID).
import type { Family, MetricsSource } from "../src/index.ts";
import type { Driver } from "./driver.ts";
import { gatewayNames } from "./gateway.ts";
import { uplinkOf } from "./plan.ts";
import { short } from "./refused.ts";

interface PortInfo {
  network: string;
  kind: "container" | "gateway" | "uplink" | "nf";
  container: string;
}

/** What each port of each running switch is: its network, its kind, its container. */
function portInfo(driver: Driver): Map<string, Map<string, PortInfo>> {
  const st = driver.state;
  const cni = new Map(st.cniAttachments().map((a) => [a.endpoint, a.container]));
  const bySwitch = new Map<string, Map<string, PortInfo>>();
  for (const n of st.networks()) {
    const m = bySwitch.get(n.switch) ?? new Map<string, PortInfo>();
    bySwitch.set(n.switch, m);
    const network = n.id.startsWith("cni-") ? n.id : short(n.id);
    m.set(gatewayNames(n.id).sw, { network, kind: "gateway", container: "" });
    const up = uplinkOf(n);
    if (up) m.set(up.port, { network, kind: "uplink", container: "" });
    for (const e of st.endpoints(n.id))
      m.set(e.host_if, { network, kind: "container", container: cni.get(e.id) ?? e.sandbox.split("/").pop() ?? "" });
    for (const p of st.cnfPorts().filter((x) => x.network === n.id))
      m.set(p.region, { network, kind: "nf", container: short(p.endpoint) });
  }
  return bySwitch;
}

/** A switch port's name for labels and what it is: an NF's port is named by its shm region (its spec
 * on the switch carries the region and a descriptor number). */
function portOf(ports: Map<string, PortInfo>, port: string, networks: string): [string, PortInfo] {
  const i = ports.get(port);
  if (i) return [port, i];
  for (const [k, v] of ports) if (v.kind === "nf" && port.includes(k)) return [k, v];
  return [port, { network: networks, kind: "nf", container: "" }];
}

/** The switches that run now, with their metrics and what their ports are. */
function running(driver: Driver) {
  const info = portInfo(driver);
  return [...info.keys()].flatMap((sw) => {
    const m = driver.switchMetrics(sw);
    return m ? [{ sw, m, ports: info.get(sw)! }] : [];
  });
}

export function pluginMetrics(driver: Driver): MetricsSource {
  return () => {
    const fam = (name: string, help: string, type: "counter" | "gauge") => ({
      name,
      help,
      type,
      samples: [] as { labels: Record<string, string>; value: number }[],
    });
    const p = {
      rx: fam(
        "bunmap_port_rx_packets_total",
        "Packets received from the port (the kernel fast path's included).",
        "counter",
      ),
      tx: fam("bunmap_port_tx_packets_total", "Packets sent to the port (the kernel fast path's included).", "counter"),
      rxB: fam(
        "bunmap_port_rx_bytes_total",
        "Bytes of frames received from the port (the kernel fast path's included; a GSO frame counts whole).",
        "counter",
      ),
      txB: fam(
        "bunmap_port_tx_bytes_total",
        "Bytes of frames sent to the port (the kernel fast path's included).",
        "counter",
      ),
      drops: fam(
        "bunmap_port_drops_total",
        "Frames for the port dropped, by reason: no_room (its ring full), too_long, offload (one it cannot be given).",
        "counter",
      ),
      fast: fam(
        "bunmap_port_fastpath_packets_total",
        "Packets the kernel fast path redirected, by direction (rx: from the port).",
        "counter",
      ),
      fwd: fam("bunmap_switch_forwarded_packets_total", "Unicast frames the switch's worker forwarded.", "counter"),
      flood: fam("bunmap_switch_flooded_packets_total", "Frames the switch's worker flooded.", "counter"),
      sdrops: fam(
        "bunmap_switch_drops_total",
        "Frames the switch dropped before any port, by reason: same_port, lookup, runt.",
        "counter",
      ),
      learned: fam(
        "bunmap_switch_stations_learned_total",
        "Stations learned (new, or back after ageing out).",
        "counter",
      ),
      moves: fam("bunmap_switch_station_moves_total", "Stations seen on another port than the one learned.", "counter"),
      busy: fam(
        "bunmap_switch_busy_seconds_total",
        "Time the switch's workers spent in rounds that moved packets.",
        "counter",
      ),
      stations: fam("bunmap_switch_stations", "Entries in the learning table now.", "gauge"),
      kstations: fam("bunmap_switch_fastpath_stations", "Stations the kernel fast path redirects to now.", "gauge"),
    };
    for (const { sw, m, ports } of running(driver)) {
      const networks = [...new Set([...ports.values()].map((x) => x.network))].join(",");
      const s = { switch: sw, network: networks };
      p.fwd.samples.push({ labels: s, value: m.switch.forwarded });
      p.flood.samples.push({ labels: s, value: m.switch.flooded });
      for (const [reason, v] of [
        ["same_port", m.switch.dropSamePort],
        ["lookup", m.switch.dropLookup],
        ["runt", m.switch.dropRunt],
      ] as const)
        p.sdrops.samples.push({ labels: { ...s, reason }, value: v });
      p.learned.samples.push({ labels: s, value: m.switch.learned });
      p.moves.samples.push({ labels: s, value: m.switch.moved });
      p.busy.samples.push({ labels: s, value: m.switch.busyUs / 1e6 });
      p.stations.samples.push({ labels: s, value: m.stations.length });
      p.kstations.samples.push({ labels: s, value: m.kernelStations });
      for (const q of m.ports) {
        const [name, i] = portOf(ports, q.port, networks);
        const l = { network: i.network, switch: sw, port: name, kind: i.kind, container: i.container };
        const c = q.counters;
        p.rx.samples.push({ labels: l, value: c.rx });
        p.tx.samples.push({ labels: l, value: c.tx });
        p.rxB.samples.push({ labels: l, value: c.rxBytes });
        p.txB.samples.push({ labels: l, value: c.txBytes });
        for (const [reason, v] of [
          ["no_room", c.dropNoRoom],
          ["too_long", c.dropTooLong],
          ["offload", c.dropOffload],
        ] as const)
          p.drops.samples.push({ labels: { ...l, reason }, value: v });
        p.fast.samples.push({ labels: { ...l, direction: "rx" }, value: q.fast.rx });
        p.fast.samples.push({ labels: { ...l, direction: "tx" }, value: q.fast.tx });
      }
    }
    const st = driver.state;
    const nets: Family = {
      name: "bunmap_networks",
      help: "Networks the plugin holds.",
      type: "gauge",
      samples: [{ value: st.networks().length }],
    };
    const eps: Family = {
      name: "bunmap_endpoints",
      help: "Endpoints the plugin holds, by whether they are joined.",
      type: "gauge",
      samples: [0, 1].map((j) => ({
        labels: { joined: String(!!j) },
        value: st.endpoints().filter((e) => e.joined === j).length,
      })),
    };
    return [...(Object.values(p) as Family[]), nets, eps];
  };
}

/** What the web view lists beyond the counters: each switch's learning table. */
export function pluginState(driver: Driver) {
  return {
    switches: running(driver).map(({ sw, m, ports }) => ({
      switch: sw,
      networks: [...new Set([...ports.values()].map((x) => x.network))],
      stations: m.stations.map((s) => {
        const [port, i] = portOf(ports, s.port, "");
        return { ...s, port, kind: i.kind, container: i.container };
      }),
    })),
  };
}
