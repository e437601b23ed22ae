// bunmap as a library: open ports by name, drive their netmap rings, build and parse packets.
export { openPort, openParsed, parsePortName, PortError, type Port, type PortName } from "./port/open.ts";
export { createSharedRegion } from "./port/shm-region.ts";
export { Ring, copyBytes } from "./ring/ring.ts";
export * from "./ring/layout.ts";
export * as ethernet from "./packet/ethernet.ts";
export * as ipv4 from "./packet/ipv4.ts";
export * as ipv6 from "./packet/ipv6.ts";
export * as udp from "./packet/udp.ts";
export * as arp from "./packet/arp.ts";
export * as checksum from "./packet/checksum.ts";
export * as pcap from "./packet/pcap.ts";
export { UdpFlow, type FlowConfig, type AddrRange } from "./packet/udpflow.ts";
export { canSwap, moveRings } from "./forward/move.ts";
export { SwitchCore } from "./switch/core.ts";
export { Fdb } from "./switch/fdb.ts";
export { BROADCAST, DROP, learningLookup, type Lookup, type SwitchView } from "./switch/lookup.ts";
export { SwitchEngine, SwitchHandle, type SwitchOptions, type EngineOptions } from "./switch/engine.ts";
