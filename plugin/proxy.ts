// Published ports for what NAT cannot reach: connections to 127.0.0.0/8 (the kernel does not route
// loopback traffic through DNAT) and a container reaching its own published port through the host.
// As Docker's docker-proxy: a listener on HOST_IP:HOST_PORT (0.0.0.0 by default) relays to the
// container. It also holds the host port, so a port some other program uses is refused at once with
// the kernel's error, and nothing else can take it while it is published. TCP through node:net
// streams (backpressure handled by pipe, half-close passed on), UDP with one upstream socket per
// client, closed when idle.
import dgram from "node:dgram";
import net from "node:net";

export interface ProxySpec {
  proto: "tcp" | "udp";
  /** "" = 0.0.0.0 */
  hostIp: string;
  hostPort: number;
  ip: string;
  port: number;
}

const key = (p: ProxySpec) => `${p.proto}:${p.hostIp || "0.0.0.0"}:${p.hostPort}>${p.ip}:${p.port}`;
const UDP_IDLE_MS = 60_000;

interface Running {
  close(): void;
}

function tcpProxy(p: ProxySpec): Promise<Running> {
  const conns = new Set<net.Socket>();
  // half-open both ways, as docker-proxy: a client that shuts down its write side still gets the
  // answer (its FIN is passed on, the server's reply comes back), and so does a server that does
  const srv = net.createServer({ allowHalfOpen: true }, (c) => {
    const u = net.connect({ port: p.port, host: p.ip, allowHalfOpen: true });
    conns.add(c).add(u);
    const kill = () => {
      c.destroy();
      u.destroy();
    };
    c.on("error", kill).on("close", () => conns.delete(c));
    u.on("error", kill).on("close", () => conns.delete(u));
    // pipe ends the other side's write when this side's read ends: a FIN crosses as a FIN; each
    // socket closes once both of its directions have ended
    c.pipe(u);
    u.pipe(c);
  });
  return new Promise((resolve, reject) => {
    srv.once("error", reject);
    srv.listen({ host: p.hostIp || "0.0.0.0", port: p.hostPort, exclusive: true }, () => {
      srv.off("error", reject);
      resolve({
        close: () => {
          srv.close();
          for (const s of conns) s.destroy();
        },
      });
    });
  });
}

function udpProxy(p: ProxySpec): Promise<Running> {
  const front = dgram.createSocket({ type: "udp4", reuseAddr: false });
  const clients = new Map<string, { sock: dgram.Socket; timer: ReturnType<typeof setTimeout> | undefined }>();
  front.on("message", (msg, from) => {
    const id = `${from.address}:${from.port}`;
    let c = clients.get(id);
    if (c) clearTimeout(c.timer);
    else {
      const sock = dgram.createSocket("udp4");
      sock.on("message", (reply) => front.send(reply, from.port, from.address));
      sock.on("error", () => {
        sock.close();
        clients.delete(id);
      });
      c = { sock, timer: undefined };
      clients.set(id, c);
    }
    const cur = c;
    cur.timer = setTimeout(() => {
      cur.sock.close();
      clients.delete(id);
    }, UDP_IDLE_MS);
    cur.sock.send(msg, p.port, p.ip);
  });
  return new Promise((resolve, reject) => {
    front.once("error", reject);
    front.bind(p.hostPort, p.hostIp || "0.0.0.0", () => {
      front.off("error", reject);
      resolve({
        close: () => {
          front.close();
          for (const c of clients.values()) {
            clearTimeout(c.timer);
            c.sock.close();
          }
          clients.clear();
        },
      });
    });
  });
}

/** The proxies that run, kept equal to the wanted set. */
export class Proxies {
  private readonly running = new Map<string, Running>();

  /** Start what is wanted and not running, stop what runs and is not wanted. A port that cannot be
   * bound rejects with the kernel's reason (what else was started stays, the caller decides). */
  async sync(want: ProxySpec[]): Promise<void> {
    const keys = new Set(want.map(key));
    for (const [k, r] of this.running)
      if (!keys.has(k)) {
        r.close();
        this.running.delete(k);
      }
    for (const p of want) {
      const k = key(p);
      if (this.running.has(k)) continue;
      try {
        this.running.set(k, await (p.proto === "tcp" ? tcpProxy(p) : udpProxy(p)));
      } catch (e) {
        throw new Error(`cannot publish ${p.hostIp || "0.0.0.0"}:${p.hostPort}/${p.proto}: ${(e as Error).message}`);
      }
    }
  }

  close(): void {
    for (const r of this.running.values()) r.close();
    this.running.clear();
  }
}
