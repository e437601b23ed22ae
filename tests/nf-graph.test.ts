// Graphs of network functions (src/nf/graph.ts, bun run nf): a packet walks NF to NF within one call
// and leaves by a port; per-NF counters; bad graphs refused with one sentence before any port opens
// (unknown names, an output leading nowhere, a cycle, a port that cannot open); the CLI end to end.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { CompiledGraph, type GraphSpec } from "../src/nf/graph.ts";
import { drop, NfRunner, type Packet } from "../src/nf/runner.ts";
import { openPort } from "../src/port/open.ts";
import { receiveFrames as receive, sendFrames as send } from "./helpers/frames-io.ts";

setDefaultTimeout(60_000);
const repo = `${import.meta.dir}/..`;
const tag = `gr${process.pid}`;

const mark = (p: Packet) => p.u8[p.off + 20];
/** fw: odd marks dropped ("odd"); tag: writes 0xee at byte 21, then on to the port out. */
const spec = (ports: Record<string, string>): GraphSpec => ({
  ports,
  nfs: {
    fw: { nf: (p) => (mark(p) & 1 ? drop(0) : 0), to: ["tag"], reasons: ["odd"] },
    tag: {
      nf: (p) => {
        p.u8[p.off + 21] = 0xee;
        return 0;
      },
      to: ["out"],
    },
  },
  from: { in: "fw", out: "in" }, // what comes back on out goes straight to in, no NF
});
const frame = (m: number, b21 = 0) => Uint8Array.from({ length: 60 }, (_, k) => (k === 20 ? m : k === 21 ? b21 : 0));

describe("a graph in one thread", () => {
  test("in -> fw -> tag -> out, out -> in straight; counted per NF and per reason", () => {
    const s = spec({ in: `shm:${tag}a{0@conf:pipes=2`, out: `shm:${tag}a{1` });
    const g = new CompiledGraph(s);
    const run = new NfRunner(s.ports, g.process, { reasons: g.reasons });
    const hin = openPort(`shm:${tag}a}0`),
      hout = openPort(`shm:${tag}a}1`);
    try {
      send(
        hin,
        [1, 2, 3, 4].map((m) => frame(m)),
      );
      send(hout, [frame(9)]);
      run.round();
      expect(receive(hout)).toEqual([frame(2, 0xee), frame(4, 0xee)]); // through both NFs
      expect(receive(hin)).toEqual([frame(9)]); // odd, but no NF on that way
      const c = run.counters();
      expect(g.counters(c.drops)).toEqual([
        { name: "fw", packets: 4, forwarded: 2, drops: { odd: 2 } },
        { name: "tag", packets: 2, forwarded: 2, drops: { dropped: 0 } },
      ]);
    } finally {
      run.close();
      hin.close();
      hout.close();
    }
  });

  test("bad graphs: one sentence naming the fix, before any port opens", () => {
    const ports = { in: `shm:${tag}b{0`, out: `shm:${tag}c{0` };
    const nf = () => 0;
    const bad: [GraphSpec, string][] = [
      [{ ...spec(ports), from: { in: "fx" } }, "from.in: no port or NF named 'fx' (ports in, out; NFs fw, tag)"],
      [{ ...spec(ports), from: { eth9: "fw" } }, "from.eth9: no port named 'eth9' (ports in, out)"],
      [
        { ports, nfs: { a: { nf, to: ["b"] }, b: { nf, to: ["out", "a"] } }, from: { in: "a" } },
        "a -> b -> a: a cycle; a packet must reach a port (lead one of these outputs to a port)",
      ],
      [
        { ports, nfs: { a: { nf, to: ["out", ""] } }, from: { in: "a" } },
        "nfs.a.to[1] leads nowhere: name a port or an NF",
      ],
      [{ ports, nfs: { a: { nf, to: [] } }, from: { in: "a" } }, "nfs.a.to: expected the names its outputs lead to"],
      [{ ports, nfs: { in: { nf, to: ["out"] } }, from: {} }, "'in' names both a port and an NF"],
      [
        { ports, nfs: { a: { nf: 5 as unknown as () => number, to: ["out"] } }, from: {} },
        "nfs.a.nf: expected a function",
      ],
    ];
    bad.push(
      [{ ports: { in: 5 as unknown as string }, nfs: {}, from: {} }, "ports.in: expected a port name"],
      [
        { ports, nfs: {}, from: "in" as unknown as Record<string, string> },
        "from: expected { port: 'nf or port', ... }",
      ],
    );
    for (const [s, msg] of bad) expect(() => new CompiledGraph(s)).toThrow(msg);
    expect(readdirSync("/dev/shm").filter((f) => f.startsWith(`bunmap-${tag}`))).toEqual([]); // nothing opened
  });
});

