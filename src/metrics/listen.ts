// Where a management address may listen: HOST:PORT (IPv6 in brackets), loopback unless the user asks
// for more (counters and the learning table show a host's traffic: not for every network by default).
import { isIP } from "node:net";

export interface ListenAddr {
  hostname: string;
  port: number;
}

/** Is this host a loopback address (127.0.0.0/8, ::1) or localhost? */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * HOST:PORT checked. `what` names the flag or variable in the sentence; `public_` is how the user
 * allows a non-loopback address (refused without it, saying which flag to add).
 */
export function parseListenAddr(raw: string, what: string, allowPublic: boolean, publicFlag: string): ListenAddr {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw);
  const host = m ? (m[1] ?? m[2]) : "";
  const port = m ? Number(m[3]) : 0;
  if (
    !m ||
    port < 1 ||
    port > 65535 ||
    (m[1] && isIP(m[1]) !== 6) ||
    (!m[1] && host !== "localhost" && isIP(host) !== 4)
  )
    throw new Error(`${what} ${JSON.stringify(raw)}: expected HOST:PORT, e.g. 127.0.0.1:9100 or [::1]:9100`);
  if (!isLoopback(host) && !allowPublic)
    throw new Error(
      `${what} ${raw} is not a loopback address: the metrics and the web view show this host's traffic; add ${publicFlag} to serve them there`,
    );
  return { hostname: host, port };
}
