// Zero-copy ports for network functions in containers (the ports protocol, src/port/net-proto.ts).
// A process inside a container asks, on the ports socket, for a port into a network its container is
// attached to; this room decides (is its network namespace the sandbox of an endpoint joined to that
// network?), makes the port's memory (one shm region per switch port, one per pipe: never one for
// all) and, for a switch port, the eventfd that wakes the switch, and keeps a row per port so a
// restarted plugin finds them again. The switch carries the ports through reconcile, like veths.

import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { dirname } from "node:path";
import {
  closeFd,
  createRegionFile,
  eventfd,
  eventfdSignal,
  NET_SLOTS,
  type NetReply,
  type NetRequest,
  netSockPath,
  shmPath,
  unixSocket,
} from "../src/index.ts";
import type { BrokerCommand, BrokerReport, Caller } from "./cnf-messages.ts";
import type { CnfRow, EndpointRow, NetworkRow, State } from "./state.ts";

/** What a live port holds in this process: its row, the switch's doorbell, its connection. */
interface Live extends CnfRow {
  /** The switch port's eventfd (-1: pipes, or a restored port whose doorbell could not be found). */
  bell: number;
  /** The holder's connection on the broker (-1 after a restart: its pid is watched instead). */
  conn: number;
}

export interface CnfHooks {
  /** Run f as one driver operation (serialised with Docker's calls). */
  exclusive<T>(f: () => Promise<T>): Promise<T>;
  /** Bring a network's switch in line (it asks switchPorts for the ports below). */
  reconcile(network: NetworkRow): Promise<void>;
  log(msg: string): void;
}

const regionPrefix = (instance: string) => `cnf-${instance}-`;

/** eventfd-id of one of our descriptors (/proc fdinfo), which names the eventfd in any process. */
function eventfdId(pid: number | "self", fd: number): number {
  const m = /eventfd-id:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
  return m ? Number(m[1]) : -1;
}

