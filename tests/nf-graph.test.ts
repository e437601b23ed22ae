// Graphs of network functions (src/nf/graph.ts, bun run nf): a packet walks NF to NF within one call
// and leaves by a port; per-NF counters; bad graphs refused with one sentence before any port opens
// (unknown names, an output leading nowhere, a cycle, a port that cannot open); the CLI end to end.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { CompiledGraph, type GraphSpec } from "../src/nf/graph.ts";
import { drop, NfRunner, type Packet } from "../src/nf/runner.ts";
import { splitGraph } from "../src/nf/split.ts";
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

describe("a graph split into parts", () => {
  const ports = { in: "shm:r{0@conf:pipes=2", out: "shm:r{1" };
  const nf = () => 0;
  const three = (split: string[][], splitPipes?: string): GraphSpec => ({
    ports,
    nfs: { fw: { nf, to: ["lb"] }, lb: { nf, to: ["sink", "out"] }, sink: { nf, to: ["out"] } },
    from: { in: "fw", out: "in" },
    split,
    splitPipes,
  });

  test("each part is a graph of its own; what crosses goes by a pipe per (part, part, target)", () => {
    const [a, b] = splitGraph(three([["fw"], ["lb", "sink"]]), "T");
    // worked out by hand: in enters fw (part 0), so in is part 0's; out is led to by lb first (part 1);
    // fw -> lb crosses 0>1 (pipe 0), out -> in crosses 1>0 (pipe 1); the region's own, 2 pipes
    expect(a.ports).toEqual({
      in: ports.in,
      "pipe 0>1 lb": "shm:nfsplit-T{0@conf:pipes=2",
      "pipe 1>0 in": "shm:nfsplit-T}1@conf:pipes=2",
    });
    expect(b.ports).toEqual({
      out: ports.out,
      "pipe 0>1 lb": "shm:nfsplit-T}0@conf:pipes=2",
      "pipe 1>0 in": "shm:nfsplit-T{1@conf:pipes=2",
    });
    expect(a.from).toEqual({ in: "fw", "pipe 1>0 in": "in" });
    expect(b.from).toEqual({ out: "pipe 1>0 in", "pipe 0>1 lb": "lb" });
    expect(Object.keys(a.nfs)).toEqual(["fw"]);
    expect(a.nfs.fw.to).toEqual(["pipe 0>1 lb"]);
    expect(b.nfs.lb.to).toEqual(["sink", "out"]);
    expect(b.nfs.sink.nf).toBe(nf); // the module's own functions
    for (const part of [a, b]) new CompiledGraph(part); // each one a valid graph
    // pipes of a region the user names: no @conf, numbered from FIRST
    const [c] = splitGraph(three([["fw"], ["lb", "sink"]], "shm:r{5"), "T");
    expect(c.ports["pipe 0>1 lb"]).toBe("shm:r{5");
    expect(c.ports["pipe 1>0 in"]).toBe("shm:r}6");
    // no split: the graph as it is
    expect(splitGraph({ ports, nfs: { fw: { nf, to: ["out"] } }, from: { in: "fw" } }, "T")).toHaveLength(1);
  });

  test("bad splits: one sentence naming the fix", () => {
    const bad: [GraphSpec, string][] = [
      [
        three([
          ["fw", "lb"],
          ["lb", "sink"],
        ]),
        "split: 'lb' is in two parts: name each NF once",
      ],
      [three([["fw"], ["lb"]]), "split: sink in no part: name every NF once"],
      [three([["fw"], ["lb", "sinc"]]), "split[1]: no NF named 'sinc' (NFs fw, lb, sink)"],
      [three([["fw"], []]), "split: expected the NFs of each part"],
      [three("fw" as unknown as string[][]), "split: expected the NFs of each part"],
      [three([["fw"], ["lb", "sink"]], "r{5"), 'splitPipes: expected "shm:REGION{FIRST"'],
    ];
    for (const [s, msg] of bad) expect(() => splitGraph(s, "T")).toThrow(msg);
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

  for (const mode of ["workers", "processes"] as const)
    test(`one config split in two parts (${mode}): frames through both; stopped mid-flow, nothing released is lost`, async () => {
      const dir = mkdtempSync(`${tmpdir()}/bunmap-nfg-`);
      const r = `${tag}s${mode[0]}`;
      try {
        writeFileSync(
          `${dir}/split.ts`,
          `import { drop } from "${repo}/src/index.ts";
export default {
  ports: { in: "shm:${r}{0@conf:pipes=2", out: "shm:${r}{1" },
  nfs: {
    fw: { nf: (p) => (p.u8[p.off + 20] & 1 ? drop(0) : 0), to: ["tag"], reasons: ["odd"] },
    // slow (100 µs a packet, 1024 in the pipe: longer than a 50 ms slice): the pipe between the parts holds a queue when the stop comes
    tag: { nf: (p) => { const t = performance.now(); while (performance.now() - t < 0.1); p.u8[p.off + 21] = 0xee; return 0; }, to: ["out"] },
  },
  from: { in: "fw", out: "in" },
  split: [["fw"], ["tag"]],
};
`,
        );
        const proc = nfCli([`${dir}/split.ts`, "--stats", "json", ...(mode === "processes" ? ["--processes"] : [])]);
        const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
        let out = "";
        while (!out.includes("running")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`nf exited: ${out}${await new Response(proc.stderr).text()}`);
          out += new TextDecoder().decode(value);
        }
        expect(out).toContain(`in 2 parts (${mode})`);
        const hin = openPort(`shm:${r}}0`),
          hout = openPort(`shm:${r}}1`);
        const got: Uint8Array[] = [];
        let sent = 0;
        try {
          send(
            hin,
            [1, 2, 3, 4].map((m) => frame(m)),
          );
          send(hout, [frame(9)]); // the way back: out -> in, part 1 to part 0 by the other pipe
          for (let t = 0; t < 100 && got.length < 2; t++) {
            await Bun.sleep(20);
            got.push(...receive(hout));
          }
          expect(got).toEqual([frame(2, 0xee), frame(4, 0xee)]);
          let back: Uint8Array[] = [];
          for (let t = 0; t < 100 && !back.length; t++) {
            await Bun.sleep(20);
            back = receive(hin);
          }
          expect(back).toEqual([frame(9)]);
          // a flow, then SIGINT while it is in flight: every even frame fw took must come out
          for (let b = 0; b < 20; b++) {
            got.push(...receive(hout));
            const room = Math.min(hin.txRings[0].space(), 200);
            send(
              hin,
              Array.from({ length: room }, (_, k) => frame((sent + k) & 0xff)),
            );
            sent += room;
            got.push(...receive(hout));
            await Bun.sleep(1);
          }
          proc.kill("SIGINT");
          let exited = false;
          proc.exited.then(() => (exited = true));
          while (!exited) {
            got.push(...receive(hout)); // a consumer that goes on reading while the graph stops
            await Bun.sleep(2);
          }
          expect(await proc.exited).toBe(0);
          got.push(...receive(hout));
        } finally {
          hin.close();
          hout.close();
        }
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          out += new TextDecoder().decode(value);
        }
        const lines = out
          .trim()
          .split("\n")
          .slice(1)
          .map((l) => JSON.parse(l));
        const port = (part: number, name: string) => lines.find((l) => l.part === part && l.port === name);
        const fw = lines.find((l) => l.nf === "fw"),
          tg = lines.find((l) => l.nf === "tag");
        expect(port(0, "in").rxPackets).toBeGreaterThan(4); // it took some of the flow before the stop
        expect(fw.packets).toBe(port(0, "in").rxPackets);
        // passed on by fw = sent into the pipe = received by part 1 = tagged = sent on out = arrived
        expect([port(0, "pipe 0>1 tag").txPackets, port(1, "pipe 0>1 tag").rxPackets, tg.packets]).toEqual([
          fw.forwarded,
          fw.forwarded,
          fw.forwarded,
        ]);
        expect(port(1, "out").txPackets).toBe(fw.forwarded);
        expect(got.length - 2).toBe(fw.forwarded - 2);
        expect(got.every((f) => f[21] === 0xee && (f[20] & 1) === 0)).toBe(true);
        expect(fw.drops.odd).toBe(fw.packets - fw.forwarded);
        expect(readdirSync("/dev/shm").filter((f) => f.startsWith("bunmap-nfsplit-"))).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

  test("a part whose NF throws mid-flow: the others stopped, every part's counters, one line, exit 1", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-nfg-`);
    const r = `${tag}c`;
    try {
      writeFileSync(
        `${dir}/crash.ts`,
        `export default { ports: { in: "shm:${r}{0@conf:pipes=2", out: "shm:${r}{1" },
  nfs: { f: { nf: () => 0, to: ["g"] }, g: { nf: (p) => { if (p.u8[p.off + 20] === 7) throw new Error("bad frame 7"); return 0; }, to: ["out"] } },
  from: { in: "f" }, split: [["f"], ["g"]] };`,
      );
      const proc = nfCli([`${dir}/crash.ts`]);
      const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
      let out = "";
      while (!out.includes("running")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`nf exited: ${out}`);
        out += new TextDecoder().decode(value);
      }
      const hin = openPort(`shm:${r}}0`),
        hout = openPort(`shm:${r}}1`);
      try {
        send(
          hin,
          [1, 2, 7, 8].map((m) => frame(m)),
        );
        expect(await proc.exited).toBe(1); // it stops by itself
        expect(receive(hout)).toEqual([frame(1), frame(2)]); // what went before the bad frame
      } finally {
        hin.close();
        hout.close();
      }
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      const err = (await new Response(proc.stderr).text()).trim();
      expect(err).toBe("nf: stopped: part 1: bad frame 7");
      expect(out).toContain("part 0: nf f: 4 packets, 4 passed on");
      expect(out).toContain("part 1: out: received 0 packets 0 bytes, sent 2 packets 120 bytes");
      expect(readdirSync("/dev/shm").filter((f) => f.startsWith("bunmap-nfsplit-"))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a split whose second part cannot open a port: one line, exit 1, the first part stopped", async () => {
    const dir = mkdtempSync(`${tmpdir()}/bunmap-nfg-`);
    try {
      writeFileSync(
        `${dir}/split.ts`,
        `export default { ports: { a: "shm:${tag}y{0", b: "nosuch:x" },
  nfs: { f: { nf: () => 0, to: ["g"] }, g: { nf: () => 0, to: ["b"] } }, from: { a: "f" }, split: [["f"], ["g"]] };`,
      );
      for (const extra of [[], ["--processes"]]) {
        const p = nfCli([`${dir}/split.ts`, ...extra]);
        const err = (await new Response(p.stderr).text()).trim();
        expect(await p.exited).toBe(1);
        expect(err).toMatch(/^nf: .*split\.ts: part 1: bad port name 'nosuch:x'/);
        expect(err.split("\n")).toHaveLength(1);
        expect(
          readdirSync("/dev/shm").filter((f) => f.startsWith(`bunmap-${tag}y`) || f.startsWith("bunmap-nfsplit-")),
        ).toEqual([]);
      }
    } finally {
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
