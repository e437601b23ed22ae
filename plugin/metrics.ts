// The plugin's metrics (GET /metrics) and the state its web view shows (GET /api/state): every
// network's switch and ports from the counters in shared memory, read when scraped. Labels: network
// (Docker's short ID, or cni-NAME), switch, port (its interface or port name), kind (container,
// gateway, uplink, nf) and container (a CNI container's ID; for Docker's, its sandbox's ID).
import { type Family, type MetricsSource, type SwitchReading, switchFamilies } from "../src/index.ts";
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
    const readings: SwitchReading[] = running(driver).map(({ sw, m, ports }) => {
      const networks = [...new Set([...ports.values()].map((x) => x.network))].join(",");
      return {
        labels: { switch: sw, network: networks },
        counters: m.switch,
        stations: m.stations.length,
        kernelStations: m.kernelStations,
        ports: m.ports.map((q) => {
          const [name, i] = portOf(ports, q.port, networks);
          return {
            labels: { network: i.network, switch: sw, port: name, kind: i.kind, container: i.container },
            counters: q.counters,
            fast: q.fast,
          };
        }),
      };
    });
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
    return [...switchFamilies(readings), nets, eps];
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
