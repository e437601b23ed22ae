// What the kernel says about a network interface, for ports opened on one (packet:, xdp:, netmap:).
import { readFileSync } from "node:fs";
import { ifIndex } from "../../ffi/libc.ts";

/** What a Linux interface name may be (IFNAMSIZ 16 with its NUL; the characters iproute2 takes). */
export const IFNAME = /^[0-9A-Za-z_.-]{1,15}$/;

/** The interface's MAC address (/sys/class/net/IF/address); zeros if there is no such interface. */
export function ifaceMac(ifname: string): Uint8Array<ArrayBuffer> {
  try {
    const s = readFileSync(`/sys/class/net/${ifname}/address`, "utf8").trim();
    return Uint8Array.from(s.split(":").map((h) => parseInt(h, 16)));
  } catch {
    return new Uint8Array(6);
  }
}

/** The interface's index in the calling thread's network namespace, or 0 if there is none there
 * (if_nametoindex: no tool, no sysfs, which shows the namespace it was mounted in). */
export function ifaceIndex(ifname: string): number {
  return ifname.length < 16 ? ifIndex(ifname) : 0;
}

/** The link's speed in bits/s (/sys/class/net/IF/speed: veth says 10 Gbit/s), or 0 when the kernel
 * does not know it (down, virtual without one, no such interface). */
export function ifaceSpeedBps(ifname: string): number {
  try {
    const mbit = Number(readFileSync(`/sys/class/net/${ifname}/speed`, "utf8").trim());
    return Number.isFinite(mbit) && mbit > 0 ? mbit * 1e6 : 0;
  } catch {
    return 0;
  }
}
