// An engine worker: runs any number of switches, each a SwitchCore over its ports. While packets
// flow it loops over the rings; once idle for spinUs it sleeps in one epoll_wait over every port's
// fd and its doorbell, so an idle worker costs nothing and the first packet on any port wakes it.
// Commands (add/remove switch or port) are applied between rounds; the others keep running.

import * as libc from "../../ffi/libc.ts";
import { pinThread } from "../os/cpu.ts";
import { parseMac } from "../packet/ethernet.ts";
import { Fdb } from "../packet/fdb.ts";
import { openPort } from "../port/open.ts";
import type { Port } from "../port/port.ts";
import { SwitchCore } from "./core.ts";
import { FastPathPorts } from "./fastpath.ts";
import { counterBlock } from "./layout.ts";
import { loadLookup } from "./lookup.ts";
import { type Command, CTL, type Reply, type WorkerInit } from "./messages.ts";

declare const self: Worker;
const reply = (r: Reply) => self.postMessage(r);

const switches = new Map<number, SwitchCore>();
const fastPaths = new Map<number, { ports: FastPathPorts; fdb: Fdb }>();
/** How often the kernel's station map is brought in line with the learning table's ageing (ms). */
const SWEEP_MS = 1000;
const cores: SwitchCore[] = []; // the same, as an array for the hot loop
let ep = -1,
  doorbell = -1,
  ctl: Int32Array,
  spinMs = 0.05;
let applied = 0,
  stopping = false;
let fdless = 0; // ports without an fd: the worker cannot sleep on them, so it naps 1 ms at most
/** Ports whose peer rings pollFd only when told the worker sleeps (shm ends with an eventfd doorbell). */
const armable: Port[] = [];
const armableFds = new Set<number>();

function track(p: Port, on: boolean): void {
  if (p.pollFd < 0) {
    fdless += on ? 1 : -1;
    return;
  }
  if (p.arm) {
    if (on) armable.push(p);
    else armable.splice(armable.indexOf(p), 1);
    if (on) armableFds.add(p.pollFd);
    else armableFds.delete(p.pollFd);
  }
  if (on) libc.epollAdd(ep, p.pollFd, libc.EPOLLIN, p.pollFd);
  else libc.epollDel(ep, p.pollFd);
}

async function apply(c: Command): Promise<void> {
  switch (c.t) {
    case "addSwitch": {
      const s = c.spec;
      if (switches.has(s.sw)) throw new Error(`switch ${s.sw} exists`);
      const block = counterBlock(s.maxPorts);
      const ctr = new Float64Array(s.counters, Math.max(s.ring, 0) * block * 8, block);
      const fdb = Fdb.of(s.fdb, s.age);
      const core = new SwitchCore(fdb, await loadLookup(s.lookup), s.burst, ctr, s.learn);
      const fast = s.fast ? new FastPathPorts(s.fast) : null;
      if (fast) {
        fastPaths.set(s.sw, { ports: fast, fdb });
        core.onLearn = (u8, off, id) => fast.learned(u8, off, id);
      }
      core.onPortError = (id, p, e) => {
        fast?.detach(id);
        closePort(p);
        reply({ t: "portFailed", sw: s.sw, id, error: `${p.name}: ${e.message}` });
      };
      switches.set(s.sw, core);
      cores.push(core);
      return;
    }
    case "removeSwitch": {
      const core = switches.get(c.sw);
      if (!core) return;
      const fast = fastPaths.get(c.sw)?.ports;
      for (const id of Array.from(core.ports.subarray(0, core.nports))) {
        fast?.detach(id);
        closePort(core.remove(id));
      }
      switches.delete(c.sw);
      fastPaths.delete(c.sw);
      cores.splice(cores.indexOf(core), 1);
      return;
    }
    case "addPort": {
      const core = need(c.sw);
      const p = openPort(c.name);
      let tracked = false;
      try {
        core.add(p, c.id);
        track(p, true);
        tracked = true;
        const fast = fastPaths.get(c.sw);
        fast?.ports.attach(c.id, p);
        // stations known to be behind the port, learned as if they had spoken
        const now = Math.floor(Date.now() / 1000);
        for (const m of c.stations ?? []) {
          const mac = parseMac(m);
          if (core.fdb.learn(mac, 0, c.id, now)) fast?.ports.learned(mac, 0, c.id);
        }
      } catch (e) {
        fastPaths.get(c.sw)?.ports.detach(c.id);
        if (tracked) track(p, false);
        core.remove(c.id);
        p.close();
        throw e;
      }
      return;
    }
    case "removePort":
      fastPaths.get(c.sw)?.ports.detach(c.id);
      closePort(need(c.sw).remove(c.id));
      return;
    case "stop":
      for (const sw of [...switches.keys()]) await apply({ t: "removeSwitch", seq: c.seq, sw });
      stopping = true;
      return;
  }
}

