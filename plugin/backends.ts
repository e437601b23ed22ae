// The datapaths a vale network may run on (-o backend=), each stated once: how it opens a host veth
// end, the largest MTU it carries whole, whether frames keep their virtio-net header, whether known
// unicast takes the kernel fast path, how its veths and VXLAN uplink are set up, and what it needs
// on this machine. The driver, the plan and the datapath read this table and nothing else.
import { existsSync } from "node:fs";
import { VNET_HDR } from "../src/index.ts";
import { Refused } from "./refused.ts";
import type { VethOptions } from "./veth.ts";

/**
 * packet: buffers are 64 KiB, as large as a GSO frame gets (the veths' gso_max_size keeps every one
 * inside a buffer): 16 KiB frames cost TCP two thirds of its rate, here and on a Linux bridge alike.
 * rx by recvmmsg into the port's own buffers (rx=copy: an idle port holds no kernel frames, a busy
 * one queues skbs up to its 4 MiB rcvbuf); tx by sendmmsg from its own buffers (a slot is free once
 * sent). TPACKET_V2 rx frames (the previous choice) held 4 MiB of kernel memory per port whether
 * used or not: 10 idle networks cost 154 MB instead of 77 (bench/RESULTS.md).
 */
export const PACKET_FRAME = 65536;
/** The largest GSO frame a container may send: one packet buffer less its headers and a margin. */
export const GSO_MAX_SIZE = PACKET_FRAME - 68 /* V2 frame header */ - VNET_HDR.size - 14 - 256 /* margin */;
/** Host veth ends as packet: ports; BUNMAP_PLUGIN_PORT_CONF overrides (keep vnet=1 and buf_size). Through
 * the qdisc (no bypass): what tc or a CNI bandwidth plugin puts on a host end shapes the switch's frames too. */
const PACKET_CONF =
  process.env.BUNMAP_PLUGIN_PORT_CONF ??
  `@conf:vnet=1,buf_size=${PACKET_FRAME},rx=copy,rcvbuf=4194304,rx_slots=256,tx_slots=64,tx=copy,qdisc_bypass=0`;
/**
 * packet networks forward known unicast in the kernel (tc redirect in the sender's softirq, as a
 * Linux bridge does; src/switch/fastpath.ts). BUNMAP_PLUGIN_FASTPATH=0: every frame through user space.
 */
const FASTPATH = process.env.BUNMAP_PLUGIN_FASTPATH !== "0";

export interface BackendSpec {
  /** Largest MTU (IP packet) carried whole. */
  maxMtu: number;
  /** Frames cross the switch behind a virtio-net header (GSO and checksum state kept). */
  vnet: boolean;
  /** Known unicast forwarded by the kernel (tc), not by a worker. */
  fastPath: boolean;
  /** How the host veth ends are made: packet keeps the container's offloads (GSO frames bounded
   * to the switch's buffers); xdp forwards frames as they are, so they need real checksums. */
  veth: VethOptions;
  /** The port a host veth end is opened as, or null (kernel VALE attaches it by name). */
  port: ((ifname: string) => string) | null;
  /** The @conf of the network's vxlan: uplink port, or null: no uplink on this datapath. */
  uplinkConf: string | null;
  /** The uplink is a Linux vxlan device, switched as a port like a host veth end (plugin/uplink-dev.ts):
   * the kernel encapsulates whole GSO frames and the fast path reaches it; else bunmap's vxlan: port. */
  uplinkDevice: boolean;
  /** Why this datapath cannot run here (a sentence with the fix), or null. */
  unavailable(): string | null;
}

export const BACKEND = {
  packet: {
    maxMtu: 9000,
    vnet: true,
    fastPath: FASTPATH,
    veth: { gsoMaxSize: GSO_MAX_SIZE },
    port: (ifname) => `packet:${ifname}${PACKET_CONF}`,
    uplinkConf: `vnet=1,buf_size=${PACKET_FRAME},slots=256`,
    uplinkDevice: true,
    unavailable: () => null,
  },
  xdp: {
    maxMtu: 3504,
    vnet: false,
    fastPath: false,
    veth: { txChecksumOff: true },
    port: (ifname) => `xdp:${ifname}`,
    uplinkConf: "buf_size=4096,slots=512",
    uplinkDevice: false,
    unavailable: () => null,
  },
  vale: {
    maxMtu: 9000,
    vnet: false,
    fastPath: false,
    veth: {},
    port: null,
    uplinkConf: null,
    uplinkDevice: false,
    unavailable: () =>
      netmapAvailable()
        ? null
        : "--opt backend=vale needs /dev/netmap (the netmap kernel module); use backend=packet or xdp",
  },
} as const satisfies Record<string, BackendSpec>;

export type Backend = keyof typeof BACKEND;
export const BACKENDS = Object.keys(BACKEND) as Backend[];

export function netmapAvailable(): boolean {
  return existsSync("/dev/netmap");
}

/** A backend by name, or the refusal naming the ones there are (`what`: where the name came from). */
export function backendNamed(name: string, what = "--opt backend"): Backend {
  if (!Object.hasOwn(BACKEND, name)) throw new Refused(`${what}=${name}: use ${BACKENDS.join(", ")}`);
  return name as Backend;
}

/** What refuses an uplink on a backend that has none. */
export const NO_UPLINK = `an uplink (-o peers/group) runs on bunmap's switch: use -o backend=${BACKENDS.filter(
  (b) => BACKEND[b].uplinkConf,
).join(" or ")}`;
