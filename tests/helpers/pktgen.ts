// Run bun run pktgen as a child process and pick its report apart.
export const PKTGEN = `${import.meta.dir}/../../src/app/pktgen/main.ts`;

export interface Run {
  proc: ReturnType<typeof Bun.spawn>;
  /** stdout so far (grows while the child runs). */
  out: () => string;
  done: Promise<{ code: number; out: string; err: string }>;
}

async function drain(stream: ReadableStream<Uint8Array>, into: string[]): Promise<string> {
  const dec = new TextDecoder();
  for await (const chunk of stream) into.push(dec.decode(chunk, { stream: true }));
  return into.join("");
}

/** Start pktgen with `args` (in network namespace `netns` if given: ip netns exec). */
export function pktgen(args: string[], env: Record<string, string> = {}, netns?: string): Run {
  const inNs = netns ? ["ip", "netns", "exec", netns] : [];
  const proc = Bun.spawn([...inNs, process.execPath, PKTGEN, ...args], {
    timeout: 180_000,
    killSignal: "SIGKILL",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const outParts: string[] = [],
    errParts: string[] = [];
  const done = (async () => {
    const [out, err, code] = await Promise.all([
      drain(proc.stdout as ReadableStream<Uint8Array>, outParts),
      drain(proc.stderr as ReadableStream<Uint8Array>, errParts),
      proc.exited,
    ]);
    return { code, out, err };
  })();
  return { proc, out: () => outParts.join(""), done };
}

/** Wait until the child printed its banner (its thread has the port open), or exited. */
export async function started(r: Run, needle = /^(Receiving from|Working on|Sending on) /m): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!needle.test(r.out())) {
    if (r.proc.exitCode !== null) return;
    if (Date.now() > deadline) throw new Error(`child did not start; stdout so far:\n${r.out()}`);
    await Bun.sleep(10);
  }
}

export interface Summary {
  pkts: number;
  bytes: number;
  events: number;
  size: number;
  secs: number;
  pps: number;
}

/** Parse tx_output's two lines. */
export function summary(out: string, verb: "Sent" | "Received"): Summary {
  const m = new RegExp(
    `^${verb} (\\d+) packets (\\d+) bytes (\\d+) events (\\d+) bytes each in ([\\d.]+) seconds\\.$`,
    "m",
  ).exec(out);
  if (!m) throw new Error(`no '${verb}' line in:\n${out}`);
  const s =
    /^Speed: ([\d.]+) ([KMGT]?)pps Bandwidth: ([\d.]+) ([KMGT]?)bps \(raw ([\d.]+) ([KMGT]?)bps\)\. Average batch: ([\d.]+) pkts$/m.exec(
      out,
    );
  if (!s) throw new Error(`no 'Speed:' line in:\n${out}`);
  const unit: Record<string, number> = { "": 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return { pkts: +m[1], bytes: +m[2], events: +m[3], size: +m[4], secs: +m[5], pps: +s[1] * unit[s[2]] };
}
