// bunmap as a library: open ports by name, drive their netmap rings, build and parse packets.

export { setTxChecksum, txChecksum } from "../ffi/ethtool.ts";
export {
  close as closeFd,
  EPOLL_EVENT_SIZE,
  EPOLLIN,
  epollAdd,
  epollCreate,
  epollDel,
  epollWait,
  eventfd,
  eventfdDrain,
  eventfdSignal,
  poll as pollFds,
} from "../ffi/libc.ts";
export { VNET_HDR } from "../ffi/tpacket.ts";
export * as unixSocket from "../ffi/unix.ts";
export { canSwap, moveRings } from "./forward/move.ts";
export { type FieldRule, IMIX, list, random, range, type SizeRule, seq } from "./gen/fields.ts";
export { Generator, type GenOptions } from "./gen/generator.ts";
export { Histogram } from "./gen/histogram.ts";
export type { Pattern, Rate } from "./gen/pacing.ts";
export {
  type CompiledStream,
  compileProfile,
  loadProfile,
  type Profile,
  ProfileError,
  type ProfileStream,
} from "./gen/profile.ts";
export { Receiver, StreamRx } from "./gen/receiver.ts";
export { SIG_LEN, wallMs } from "./gen/signature.ts";
export { StreamError, type StreamSpec, StreamWriter } from "./gen/stream.ts";
export type { PacketSpec } from "./gen/template.ts";
export {
  CONTENT_TYPE as METRICS_CONTENT_TYPE,
  type Family,
  type HistogramSample,
  type Labels,
  type MetricsSource,
  render as renderMetrics,
  type Sample,
  scrape as scrapeMetrics,
} from "./metrics/exposition.ts";
export {
  genFamilies,
  LATENCY_BOUNDS,
  latencyBuckets,
  nfFamilies,
  type PktgenThreadReading,
  pktgenFamilies,
  type StreamReading,
  type SwitchReading,
  switchFamilies,
} from "./metrics/families.ts";
export { type MetricsRoutes, metricsRoutes, serveMetrics } from "./metrics/http.ts";
export { isLoopback, type ListenAddr, parseListenAddr } from "./metrics/listen.ts";
export { bridgeNf } from "./nf/bridge.ts";
export { DEDUP_REASONS, Dedup, type DedupOptions } from "./nf/dedup.ts";
export { CompiledGraph, GraphError, type GraphSpec, type NfNode } from "./nf/graph.ts";
export { LB_REASONS, LoadBalancer } from "./nf/lb.ts";
export { lbHash } from "./nf/lb-hash.ts";
export { GraphPart, loadGraph } from "./nf/part.ts";
export { type PartsHandle, type PartsMode, startParts } from "./nf/parts.ts";
export { ROUTER_DROPS, RouterNf } from "./nf/router.ts";
export {
  CONSUMED,
  drop,
  formatCounters,
  formatPorts,
  type NfCounters,
  type NfFunction,
  NfRunner,
  NO_SUCH_OUTPUT,
  Packet,
  PORT_DROPS,
  reportFailure,
  runUntilDone,
} from "./nf/runner.ts";
export { pipeKey, splitGraph } from "./nf/split.ts";
export { type Lock, lockFile } from "./os/lockfile.ts";
export * as arp from "./packet/arp.ts";
export * as checksum from "./packet/checksum.ts";
export * as ethernet from "./packet/ethernet.ts";
export { Fdb } from "./packet/fdb.ts";
export * as ipv4 from "./packet/ipv4.ts";
export * as ipv6 from "./packet/ipv6.ts";
export { ETHERTYPE_QINQ, flowHash, Layers } from "./packet/layers.ts";
export * as pcap from "./packet/pcap.ts";
export * as udp from "./packet/udp.ts";
export { type AddrRange, type FlowConfig, UdpFlow } from "./packet/udpflow.ts";
export * as vxlan from "./packet/vxlan.ts";
export { IFNAME, ifaceIndex, ifaceMac } from "./port/iface.ts";
export {
  decode as decodeNetMessage,
  encode as encodeNetMessage,
  NET_MSG_MAX,
  NET_SLOTS,
  NET_SOCK_DIR,
  NetReply,
  NetRequest,
  netSockPath,
  whyNot as netWhyNot,
} from "./port/net-proto.ts";
export { ADMODE, type Ctl, DevNetmapCtl, getAdmode, setAdmode } from "./port/netmap-ctl.ts";
export { openParsed, openPort, type Port, PortError, type PortName, parsePortName } from "./port/open.ts";
export { createRegionFile, createSharedRegion, shmPath } from "./port/shm-region.ts";
export { type Op as ValeOp, request as valeRequest, run as valeControl } from "./port/vale-control.ts";
export { VxlanPort, vxlanConf } from "./port/vxlan.ts";
export * from "./ring/layout.ts";
export { copyBytes, Ring } from "./ring/ring.ts";
export { SwitchCore } from "./switch/core.ts";
export {
  type EngineOptions,
  type PortCounters,
  type SwitchCounters,
  SwitchEngine,
  SwitchHandle,
  type SwitchOptions,
} from "./switch/engine.ts";
export { BROADCAST, DROP, type Lookup, learningLookup, type SwitchView } from "./switch/lookup.ts";
