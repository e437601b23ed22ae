// NIOCCTRL on /dev/netmap: one request = nmreq_header + body, built in TypeScript (ffi/netmap.ts),
// handed to the kernel in one ioctl. The executor is an interface so requests can be checked byte
// for byte where there is no netmap.

import { ptr } from "bun:ffi";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as libc from "../../ffi/libc.ts";
import { encodeHeader, HDR, NETMAP_REQ_IFNAMSIZ, NIOCCTRL } from "../../ffi/netmap.ts";
import { DEV_NETMAP } from "./netmap.ts";

export interface CtlReply {
  errno: number;
  name: string;
  body: Uint8Array;
}

/** Send one request; the kernel may write back the header's name and the body. */
export interface Ctl {
  request(reqtype: number, name: string, body: Uint8Array): CtlReply;
  close?(): void;
}

/** The real thing: open /dev/netmap, one ioctl(NIOCCTRL) per request. */
export class DevNetmapCtl implements Ctl {
  private fd = -1;
  request(reqtype: number, name: string, body: Uint8Array): CtlReply {
    if (this.fd < 0) {
      if (!existsSync(DEV_NETMAP)) throw new Error(`${DEV_NETMAP} is missing: load the netmap kernel module first`);
      this.fd = libc.open(DEV_NETMAP, libc.O_RDWR);
    }
    const hdr = encodeHeader({ reqtype, name, body: body.byteLength ? (ptr(body) as number) : 0 });
    const r = libc.ioctl(this.fd, NIOCCTRL, ptr(hdr));
    const e = r < 0 ? -r : 0;
    const end = hdr.indexOf(0, HDR.nr_name);
    return {
      errno: e,
      name: new TextDecoder().decode(hdr.subarray(HDR.nr_name, end < 0 ? HDR.nr_name + NETMAP_REQ_IFNAMSIZ : end)),
      body,
    };
  }
  close(): void {
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
  }
}

/** netmap's admode module parameter: 0 native with generic fallback, 1 native only, 2 generic (emulated). */
export const ADMODE = { best: 0, native: 1, generic: 2 } as const;

export function admodePath(sysRoot = "/sys"): string {
  return `${sysRoot}/module/netmap/parameters/admode`;
}

export function getAdmode(sysRoot = "/sys"): number {
  const p = admodePath(sysRoot);
  if (!existsSync(p)) throw new Error(`netmap module not loaded (${p} missing)`);
  return Number(readFileSync(p, "utf8").trim());
}

/**
 * Force the emulated adapter for ports opened from now on: veths attached to VALE while containers
 * use the kernel stack on the other end need it (native veth mode needs netmap on both ends).
 */
export function setAdmode(mode: keyof typeof ADMODE, sysRoot = "/sys"): void {
  const p = admodePath(sysRoot);
  if (!existsSync(p)) throw new Error(`netmap module not loaded (${p} missing)`);
  writeFileSync(p, String(ADMODE[mode]));
}
