// net:NETWORK — a zero-copy port into a network of the datapath process (the plugin), opened from
// inside a container that mounts its socket directory. NETWORK is one of the caller's interfaces on
// that network (net:eth0) or the network's ID (or a unique prefix). net:NETWORK{N / }N is instead
// pipe N between two containers of the network. The handshake (net-proto.ts) gives a shm region;
// from then on the port is a shm pipe end over it, and the connection stays open for its life.
import { existsSync, readFileSync } from "node:fs";
import { ENOENT } from "../../ffi/libc.ts";
import { closeFd, connectSeqpacket, recvWithFds, sendWithFds } from "../../ffi/unix.ts";
import { type ConfTable, type PortName, readConf } from "./name.ts";
import {
  decode,
  encode,
  NET_MSG_MAX,
  NET_PROTO_VERSION,
  NET_SLOTS,
  NetReply,
  type NetRequest,
  netSockPath,
  whyNot,
} from "./net-proto.ts";
import { PortError } from "./port.ts";
import { ShmPort } from "./shm.ts";

const NET_CONF = {
  slots: { int: [NET_SLOTS.def, NET_SLOTS.min, NET_SLOTS.max] },
  station: { text: /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, def: "", what: "a MAC address (02:00:00:00:00:01)" },
} as const satisfies ConfTable;

const ECONNREFUSED = 111;

/** The caller's interface of that name, if there is one: its MAC names the network to the server. */
function interfaceMac(name: string): string | undefined {
  const f = `/sys/class/net/${name}/address`;
  return existsSync(f) ? readFileSync(f, "utf8").trim().toLowerCase() : undefined;
}

export function openNetPort(pn: PortName): ShmPort {
  if (pn.flags) throw new PortError(`bad port name '${pn.spec}': net: ports take no /${pn.flags} flags`);
  if (pn.memId !== undefined)
    throw new PortError(`bad port name '${pn.spec}': net: ports take no @${pn.memId} memory id`);
  const conf = readConf(pn, NET_CONF);
  const req: NetRequest = { v: NET_PROTO_VERSION, network: pn.ifname };
  const mac = interfaceMac(pn.ifname);
  if (mac) req.mac = mac;
  if (pn.pipe) req.pipe = { id: pn.pipe.id, role: pn.pipe.role };
  if (pn.options.conf?.slots !== undefined) req.slots = conf.slots;
  if (conf.station) {
    if (pn.pipe) throw new PortError(`bad port name '${pn.spec}': a pipe has no switch to learn a station`);
    req.station = conf.station.toLowerCase();
  }
  const path = netSockPath();
  let conn: number;
  try {
    conn = connectSeqpacket(path, 10_000);
  } catch (e) {
    const no = (e as { errno?: number }).errno;
    if (no === ENOENT)
      throw new PortError(
        `${pn.spec}: no datapath socket at ${path}: run the container with -v /run/bunmap:/run/bunmap (and the plugin on the host)`,
      );
    if (no === ECONNREFUSED)
      throw new PortError(`${pn.spec}: nothing listens at ${path}: start the plugin (bun run plugin)`);
    throw new PortError(`${pn.spec}: cannot reach ${path}: ${(e as Error).message}`);
  }
  const fds: number[] = [];
  try {
    sendWithFds(conn, encode(req));
    const buf = new Uint8Array(NET_MSG_MAX);
    const got = recvWithFds(conn, buf);
    fds.push(...got.fds);
    if (got.len <= 0)
      throw new PortError(`${pn.spec}: the datapath at ${path} closed the connection without an answer`);
    const reply = decode(buf.subarray(0, got.len));
    const why = whyNot(NetReply, reply);
    if (why)
      throw new PortError(
        `${pn.spec}: the datapath answered something else than a port (${why}): a different version?`,
      );
    const r = reply as NetReply;
    if (!r.ok) throw new PortError(`${pn.spec}: ${r.error}`);
    const want = r.wake === "eventfd" ? 2 : 1;
    if (fds.length !== want)
      throw new PortError(`${pn.spec}: the datapath passed ${fds.length} descriptors, not ${want}`);
    const [regionFd, bell] = fds;
    const end: PortName = { ...pn, backend: "shm", pipe: { role: r.role, id: 0 }, options: {} };
    fds.length = 0; // the region's descriptor is the port's now (closed with it, or by a failed open)
    try {
      return new ShmPort(end, {
        regionFd,
        kind: "net",
        peerBellFd: bell,
        onClose: () => {
          closeFd(conn);
          if (bell !== undefined) closeFd(bell);
        },
      });
    } catch (e) {
      if (bell !== undefined) closeFd(bell);
      throw e;
    }
  } catch (e) {
    for (const f of fds) closeFd(f);
    closeFd(conn);
    throw e instanceof PortError ? e : new PortError(`${pn.spec}: ${(e as Error).message}`);
  }
}
