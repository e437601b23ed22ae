// Link offload settings through the kernel's own interface: the SIOCETHTOOL ioctl (what ethtool -K
// does), no CLI. struct ifreq (40 bytes: name[16], then ifr_data) points at struct ethtool_value
// {u32 cmd; u32 data}.
import { ptr } from "bun:ffi";
import * as libc from "./libc.ts";

export const SIOCETHTOOL = 0x8946;
export const ETHTOOL = { GTXCSUM: 0x16, STXCSUM: 0x17 } as const;
export const IFREQ = { ifr_name: 0, ifr_data: 16, size: 40 } as const;
const AF_INET = 2,
  SOCK_DGRAM = 2;

function ethtool(ifname: string, cmd: number, data: number): number {
  const name = Buffer.from(ifname);
  if (name.length >= 16) throw new Error(`${ifname}: interface names are at most 15 bytes`);
  const val = new Uint32Array([cmd, data]);
  const ifr = new Uint8Array(IFREQ.size);
  ifr.set(name, IFREQ.ifr_name);
  new DataView(ifr.buffer).setBigUint64(IFREQ.ifr_data, BigInt(ptr(val)), true);
  const fd = libc.socket(AF_INET, SOCK_DGRAM, 0, "ethtool socket");
  try {
    const r = libc.ioctl(fd, SIOCETHTOOL, ptr(ifr));
    if (r < 0) throw new libc.SysError("SIOCETHTOOL", -r, ifname);
    return val[1];
  } finally {
    libc.close(fd);
  }
}

/** Is transmit checksum offload on? */
export function txChecksum(ifname: string): boolean {
  return ethtool(ifname, ETHTOOL.GTXCSUM, 0) !== 0;
}

/** Turn transmit checksum offload (and with it TSO, which needs it) on or off, and check it took. */
export function setTxChecksum(ifname: string, on: boolean): void {
  ethtool(ifname, ETHTOOL.STXCSUM, on ? 1 : 0);
  if (txChecksum(ifname) !== on)
    throw new Error(`${ifname}: tx checksum offload is still ${on ? "off" : "on"} after SIOCETHTOOL`);
}
