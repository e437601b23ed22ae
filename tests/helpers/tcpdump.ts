// tcpdump as the outside witness (tests and benchmarks): a capture on an interface of a namespace,
// ready once tcpdump says it listens, nanosecond timestamps; by default every frame written as it
// comes (--immediate-mode -U: a ^C loses none), or buffered, which wakes tcpdump far less often and
// so disturbs a timing measurement less (the last frames may be lost); and a capture's frames read
// back by a number they carry.
import { readFileSync } from "node:fs";
import { parsePcap } from "../../src/packet/pcap.ts";

export interface Capture {
  /** SIGINT, and wait until the file is whole. */
  stop(): Promise<void>;
}

/** Capture `dir` ("in" | "out") frames on `dev` in namespace `ns` into `file` (filter: a pcap expression). */
export async function startCapture(
  ns: string,
  dev: string,
  dir: "in" | "out",
  file: string,
  filter = "",
  snap = 0,
  immediate = true,
): Promise<Capture> {
  const p = Bun.spawn(
    [
      "ip",
      "netns",
      "exec",
      ns,
      "tcpdump",
      "-i",
      dev,
      "-Q",
      dir,
      "-w",
      file,
      "-s",
      String(snap),
      ...(immediate ? ["--immediate-mode", "-U"] : []),
      "--time-stamp-precision",
      "nano",
      ...(filter ? [filter] : []),
    ],
    { stdout: "ignore", stderr: "pipe" },
  );
  const r = p.stderr.getReader();
  let said = "";
  while (!said.includes("listening on")) {
    const { value, done } = await r.read();
    if (done) throw new Error(`tcpdump on ${dev} in ${ns} did not start: ${said}`);
    said += new TextDecoder().decode(value);
  }
  r.releaseLock();
  return {
    async stop() {
      p.kill("SIGINT");
      await p.exited;
    },
  };
}

export interface Captured {
  /** Microseconds since the epoch (0.25 us steps at today's values: finer than it needs). */
  us: number;
  /** The frame's length on the wire (without FCS), and the bytes captured. */
  len: number;
  data: Uint8Array;
}

/** The frames of a capture that `key` gives a number for (null: not one of ours), by that number. */
export function capturedBy(file: string, key: (d: Uint8Array) => number | null): Map<number, Captured> {
  const pc = parsePcap(new Uint8Array(readFileSync(file)), file);
  const m = new Map<number, Captured>();
  for (const r of pc.records) {
    const data = pc.data.slice(r.offset, r.offset + r.caplen);
    const k = key(data);
    if (k !== null) m.set(k, { us: r.sec * 1e6 + (pc.nanos ? r.frac / 1000 : r.frac), len: r.origlen, data });
  }
  return m;
}

/** A big-endian u32 at `at`, or null when the frame is shorter (pktgen's and the generator's numbers). */
export const u32At =
  (at: number, check: (d: Uint8Array) => boolean = () => true) =>
  (d: Uint8Array): number | null =>
    d.length >= at + 4 && check(d) ? ((d[at] << 24) | (d[at + 1] << 16) | (d[at + 2] << 8) | d[at + 3]) >>> 0 : null;
