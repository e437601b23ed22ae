// What the kernel says about a network interface, for ports opened on one (packet:, xdp:, netmap:).
import { readFileSync } from "node:fs";

/** The interface's MAC address (/sys/class/net/IF/address); zeros if there is no such interface. */
export function ifaceMac(ifname: string): Uint8Array<ArrayBuffer> {
  try {
    const s = readFileSync(`/sys/class/net/${ifname}/address`, "utf8").trim();
    return Uint8Array.from(s.split(":").map((h) => parseInt(h, 16)));
  } catch {
    return new Uint8Array(6);
  }
}
