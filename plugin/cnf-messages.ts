// Messages between the plugin's main thread and the ports broker (cnf-broker.ts), typed once.
import type { NetReply, NetRequest } from "../src/index.ts";

export interface BrokerInit {
  t: "init";
  /** Where the ports socket listens. */
  path: string;
  /** Rung by the main thread after each command: the broker sleeps in epoll_wait. */
  doorbell: number;
}

/** Main thread -> broker. `conn` is a connection's id (the broker's count, never reused), not its fd. */
export type BrokerCommand =
  /** Answer a connection; `fds` go with the answer and are closed here once sent; without `keep` the connection closes. */
  | { t: "answer"; conn: number; reply: NetReply; fds: number[]; keep: boolean }
  /** Close a granted connection (its port went: the container left the network). */
  | { t: "drop"; conn: number }
  /** Tell when this process exits (a port restored after a restart has no connection). */
  | { t: "watch"; key: string; pid: number }
  | { t: "unwatch"; key: string }
  | { t: "stop" };

/** Who asks, as the kernel says it: the peer's pid (ours to see), its start time and its network namespace. */
export interface Caller {
  pid: number;
  /** /proc/PID/stat's starttime: with the pid, names the process across a restart. */
  start: string;
  /** "dev:ino" of its network namespace. */
  netns: string;
}

/** Broker -> main thread. */
export type BrokerReport =
  | { t: "ready" }
  | { t: "fatal"; error: string }
  | { t: "ask"; conn: number; caller: Caller; req: NetRequest }
  | { t: "closed"; conn: number }
  | { t: "exited"; key: string };
