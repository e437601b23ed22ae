// Benchmark plumbing shared by the veth benchmarks: a counting XDP_DROP in a namespace, read over a
// pipe, and the rate of a command measured by it (sampled every 50 ms, over the interval the count moved).
export class XdpCounter {
  private p: ReturnType<typeof Bun.spawn>;
  private r: { read(): Promise<{ value?: Uint8Array; done: boolean }> };
  private buf = "";
  constructor(ns: string, ifname: string) {
    this.p = Bun.spawn(["ip", "netns", "exec", ns, process.execPath, `${import.meta.dir}/../xdp-drop.ts`, ifname], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    this.r = (this.p.stdout as ReadableStream<Uint8Array>).getReader() as unknown as XdpCounter["r"];
  }
  private async line(): Promise<string> {
    while (!this.buf.includes("\n")) {
      const { value, done } = await this.r.read();
      if (done) throw new Error("xdp-drop counter exited");
      this.buf += new TextDecoder().decode(value);
    }
    const i = this.buf.indexOf("\n");
    const l = this.buf.slice(0, i);
    this.buf = this.buf.slice(i + 1);
    return l;
  }
  async ready(): Promise<void> {
    await this.line();
  }
  async read(): Promise<number> {
    const s = this.p.stdin as import("bun").FileSink;
    s.write("\n");
    s.flush();
    return Number(await this.line());
  }
  async close(): Promise<void> {
    (this.p.stdin as import("bun").FileSink).end();
    await this.p.exited;
  }
}

/** Run `cmd` (argv, already wrapped for its namespace) while sampling; Mpps over the moving interval. */
export async function rateOf(counter: XdpCounter, cmd: string[], stopAfterMs = 0): Promise<number> {
  const samples: [number, number][] = [];
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "ignore", stdin: "ignore" });
  const t0 = performance.now();
  let killed = false;
  while (p.exitCode === null) {
    samples.push([performance.now(), await counter.read()]);
    if (stopAfterMs && !killed && performance.now() - t0 > stopAfterMs) {
      p.kill("SIGINT");
      killed = true;
    }
    await Bun.sleep(50);
  }
  samples.push([performance.now(), await counter.read()]);
  const moving = samples.filter(([, c], i) => i > 0 && c !== samples[i - 1][1]);
  if (moving.length < 3) return NaN;
  const first = samples[samples.indexOf(moving[0]) - 1];
  const last = moving[moving.length - 1];
  return (last[1] - first[1]) / ((last[0] - first[0]) * 1000);
}
