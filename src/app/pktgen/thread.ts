// A pktgen thread: runs in a Worker so the main thread can report while the datapath spins.
// Protocol: messages.ts.

import { pinThread } from "../../os/cpu.ts";
import { formatMac } from "../../packet/ethernet.ts";
import { openPort } from "../../port/open.ts";
import type { Port } from "../../port/port.ts";
import { D } from "../report.ts";
import { C, CTL, type Ctx, views } from "./ctx.ts";
import type { FromThread, ToThread } from "./messages.ts";
import { pingBody, pongBody } from "./pingpong.ts";
import { threadPortName } from "./portname.ts";
import { receiverBody } from "./rx.ts";
import { senderBody } from "./tx.ts";

declare const self: Worker;

let port: Port | null = null;
let ctx: Ctx | null = null;

const reply = (m: FromThread) => self.postMessage(m);

self.onmessage = (ev: MessageEvent<ToThread>) => {
  const msg = ev.data;
  if (msg.t === "init") {
    const { cfg, idx, sab } = msg;
    try {
      port = openPort(threadPortName(cfg, idx));
      // frames on such a port start with a virtio-net header: pkt-gen's -H writes one (zeroed: no GSO)
      if (port.hdrLen && port.hdrLen !== cfg.vnetHdr)
        throw new Error(`${port.name}: frames carry a ${port.hdrLen}-byte virtio-net header: pass -H ${port.hdrLen}`);
      if (cfg.affinity >= 0) pinThread((cfg.affinity + idx) % Math.max(1, cfg.cpus));
      const { ctl, ctr } = views(sab, idx);
      ctr[C.used] = 1;
      ctr[C.minSpace] = 99999;
      // -n is divided among threads, as pkt-gen
      const share = Math.floor(cfg.npackets / cfg.threads) + (idx < cfg.npackets % cfg.threads ? 1 : 0);
      const mine = { ...cfg, npackets: cfg.npackets ? share : 0 };
      ctx = { cfg: mine, port, idx, ctl, ctr, log: D, out: (s) => process.stdout.write(s) };
      reply({
        t: "ready",
        info: {
          queues: port.deviceRings,
          mac: formatMac(port.mac),
          rings: [
            ...port.txRings.map((r): [string, number, number, number] => ["TX", r.ringid, r.offset, r.numSlots]),
            ...port.rxRings.map((r): [string, number, number, number] => ["RX", r.ringid, r.offset, r.numSlots]),
          ],
          memsize: port.mem.byteLength,
        },
      });
    } catch (e) {
      port?.close();
      reply({ t: "error", error: (e as Error).message });
    }
    return;
  }
  if (msg.t === "go" && ctx) {
    const c = ctx;
    let error: string | undefined;
    try {
      switch (c.cfg.func) {
        case "tx":
          senderBody(c, false);
          break;
        case "txseq":
          senderBody(c, true);
          break;
        case "rx":
          receiverBody(c, false);
          break;
        case "rxseq":
          receiverBody(c, true);
          break;
        case "ping":
          pingBody(c);
          break;
        case "pong":
          pongBody(c);
          break;
      }
      c.ctr[C.completed] = 1;
    } catch (e) {
      error = (e as Error).message;
    }
    c.ctr[C.used] = 0;
    port?.close();
    port = null;
    Atomics.add(c.ctl, CTL.done, 1);
    Atomics.notify(c.ctl, CTL.done);
    reply({ t: "done", error });
  }
};
