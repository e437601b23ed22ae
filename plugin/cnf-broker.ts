// The ports broker: a Worker that serves the ports socket (src/port/net-proto.ts) and blocks in one
// epoll_wait over it, its connections, the pidfds of restored ports' processes and a doorbell. It
// reads each request, checks its shape, asks the kernel who sent it (SO_PEERCRED, a pidfd to know the
// pid still names that process, /proc/PID/ns/net) and hands the question to the main thread, which
// holds the networks; it sends the answer with its descriptors (SCM_RIGHTS) and reports connections
// that close, so their ports go.
import { readFileSync, statSync } from "node:fs";
import {
  closeFd,
  decodeNetMessage,
  EPOLL_EVENT_SIZE,
  EPOLLIN,
  encodeNetMessage,
  epollAdd,
  epollCreate,
  epollDel,
  epollWait,
  eventfdDrain,
  NET_MSG_MAX,
  NetRequest,
  netWhyNot,
  pollFds,
  unixSocket,
} from "../src/index.ts";
import type { BrokerCommand, BrokerInit, BrokerReport, Caller } from "./cnf-messages.ts";

declare const self: Worker;
const report = (r: BrokerReport) => self.postMessage(r);

let ep = -1,
  listen = -1,
  doorbell = -1,
  stopping = false;
/** A connection: "asking" until answered, then "granted" (its port lives while it is open). It is
 * named to the main thread by `id`, never by its fd: a closed fd's number is soon another's. */
interface Conn {
  id: number;
  fd: number;
  state: "new" | "asking" | "granted";
}
const conns = new Map<number, Conn>(); // by fd
const connIds = new Map<number, Conn>(); // by id
let connSeq = 0;
/** Connections at once (each port holds one): beyond, new ones are closed unanswered. */
const MAX_CONNS = 4096;
const watched = new Map<string, number>(); // key -> pidfd
const watchKey = new Map<number, string>(); // pidfd -> key
const buf = new Uint8Array(NET_MSG_MAX + 1);

function refuse(c: Conn, error: string): void {
  try {
    unixSocket.sendWithFds(c.fd, encodeNetMessage({ ok: false, error }));
  } catch {
    // gone already
  }
  forget(c);
}

/** Close a connection; a granted one's port goes (the main thread is told). */
function forget(c: Conn, tell = c.state === "granted"): void {
  if (tell) report({ t: "closed", conn: c.id });
  conns.delete(c.fd);
  connIds.delete(c.id);
  epollDel(ep, c.fd);
  closeFd(c.fd);
}

const pfd = new Uint8Array(8);
/** The process behind a pidfd has exited (its pidfd polls readable). */
function exited(pidfd: number): boolean {
  new DataView(pfd.buffer).setInt32(0, pidfd, true);
  pfd[4] = EPOLLIN;
  pfd[6] = pfd[7] = 0;
  return pollFds(pfd, 1, 0) > 0 && (pfd[6] & 1) !== 0;
}

function startTime(pid: number): string {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  return s.slice(s.lastIndexOf(")") + 2).split(" ")[19]; // field 22
}

/** Who is at the other end, or a sentence saying why that cannot be known. */
function callerOf(conn: number): Caller | string {
  const { pid } = unixSocket.peerCred(conn);
  if (pid <= 0) return "the plugin cannot see the caller's process: run the plugin in the host's pid namespace";
  const pidfd = unixSocket.peerPidfd(conn);
  try {
    const ns = statSync(`/proc/${pid}/ns/net`, { bigint: true });
    const start = startTime(pid);
    // read through the pid, then checked: if the process that connected is still alive, the pid was its
    if (pidfd >= 0 && exited(pidfd)) return "the process that asked has exited";
    return { pid, start, netns: `${ns.dev}:${ns.ino}` };
  } catch {
    return "the process that asked has exited";
  } finally {
    closeFd(pidfd);
  }
}

