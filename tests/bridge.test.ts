// bun run bridge between two shm pipes: every packet across, in sequence, both with buffer swaps
// (same region) and copies (-c); bad arguments are one error line.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync } from "node:fs";
import { parseBridgeArgs } from "../src/app/bridge/main.ts";
import { pktgen, started, summary } from "./helpers/pktgen.ts";

setDefaultTimeout(60_000);

const BRIDGE = `${import.meta.dir}/../src/app/bridge/main.ts`;
let n = 0;

describe("bridge", () => {
  for (const copy of [false, true]) {
    test(
      copy
        ? "copy mode (-c): txseq -> bridge -> rxseq, nothing lost"
        : "zero copy: txseq -> bridge -> rxseq, nothing lost",
      async () => {
        const r = `br${process.pid}x${n++}`;
        const br = Bun.spawn(
          [process.execPath, BRIDGE, "-i", `shm:${r}{0`, "-i", `shm:${r}{1`, "-w", "0", ...(copy ? ["-c"] : [])],
          { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" },
        );
        const reader = (br.stdout as ReadableStream<Uint8Array>).getReader();
        let out = "";
        while (!out.includes("zerocopy")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(out);
          out += new TextDecoder().decode(value);
        }
        expect(out).toContain(copy ? "------- zerocopy NOT supported" : "------- zerocopy supported");
        const rx = pktgen(["-i", `shm:${r}}1`, "-f", "rxseq", "-n", "300000"]);
        await started(rx);
        const tx = await pktgen(["-i", `shm:${r}}0`, "-f", "txseq", "-n", "300000", "-l", "1000", "-l", "60"]).done;
        const got = await rx.done;
        br.kill("SIGTERM");
        await br.exited;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          out += new TextDecoder().decode(value);
        }
        expect(summary(tx.out, "Sent").pkts).toBe(300000);
        expect(summary(got.out, "Received").pkts).toBe(300000);
        expect(summary(got.out, "Received").bytes).toBe(summary(tx.out, "Sent").bytes);
        expect(got.out).toContain("Sequence errors: 0 gaps (0 packets missing), 0 out of order");
        expect(out).toContain("forwarded 300000 packets a->b, 0 packets b->a");
        expect(readdirSync("/dev/shm").filter((f) => f.startsWith(`bunmap-${r}`))).toEqual([]);
      },
    );
  }
  test("arguments", () => {
    expect(parseBridgeArgs(["-i", "shm:a{0", "-i", "shm:a{1", "-b", "64"])).toMatchObject({
      a: "shm:a{0",
      b: "shm:a{1",
      burst: 64,
      zeroCopy: true,
    });
    expect(parseBridgeArgs(["shm:a{0", "shm:a{1", "-c"])).toMatchObject({ zeroCopy: false }); // bridge's positional form
    expect(() => parseBridgeArgs(["-i", "shm:a{0"])).toThrow(/two ports/);
    expect(() => parseBridgeArgs(["-i", "x", "-i", "x"])).toThrow(/must differ/);
    expect(() => parseBridgeArgs(["-i", "a", "-i", "b", "-b", "0"])).toThrow(/-b 0: expected a number 1\.\.8192/);
  });
});