describe("bun run nf", () => {
  const nfCli = (args: string[]) =>
    Bun.spawn([process.execPath, `${repo}/src/app/nf/main.ts`, ...args], {
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
      killSignal: "SIGKILL",
    });

  test("a graph module runs; its counters per port and NF on SIGINT", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-nfg-`);
    try {
      writeFileSync(
        `${dir}/graph.ts`,
        `import { drop } from "${repo}/src/index.ts";
export default {
  ports: { in: "shm:${tag}g{0@conf:pipes=2", out: "shm:${tag}g{1" },
  nfs: { fw: { nf: (p) => (p.u8[p.off + 20] & 1 ? drop(0) : 0), to: ["out"], reasons: ["odd"] } },
  from: { in: "fw" },
};
`,
      );
      const proc = nfCli([`${dir}/graph.ts`]);
      const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
      let out = "";
      while (!out.includes("running")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`nf exited: ${out}${await new Response(proc.stderr).text()}`);
        out += new TextDecoder().decode(value);
      }
      const hin = openPort(`shm:${tag}g}0`),
        hout = openPort(`shm:${tag}g}1`);
      try {
        send(
          hin,
          [1, 2, 3].map((m) => frame(m)),
        );
        let got: Uint8Array[] = [];
        for (let t = 0; t < 100 && !got.length; t++) {
          await Bun.sleep(20);
          got = receive(hout);
        }
        expect(got).toEqual([frame(2)]);
      } finally {
        hin.close();
        hout.close();
      }
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      expect(out.split("\n").slice(1)).toEqual([
        "in: received 3 packets 180 bytes, sent 0 packets 0 bytes",
        "out: received 0 packets 0 bytes, sent 1 packets 60 bytes",
        "nf fw: 3 packets, 1 passed on, 2 dropped (odd)",
        "",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a graph across two processes, joined by an shm pipe: fw in one, tag in the other", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-nfg-`);
    const procs: ReturnType<typeof nfCli>[] = [];
    try {
      const mod = (body: string) => `import { drop } from "${repo}/src/index.ts";\nexport default ${body};\n`;
      writeFileSync(
        `${dir}/one.ts`,
        mod(`{ ports: { in: "shm:${tag}p{0", link: "shm:${tag}l{0" },
  nfs: { fw: { nf: (p) => (p.u8[p.off + 20] & 1 ? drop(0) : 0), to: ["link"], reasons: ["odd"] } },
  from: { in: "fw" } }`),
      );
      writeFileSync(
        `${dir}/two.ts`,
        mod(`{ ports: { link: "shm:${tag}l}0", out: "shm:${tag}q{0" },
  nfs: { tag: { nf: (p) => { p.u8[p.off + 21] = 0xee; return 0; }, to: ["out"] } },
  from: { link: "tag" } }`),
      );
      for (const f of ["one.ts", "two.ts"]) {
        const p = nfCli([`${dir}/${f}`]);
        procs.push(p);
        const r = (p.stdout as ReadableStream<Uint8Array>).getReader();
        let out = "";
        while (!out.includes("running")) {
          const { value, done } = await r.read();
          if (done) throw new Error(`nf ${f} exited: ${out}${await new Response(p.stderr).text()}`);
          out += new TextDecoder().decode(value);
        }
        r.releaseLock();
      }
      const hin = openPort(`shm:${tag}p}0`),
        hout = openPort(`shm:${tag}q}0`);
      try {
        send(
          hin,
          [1, 2, 3, 4].map((m) => frame(m)),
        );
        const got: Uint8Array[] = [];
        for (let t = 0; t < 100 && got.length < 2; t++) {
          await Bun.sleep(20);
          got.push(...receive(hout));
        }
        expect(got).toEqual([frame(2, 0xee), frame(4, 0xee)]); // through fw in one process, tag in the other
      } finally {
        hin.close();
        hout.close();
      }
      for (const p of procs.reverse()) {
        p.kill("SIGINT");
        expect(await p.exited).toBe(0);
      }
    } finally {
      for (const p of procs) p.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a bad module, a bad graph, a port that cannot open: one line, exit 1", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-nfg-`);
    try {
      writeFileSync(`${dir}/syntax.ts`, "export default {");
      writeFileSync(
        `${dir}/cycle.ts`,
        `export default { ports: { a: "shm:${tag}x{0" }, nfs: { f: { nf: () => 0, to: ["f"] } }, from: { a: "f" } };`,
      );
      writeFileSync(`${dir}/port.ts`, `export default { ports: { a: "nosuch:x" }, nfs: {}, from: {} };`);
      for (const [file, msg] of [
        ["syntax.ts", /^nf: .*syntax\.ts: .*\(fix the module, or check its path\)$/],
        ["missing.ts", /^nf: .*missing\.ts: .*\(fix the module, or check its path\)$/],
        ["cycle.ts", /^nf: .*cycle\.ts: f -> f: a cycle; a packet must reach a port/],
        ["port.ts", /^nf: .*port\.ts: bad port name 'nosuch:x'/],
      ] as [string, RegExp][]) {
        const p = nfCli([`${dir}/${file}`]);
        const err = (await new Response(p.stderr).text()).trim();
        expect({ file, code: await p.exited, lines: err.split("\n").length }).toEqual({ file, code: 1, lines: 1 });
        expect(err).toMatch(msg);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