function onConn(c: Conn): void {
  const conn = c.fd;
  const got = unixSocket.recvWithFds(conn, buf, false);
  for (const f of got.fds) closeFd(f); // clients pass none
  if (got.len < 0 && got.errno === 11) return; // EAGAIN: woken for nothing
  if (got.len <= 0 || c.state !== "new") {
    // the peer closed (or spoke out of turn): its port goes; one still being decided is told
    // when its answer comes back (apply, "answer")
    forget(c);
    return;
  }
  if (got.len > NET_MSG_MAX) {
    refuse(c, `the request is longer than ${NET_MSG_MAX} bytes`);
    return;
  }
  const req = decodeNetMessage(buf.subarray(0, got.len));
  if (req === undefined) {
    refuse(c, "the request is not JSON: open ports with bunmap's net: port names");
    return;
  }
  const why = netWhyNot(NetRequest, req);
  if (why) {
    refuse(c, `bad request, ${why}`);
    return;
  }
  const caller = callerOf(conn);
  if (typeof caller === "string") {
    refuse(c, caller);
    return;
  }
  c.state = "asking";
  report({ t: "ask", conn: c.id, caller, req: req as NetRequest });
}

function apply(c: BrokerCommand): void {
  switch (c.t) {
    case "answer": {
      const k = connIds.get(c.conn);
      if (k?.state !== "asking") {
        for (const f of c.fds) closeFd(f);
        if (c.keep) report({ t: "closed", conn: c.conn }); // it left while we decided
        return;
      }
      let sent = true;
      try {
        unixSocket.sendWithFds(k.fd, encodeNetMessage(c.reply), c.fds);
      } catch {
        sent = false;
      }
      for (const f of c.fds) closeFd(f);
      if (c.keep && sent) k.state = "granted";
      else forget(k, c.keep);
      return;
    }
    case "drop": {
      const k = connIds.get(c.conn);
      if (k) forget(k, false);
      return;
    }
    case "watch": {
      const fd = unixSocket.pidfdOpen(c.pid);
      if (fd < 0) {
        report({ t: "exited", key: c.key });
        return;
      }
      watched.set(c.key, fd);
      watchKey.set(fd, c.key);
      epollAdd(ep, fd, EPOLLIN, fd);
      return;
    }
    case "unwatch": {
      const fd = watched.get(c.key);
      if (fd === undefined) return;
      watched.delete(c.key);
      watchKey.delete(fd);
      epollDel(ep, fd);
      closeFd(fd);
      return;
    }
    case "stop":
      stopping = true;
      return;
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

async function run(): Promise<void> {
  const events = new Uint8Array(64 * EPOLL_EVENT_SIZE);
  const dv = new DataView(events.buffer);
  while (!stopping) {
    const n = epollWait(ep, events, 64, -1);
    for (let k = 0; k < n; k++) {
      const fd = dv.getUint32(k * EPOLL_EVENT_SIZE + 4, true);
      if (fd === doorbell) eventfdDrain(doorbell);
      else if (fd === listen) {
        for (let c = unixSocket.acceptConn(listen); c >= 0; c = unixSocket.acceptConn(listen)) {
          if (conns.size >= MAX_CONNS) {
            closeFd(c); // a flood of connections that hold nothing must not take every descriptor
            continue;
          }
          const k: Conn = { id: ++connSeq, fd: c, state: "new" };
          conns.set(c, k);
          connIds.set(k.id, k);
          epollAdd(ep, c, EPOLLIN, c);
        }
      } else if (conns.has(fd)) onConn(conns.get(fd)!);
      else if (watchKey.has(fd)) {
        const key = watchKey.get(fd)!;
        apply({ t: "unwatch", key });
        report({ t: "exited", key });
      }
    }
    await tick(); // commands (onmessage) run here
  }
  for (const c of [...conns.values()]) forget(c, false);
  for (const key of [...watched.keys()]) apply({ t: "unwatch", key });
  closeFd(listen);
  closeFd(ep);
}

let queue: BrokerCommand[] = [];
self.onmessage = (ev: MessageEvent<BrokerInit | BrokerCommand>) => {
  const m = ev.data;
  if (m.t !== "init") {
    queue.push(m);
    const q = queue;
    queue = [];
    for (const c of q) apply(c);
    return;
  }
  try {
    doorbell = m.doorbell;
    ep = epollCreate();
    listen = unixSocket.listenSeqpacket(m.path);
    epollAdd(ep, listen, EPOLLIN, listen);
    epollAdd(ep, doorbell, EPOLLIN, doorbell);
  } catch (e) {
    report({ t: "fatal", error: (e as Error).message });
    return;
  }
  report({ t: "ready" });
  run().then(
    () => report({ t: "fatal", error: "stopped" }),
    (e) => report({ t: "fatal", error: (e as Error).message }),
  );
};