/** A descriptor of ours for the eventfd with this id that process `pid` holds, or -1. */
function takeBackEventfd(pid: number, id: number): number {
  if (id < 0) return -1;
  const pidfd = unixSocket.pidfdOpen(pid);
  if (pidfd < 0) return -1;
  try {
    for (const f of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${f}`) !== "anon_inode:[eventfd]") continue;
        if (eventfdId(pid, Number(f)) === id) return unixSocket.pidfdGetfd(pidfd, Number(f));
      } catch {
        // closed while we looked
      }
    }
    return -1;
  } finally {
    closeFd(pidfd);
  }
}

function netnsOf(path: string): string | null {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

function processStart(pid: number): string | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return null;
  }
}

/** Ports one container's endpoint may hold at once: each is a region of its own (4 MiB at 1024 slots). */
export const CNF_PER_ENDPOINT = 64;

/** Frame buffers for a network's MTU: Ethernet, a VLAN tag, whole 64-byte lines, at least 2 KiB. */
export const cnfBufSize = (mtu: number) => Math.max(2048, Math.ceil((mtu + 18) / 64) * 64);

export class CnfPorts {
  private readonly live = new Map<string, Live>();
  private readonly byConn = new Map<number, string>();
  private broker: Worker | null = null;
  private doorbell = -1;
  /** Where the ports socket listens (null until started). */
  path: string | null = null;

  constructor(
    private readonly state: State,
    private readonly hooks: CnfHooks,
  ) {}

  /** Serve the ports socket (a stale socket file of a plugin that died is replaced; a live one refused). */
  async start(path = netSockPath()): Promise<void> {
    // the directory containers mount: made (0755 whatever the umask) if missing, never changed if not ours
    if (!existsSync(dirname(path))) {
      mkdirSync(dirname(path), { recursive: true });
      chmodSync(dirname(path), 0o755);
    }
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket())
        throw new Error(`${path} exists and is not a socket: remove it, or set BUNMAP_PORTS_SOCK`);
      let live = false;
      try {
        closeFd(unixSocket.connectSeqpacket(path, 1000));
        live = true;
      } catch {
        unlinkSync(path);
      }
      if (live) throw new Error(`another process serves ${path}: stop it, or set BUNMAP_PORTS_SOCK`);
    }
    this.doorbell = eventfd();
    const w = new Worker(new URL("./cnf-broker.ts", import.meta.url).href);
    this.broker = w;
    await new Promise<void>((resolve, reject) => {
      w.onmessage = (ev: MessageEvent<BrokerReport>) => {
        const r = ev.data;
        if (r.t === "ready") resolve();
        else if (r.t === "fatal") reject(new Error(`ports socket ${path}: ${r.error}`));
        else this.onReport(r);
      };
      w.postMessage({ t: "init", path, doorbell: this.doorbell });
    });
    w.onmessage = (ev: MessageEvent<BrokerReport>) => {
      const r = ev.data;
      if (r.t === "fatal") this.hooks.log(`ports socket ${path}: ${r.error}`);
      else this.onReport(r);
    };
    // anyone may connect: who gets a port is decided by the caller's network namespace, not its uid
    // (a container's root may be another uid here, with user namespaces)
    chmodSync(path, 0o666);
    this.path = path;
    // ports restored before the socket served: their holders' pids are watched from now on
    for (const p of this.live.values()) if (p.conn < 0) this.send({ t: "watch", key: p.key, pid: p.pid });
  }

  private send(c: BrokerCommand): void {
    this.broker?.postMessage(c);
    if (this.doorbell >= 0) eventfdSignal(this.doorbell);
  }

  private onReport(r: BrokerReport): void {
    if (r.t === "ask") {
      this.hooks
        .exclusive(() => this.grant(r.conn, r.caller, r.req))
        .then(
          (a) => this.send({ t: "answer", conn: r.conn, ...a }),
          (e) =>
            this.send({
              t: "answer",
              conn: r.conn,
              reply: { ok: false, error: (e as Error).message },
              fds: [],
              keep: false,
            }),
        );
    } else if (r.t === "closed") {
      const key = this.byConn.get(r.conn);
      if (key) this.hooks.exclusive(() => this.drop(key)).catch((e) => this.hooks.log(`cnf: ${(e as Error).message}`));
    } else if (r.t === "exited") {
      this.hooks.exclusive(() => this.drop(r.key)).catch((e) => this.hooks.log(`cnf: ${(e as Error).message}`));
    }
  }

  /** The endpoint of `network` (named by ID prefix, or by the caller's interface MAC) whose sandbox is the caller's. */
  private endpointFor(caller: Caller, req: NetRequest): { e: EndpointRow; n: NetworkRow } {
    const joined = this.state.endpoints().filter((e) => e.joined && e.sandbox);
    const seen = joined.map((e) => ({ e, ns: netnsOf(e.sandbox) }));
    const mine = seen.filter((x) => x.ns === caller.netns).map((x) => x.e);
    // none visible at all: the plugin's view lacks Docker's files (one missing is a sandbox gone)
    if (!mine.length && seen.length && seen.every((x) => x.ns === null))
      throw new Error(
        "the plugin cannot see Docker's namespace files (the endpoints' SandboxKey): run it on the host, or give its container /var/run/docker/netns with rslave propagation",
      );
    if (!mine.length)
      throw new Error(
        "this process is in no container attached to a vale network (its network namespace is no endpoint's sandbox); run it in such a container",
      );
    if (req.mac) {
      const e = mine.find((x) => x.mac === req.mac);
      if (!e) throw new Error(`interface ${req.network} (${req.mac}) is not on a vale network`);
      return { e, n: this.state.network(e.network)! };
    }
    const nets = this.state.networks().filter((n) => n.id.startsWith(req.network));
    if (!nets.length)
      throw new Error(
        `${req.network} is neither an interface of this container nor a vale network's ID: name your interface on the network (net:eth0) or the network's ID`,
      );
    if (nets.length > 1)
      throw new Error(`network ID prefix ${req.network} names ${nets.length} networks; give more of it`);
    const e = mine.find((x) => x.network === nets[0].id);
    if (!e) throw new Error(`this container is not attached to network ${nets[0].id.slice(0, 12)}`);
    return { e, n: nets[0] };
  }

  /** Decide one request (inside a driver operation): the answer and the descriptors it carries. */
  private async grant(
    conn: number,
    caller: Caller,
    req: NetRequest,
  ): Promise<{ reply: NetReply; fds: number[]; keep: boolean }> {
    const { e, n } = this.endpointFor(caller, req);
    if (n.backend === "vale")
      throw new Error(
        `network ${n.id.slice(0, 12)} runs on kernel VALE: open netmap on your interface instead (netmap:eth0, /dev/netmap in the container)`,
      );
    const held = [...this.live.values()].filter((p) => p.endpoint === e.id).length;
    if (held >= CNF_PER_ENDPOINT)
      throw new Error(
        `this container holds ${held} ports on network ${n.id.slice(0, 12)} already, the most one may: close some`,
      );
    const conf = {
      pipes: 1,
      rings: 1,
      slots: req.slots ?? NET_SLOTS.def,
      bufSize: cnfBufSize(n.mtu),
    };
    const base = { network: n.id, endpoint: e.id, pid: caller.pid, start: caller.start, station: req.station ?? "" };
    if (req.pipe) {
      const { id, role } = req.pipe;
      const key = `pipe:${n.id}:${id}:${role}`;
      if (this.live.has(key))
        throw new Error(`pipe ${id} of network ${n.id.slice(0, 12)}: its ${role} end is open already`);
      const other = this.live.get(`pipe:${n.id}:${id}:${role === "master" ? "slave" : "master"}`);
      const region = other?.region ?? `${regionPrefix(this.state.instance)}${n.id.slice(0, 12)}-p${id}`;
      const regionFd = other ? openExisting(region) : createRegionFile(region, conf);
      const row: Live = { ...base, key, kind: "pipe", region, bell_id: -1, bell: -1, conn };
      this.state.addCnfPort(row);
      this.live.set(key, row);
      this.byConn.set(conn, key);
      return {
        reply: {
          ok: true,
          network: n.id,
          port: `${region}${role === "master" ? "{" : "}"}0`,
          role,
          mtu: n.mtu,
          wake: "futex",
        },
        fds: [regionFd],
        keep: true,
      };
    }
    const region = `${regionPrefix(this.state.instance)}${randomBytes(4).toString("hex")}`;
    const regionFd = createRegionFile(region, conf);
    const bell = eventfd();
    const key = `switch:${region}`;
    const row: Live = { ...base, key, kind: "switch", region, bell_id: eventfdId("self", bell), bell, conn };
    this.state.addCnfPort(row);
    this.live.set(key, row);
    this.byConn.set(conn, key);
    try {
      await this.hooks.reconcile(n);
    } catch (err) {
      closeFd(regionFd);
      this.forget(key);
      await this.hooks.reconcile(n).catch(() => undefined);
      this.release(row);
      throw err;
    }
    const peerBell = unixSocket.dupFd(bell);
    return {
      reply: { ok: true, network: n.id, port: region, role: "slave", mtu: n.mtu, wake: "eventfd" },
      fds: [regionFd, peerBell],
      keep: true,
    };
  }

  /**
   * The switch ports a network's switch should carry now (reconcile asks): live ports whose endpoint
   * is still joined. Those that are not are let go (their memory and doorbell once the switch has
   * dropped them: `settle`).
   */
  switchPorts(network: string): { spec: string; stations: string[] }[] {
    const out: { spec: string; stations: string[] }[] = [];
    for (const p of this.live.values()) {
      if (p.network !== network || p.kind !== "switch") continue;
      if (!this.valid(p)) continue;
      out.push({
        spec: `shm:${p.region}{0${p.bell >= 0 ? `@conf:bellfd=${p.bell}` : ""}`,
        stations: p.station ? [p.station] : [],
      });
    }
    return out;
  }

  /** After a network's switch was brought in line: let go of that network's ports no longer valid. */
  settle(network: string): void {
    for (const p of [...this.live.values()]) {
      if (p.network !== network) continue;
      if (!this.valid(p)) {
        this.forget(p.key);
        this.release(p);
      }
    }
  }

  /** Ports of networks that no longer exist (their switch stopped): let go. */
  settleGone(): void {
    const nets = new Set(this.state.networks().map((n) => n.id));
    for (const p of [...this.live.values()])
      if (!nets.has(p.network)) {
        this.forget(p.key);
        this.release(p);
      }
  }

  private valid(p: CnfRow): boolean {
    const e = this.state.endpoint(p.endpoint);
    return !!e && e.joined === 1 && e.network === p.network && !!this.state.network(p.network);
  }

  /** Take a port off the books (state and memory of this process); release() frees what it held. */
  private forget(key: string): void {
    const p = this.live.get(key);
    if (!p) return;
    this.live.delete(key);
    if (p.conn >= 0) this.byConn.delete(p.conn);
    this.state.deleteCnfPort(key);
  }

  private release(p: Live): void {
    if (p.conn >= 0) this.send({ t: "drop", conn: p.conn });
    else this.send({ t: "unwatch", key: p.key });
    if (p.bell >= 0) closeFd(p.bell);
    // a pipe's region goes with its last end
    const shared = [...this.live.values()].some((q) => q.region === p.region);
    if (!shared) {
      try {
        unlinkSync(shmPath(p.region));
      } catch {
        // gone already
      }
    }
  }

  /** A holder closed its connection or exited: its port goes. */
  private async drop(key: string): Promise<void> {
    const p = this.live.get(key);
    if (!p) return;
    this.forget(key);
    const n = this.state.network(p.network);
    if (p.kind === "switch" && n) await this.hooks.reconcile(n);
    this.release(p);
  }

  /**
   * After a restart: the ports whose holder still runs (same pid and start time), in the same
   * network namespace as its endpoint's sandbox, come back (their doorbell taken back from the
   * holder with pidfd_getfd; watched through a pidfd now that no connection is left). Rows of
   * holders gone, and regions of ours no row names, are removed. Returns how many came back.
   */
  restore(): number {
    let back = 0;
    const keep = new Set<string>();
    for (const r of this.state.cnfPorts()) {
      const e = this.state.endpoint(r.endpoint);
      const alive = processStart(r.pid) === r.start;
      const same = alive && e?.joined === 1 && netnsOf(`/proc/${r.pid}/ns/net`) === netnsOf(e.sandbox);
      if (!same || !existsSync(shmPath(r.region)) || !this.valid(r)) {
        this.state.deleteCnfPort(r.key);
        continue;
      }
      const bell = r.kind === "switch" ? takeBackEventfd(r.pid, r.bell_id) : -1;
      if (r.kind === "switch" && bell < 0)
        this.hooks.log(`cnf: port ${r.region}: its doorbell is gone; the switch polls it each millisecond`);
      const p: Live = { ...r, bell, conn: -1 };
      this.live.set(r.key, p);
      keep.add(r.region);
      back++;
    }
    // regions of ours that no port holds (a crash between making one and its row, or after the last)
    const dir = shmPath("x").slice(0, -"bunmap-x".length);
    const prefix = `bunmap-${regionPrefix(this.state.instance)}`;
    for (const f of safeReaddir(dir))
      if (f.startsWith(prefix) && !keep.has(f.slice("bunmap-".length))) {
        try {
          unlinkSync(`${dir}${f}`);
        } catch {
          // gone already
        }
      }
    return back;
  }

  /** Ports per network, for the view. */
  count(network: string): number {
    return [...this.live.values()].filter((p) => p.network === network).length;
  }

  async stop(): Promise<void> {
    if (!this.broker) return;
    this.send({ t: "stop" });
    await Bun.sleep(20);
    this.broker.terminate();
    this.broker = null;
    closeFd(this.doorbell);
    this.doorbell = -1;
    for (const p of this.live.values()) if (p.bell >= 0) closeFd(p.bell);
    // the rows stay: a restarted plugin brings back the ports whose holders still run
    this.live.clear();
    if (this.path) {
      try {
        unlinkSync(this.path);
      } catch {
        // gone already
      }
    }
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A second descriptor for the region file (each end gets its own). */
function openExisting(region: string): number {
  return openSync(shmPath(region), "r+");
}