function closePort(p: Port | null): void {
  if (!p) return;
  track(p, false);
  p.close();
}

function need(sw: number): SwitchCore {
  const core = switches.get(sw);
  if (!core) throw new Error(`switch ${sw} is not on this worker`);
  return core;
}

// commands arrive in order; each is applied whole before the next (apply may await a lookup import)
let queue: Promise<void> = Promise.resolve();
function onCommand(c: Command): void {
  queue = queue.then(async () => {
    try {
      await apply(c);
      reply({ t: "done", seq: c.seq });
    } catch (e) {
      reply({ t: "done", seq: c.seq, error: (e as Error).message });
    }
    applied++;
  });
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Stations the learning table aged out leave the kernel's map too (a silent one is not redirected forever). */
function sweep(): void {
  const now = Math.floor(Date.now() / 1000);
  for (const { ports, fdb } of fastPaths.values()) ports.expire((mac) => fdb.lookup(mac, 0, now) >= 0);
}

async function run(): Promise<void> {
  const events = new Uint8Array(64 * libc.EPOLL_EVENT_SIZE);
  const evView = new DataView(events.buffer);
  let idleSince = -1;
  let swept = performance.now();
  for (;;) {
    if (fastPaths.size && performance.now() - swept >= SWEEP_MS) {
      sweep();
      swept = performance.now();
    }
    if (Atomics.load(ctl, CTL.posted) !== applied) {
      // let onmessage run: the datapath loop is synchronous, commands wait for this yield
      while (Atomics.load(ctl, CTL.posted) !== applied) await tick();
      if (stopping) return;
      idleSince = -1;
      continue;
    }
    let got = 0;
    for (let k = 0; k < cores.length; k++) {
      const t = performance.now(),
        n = cores[k].round();
      if (n) cores[k].busy(performance.now() - t);
      got += n;
    }
    if (got) {
      idleSince = -1;
      continue;
    }
    const now = performance.now();
    if (idleSince < 0) {
      idleSince = now;
      continue;
    }
    if (now - idleSince < spinMs) {
      libc.yieldCpu(); // a port's peer may need this CPU to fill the ring we wait on (shm.ts poll)
      continue;
    }
    let nap = fdless > 0 ? 1 : fastPaths.size ? SWEEP_MS : -1;
    for (let k = 0; k < cores.length && nap < 0; k++) if (cores[k].txPending()) nap = 1;
    let armed = 0,
      ready = false;
    while (armed < armable.length && !ready) ready = armable[armed++].arm!();
    const n = ready ? 0 : libc.epollWait(ep, events, 64, nap);
    for (let k = 0; k < armed; k++) armable[k].disarm!();
    // the eventfds that rang (level-triggered: left unread, the next sleep would end at once)
    for (let k = 0; k < n; k++) {
      const fd = evView.getUint32(k * libc.EPOLL_EVENT_SIZE + 4, true);
      if (armableFds.has(fd)) libc.eventfdDrain(fd);
    }
    libc.eventfdDrain(doorbell);
    idleSince = -1;
  }
}

self.onmessage = (ev: MessageEvent<WorkerInit | Command>) => {
  const m = ev.data;
  if (m.t !== "init") {
    onCommand(m);
    return;
  }
  try {
    doorbell = m.doorbell;
    ctl = new Int32Array(m.ctl, 0, CTL.size);
    spinMs = m.spinUs / 1000;
    if (m.cpu >= 0) pinThread(m.cpu);
    ep = libc.epollCreate();
    libc.epollAdd(ep, doorbell, libc.EPOLLIN, doorbell);
  } catch (e) {
    reply({ t: "fatal", error: (e as Error).message });
    return;
  }
  reply({ t: "ready" });
  run().then(
    () => {
      libc.close(ep);
      reply({ t: "fatal", error: "stopped" });
    },
    (e) => reply({ t: "fatal", error: (e as Error).message }),
  );
};
