// Open any port by name. Backends load lazily so a missing library only matters to its own ports.
import { type PortName, parsePortName } from "./name.ts";
import { openNetPort } from "./net.ts";
import { NetmapPort } from "./netmap.ts";
import { PacketPort } from "./packet.ts";
import { PcapPort } from "./pcap.ts";
import { type Port, PortError } from "./port.ts";
import { type ShmOpenOptions, ShmPort } from "./shm.ts";
import { VxlanPort } from "./vxlan.ts";
import { XdpPort } from "./xdp.ts";

export type OpenOptions = ShmOpenOptions;

export function openPort(spec: string, opts: OpenOptions = {}): Port {
  const pn = parsePortName(spec);
  return openParsed(pn, opts);
}

export function openParsed(pn: PortName, opts: OpenOptions = {}): Port {
  switch (pn.backend) {
    case "shm":
      return new ShmPort(pn, opts);
    case "netmap":
    case "vale":
      return NetmapPort.open(pn);
    case "packet":
      return new PacketPort(pn);
    case "xdp":
      return new XdpPort(pn);
    case "pcap":
      return new PcapPort(pn);
    case "vxlan":
      return new VxlanPort(pn);
    case "net":
      return openNetPort(pn);
  }
}

export type { Port, PortName };
export { PortError, parsePortName };
