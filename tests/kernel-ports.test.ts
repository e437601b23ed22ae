// packet: (AF_PACKET mmap rings) and xdp: (AF_XDP via libxdp) on a veth pair between two network
// namespaces the test creates: frames compared byte for byte through the port API, pktgen end to end
// with sequence checks on both backends and across them, clean errors, namespaces removed after.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { libxdp } from "../ffi/xsk.ts";
import { openPort } from "../src/port/open.ts";
import { counter, destroyPair, inNs, makePair, nsExists, type Pair, privilegedUnavailable } from "./helpers/netns.ts";
import { PKTGEN, summary } from "./helpers/pktgen.ts";

const why = privilegedUnavailable();
const noXdp = (() => {
  try {
    libxdp();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
})();
if (why) console.warn(`SKIP kernel port tests: ${why}`);
if (!why && noXdp) console.warn(`SKIP xdp tests: ${noXdp}`);
const PORTIO = `${import.meta.dir}/helpers/port-io.ts`;
const RXTIME = `${import.meta.dir}/helpers/rx-time.ts`;
setDefaultTimeout(60_000);

let pair: Pair;
beforeAll(() => {
  if (!why) pair = makePair(`k${process.pid % 100000}`);
});
afterAll(() => {
  if (!pair) return;
  destroyPair(pair);
  expect(nsExists(pair.a) || nsExists(pair.b)).toBe(false);
});

async function waitLine(p: ReturnType<typeof inNs>, re: RegExp, sink: string[]): Promise<void> {
  const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      sink.push(dec.decode(value));
    }
  })();
  const deadline = Date.now() + 20000;
  while (!re.test(sink.join(""))) {
    if (p.exitCode !== null || Date.now() > deadline)
      throw new Error(`no ${re} from child: ${sink.join("")}${await new Response(p.stderr as ReadableStream).text()}`);
    await Bun.sleep(10);
  }
  (p as unknown as { pump: Promise<void> }).pump = pump;
}
const finish = async (p: ReturnType<typeof inNs>, sink: string[]) => {
  await p.exited;
  await (p as unknown as { pump: Promise<void> }).pump;
  return { code: p.exitCode, out: sink.join(""), err: await new Response(p.stderr as ReadableStream).text() };
};

/** recv on B, send on A, through the port API; every frame back intact. */
async function transfer(txSpec: string, rxSpec: string, n: number) {
  const outR: string[] = [],
    outT: string[] = [];
  const r = inNs(pair.b, [PORTIO, "recv", rxSpec, String(n)]);
  await waitLine(r, /ready/, outR);
  const t = inNs(pair.a, [PORTIO, "send", txSpec, String(n)]);
  await waitLine(t, /ready/, outT);
  const [rt, rr] = [await finish(t, outT), await finish(r, outR)];
  expect(rt.code).toBe(0);
  expect(rr.code).toBe(0);
  const lines = rr.out
    .replace("ready\n", "")
    .trim()
    .split("\n")
    .map((l) => l.split(" ").map(Number));
  expect(lines.length).toBe(n);
  lines.forEach(([i, len, bad], k) => {
    expect(i).toBe(k); // in order
    expect(len).toBe(60 + ((i * 97) % 1455)); // sizes up to 1514
    expect(bad).toBe(0); // every byte as sent
  });
}

/** Packets the veth pair itself dropped so far (a full backlog on the receiving side). */
const vethDrops = () =>
  counter(pair.a, pair.ifA, "tx_dropped") +
  counter(pair.a, pair.ifA, "rx_dropped") +
  counter(pair.b, pair.ifB, "tx_dropped") +
  counter(pair.b, pair.ifB, "rx_dropped");
const kernelDrops = (out: string) => Number(/^Kernel drops: (\d+) packets/m.exec(out)?.[1] ?? NaN);

/**
 * txseq on A -> rxseq on B. The receiver stops after n packets or 1 s after traffic stops (-W), so
 * it always ends; a loaded machine may drop in the kernel, so every packet sent must be received or
 * covered by the kernel's drop counters (ring full, veth backlog), and nothing may arrive out of order.
 */
async function pktgenPair(txSpec: string, rxSpec: string, n: number, extra: string[] = [], rxExtra: string[] = []) {
  const outR: string[] = [];
  const v0 = vethDrops();
  const r = inNs(pair.b, [PKTGEN, "-i", rxSpec, "-f", "rxseq", "-n", String(n), "-w", "0", "-W", ...rxExtra]);
  await waitLine(r, /^Receiving from /m, outR);
  const t = inNs(pair.a, [
    PKTGEN,
    "-i",
    txSpec,
    "-f",
    "txseq",
    "-n",
    String(n),
    "-w",
    "0",
    "-R",
    "100000",
    "-D",
    pair.macB,
    "-s",
    "198.18.0.1:1000-198.18.0.1:1099",
    "-d",
    "198.18.0.2",
    ...extra,
  ]);
  const tOut: string[] = [];
  (async () => {
    for await (const c of t.stdout as ReadableStream<Uint8Array>) tOut.push(new TextDecoder().decode(c));
  })();
  await t.exited;
  const rr = await finish(r, outR);
  const s = summary(tOut.join(""), "Sent"),
    g = summary(rr.out, "Received");
  expect(s.pkts).toBe(n);
  // a frame the veth refused as busy counts as dropped and is sent again, so the counters may exceed
  // what went missing; what went missing may not exceed them
  const dropped = kernelDrops(rr.out) + vethDrops() - v0;
  expect(g.pkts).toBeLessThanOrEqual(n);
  expect(n - g.pkts).toBeLessThanOrEqual(dropped);
  const seq = /Sequence errors: (\d+) gaps \((\d+) packets missing\), (\d+) out of order/.exec(rr.out);
  expect(seq).not.toBeNull();
  expect(Number(seq![2])).toBeLessThanOrEqual(dropped); // every gap is a counted drop
  expect(Number(seq![3])).toBe(0);
  if (g.pkts === n) expect(g.bytes).toBe(s.bytes);
  else console.warn(`${txSpec} -> ${rxSpec}: ${n - g.pkts} of ${n} missing, the kernel counted ${dropped} drops`);
}

describe.skipIf(!!why)("packet: (AF_PACKET, TPACKET_V2 rx and tx, V3 rx, recvmmsg rx, sendmmsg tx)", () => {
  test("frames of 60..1514 bytes arrive intact and in order", async () => {
    await transfer(`packet:${pair.ifA}`, `packet:${pair.ifB}`, 3000);
  });
  test("pktgen txseq -> rxseq across the veth: every packet, in sequence", async () => {
    await pktgenPair(`packet:${pair.ifA}`, `packet:${pair.ifB}`, 50000, ["-l", "1000", "-l", "60"]);
  });
  test("tx=copy (sendmmsg) and vnet=1 (virtio-net headers) both ends: frames intact and in order", async () => {
    await transfer(`packet:${pair.ifA}@conf:tx=copy,vnet=1`, `packet:${pair.ifB}@conf:vnet=1`, 3000);
  });
  test("pktgen over vnet=1 ports with -H 10: txseq -> rxseq; without -H the port is refused", async () => {
    await pktgenPair(
      `packet:${pair.ifA}@conf:vnet=1,tx=copy`,
      `packet:${pair.ifB}@conf:vnet=1`,
      20000,
      ["-H", "10"],
      ["-H", "10"],
    );
    const q = inNs(pair.a, [PKTGEN, "-i", `packet:${pair.ifA}@conf:vnet=1`, "-f", "tx", "-n", "1", "-w", "0"]);
    const err = await new Response(q.stderr).text();
    expect(await q.exited).toBe(1);
    expect(err).toContain(`packet:${pair.ifA}@conf:vnet=1: frames carry a 10-byte virtio-net header: pass -H 10`);
    const r = inNs(pair.a, [
      `${import.meta.dir}/../src/app/router/main.ts`,
      "-i",
      `packet:${pair.ifA}@conf:vnet=1`,
      "--ip",
      "198.18.0.1",
      "--client",
      "198.18.0.2",
      "--server",
      "198.18.0.3",
    ]);
    const rerr = await new Response(r.stderr).text();
    expect(await r.exited).toBe(1);
    expect(rerr).toContain("the router takes plain Ethernet frames; open the port without vnet=1");
    const g = inNs(pair.a, [
      `${import.meta.dir}/../src/app/bridge/main.ts`,
      "-i",
      `packet:${pair.ifA}@conf:vnet=1`,
      "-i",
      `packet:${pair.ifA}`,
      "-w",
      "0",
    ]);
    const gerr = await new Response(g.stderr).text();
    expect(await g.exited).toBe(1);
    expect(gerr).toContain(
      `packet:${pair.ifA}@conf:vnet=1 frames carry a 10-byte virtio-net header, packet:${pair.ifA} 0: open both alike (vnet=)`,
    );
  });
  test("rx=v3 (blocks) receives the same frames", async () => {
    await transfer(`packet:${pair.ifA}@conf:tx=copy`, `packet:${pair.ifB}@conf:rx=v3`, 3000);
  });
  test("rx=copy (recvmmsg into the ring's buffers): frames intact and in order, with and without vnet=1", async () => {
    await transfer(`packet:${pair.ifA}@conf:tx=copy`, `packet:${pair.ifB}@conf:rx=copy,rcvbuf=1048576`, 3000);
    await transfer(
      `packet:${pair.ifA}@conf:tx=copy,vnet=1`,
      `packet:${pair.ifB}@conf:rx=copy,vnet=1,slots=64,rcvbuf=4194304`,
      3000,
    );
  });
  test("pktgen txseq -> rxseq into an rx=copy port: every packet or a counted drop, in sequence", async () => {
    await pktgenPair(`packet:${pair.ifA}`, `packet:${pair.ifB}@conf:rx=copy`, 50000, ["-l", "1000", "-l", "60"]);
  });
  test("rxTime: when the kernel received each frame (V2), not when the ring was read; the runner's kernelTime uses it", async () => {
    for (const mode of ["port", "runner"]) {
      const outR: string[] = [],
        outT: string[] = [];
      const r = inNs(pair.b, [RXTIME, mode, `packet:${pair.ifB}`]);
      await waitLine(r, /ready/, outR);
      const t = inNs(pair.a, [RXTIME, "send", `packet:${pair.ifA}`]);
      await waitLine(t, /ready/, outT);
      await finish(t, outT);
      const rr = await finish(r, outR);
      expect(rr.code).toBe(0);
      const ages = rr.out.replace("ready\n", "").trim().split(" ").map(Number);
      expect(ages).toHaveLength(5);
      // read at least 300 ms after the last arrived, the frames sent 50 ms apart: each older than the
      // next by about 50 ms (a batch time would give five equal ages near 0)
      expect(ages[4]).toBeGreaterThanOrEqual(290);
      for (let k = 0; k < 4; k++) {
        expect(ages[k] - ages[k + 1]).toBeGreaterThan(40);
        expect(ages[k] - ages[k + 1]).toBeLessThan(1000);
      }
    }
  });
  test("a missing interface and bad options are one clear error", () => {
    expect(() => openPort("packet:lo@conf:rcvbuf=65536")).toThrow(
      "bad port name 'packet:lo@conf:rcvbuf=65536': rcvbuf applies to rx=copy only",
    );
    expect(() => openPort("packet:nosuch0")).toThrow("packet:nosuch0: no such interface 'nosuch0'");
    expect(() => openPort("packet:lo@conf:buf_size=3000")).toThrow(/power of two/);
    expect(() => openPort("packet:lo-1")).toThrow(/one ring each way/);
    expect(() => openPort("packet:lo@conf:rx=v4")).toThrow(
      "bad port name 'packet:lo@conf:rx=v4': rx is v2, v3 or copy",
    );
    expect(() => openPort("packet:lo@conf:tx=zerocopy")).toThrow(/tx is ring or copy/);
    expect(() => openPort("packet:lo@conf:vnet=2")).toThrow(/vnet=2 out of range 0..1/);
  });
  test("without privileges the error says what is needed", async () => {
    // enter the namespace as root, then drop to nobody for bun itself
    const q = Bun.spawn(
      [
        "ip",
        "netns",
        "exec",
        pair.a,
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        PKTGEN,
        "-i",
        `packet:${pair.ifA}`,
        "-f",
        "tx",
        "-n",
        "1",
      ],
      { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" },
    );
    const err = await new Response(q.stderr).text();
    expect(await q.exited).toBe(1);
    expect(
      err
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("pktgen:")),
    ).toEqual([`pktgen: packet:${pair.ifA}: opening an AF_PACKET socket needs CAP_NET_RAW (run as root)`]);
  });
});

describe.skipIf(!!why || !!noXdp)("xdp: (AF_XDP via libxdp)", () => {
  test("frames of 60..1514 bytes arrive intact and in order", async () => {
    await transfer(`xdp:${pair.ifA}`, `xdp:${pair.ifB}`, 3000);
  });
  test("pktgen txseq -> rxseq over AF_XDP both ends", async () => {
    await pktgenPair(`xdp:${pair.ifA}`, `xdp:${pair.ifB}`, 50000);
  });
  test("mixed backends: packet tx -> xdp rx, xdp tx -> packet rx", async () => {
    await pktgenPair(`packet:${pair.ifA}`, `xdp:${pair.ifB}`, 20000);
    await pktgenPair(`xdp:${pair.ifA}`, `packet:${pair.ifB}`, 20000);
  });
  test("the XDP program goes away with the last socket", async () => {
    const p = inNs(pair.b, [
      "-e",
      `const {openPort}=await import(${JSON.stringify(`${import.meta.dir}/../src/port/open.ts`)}); const x=openPort("xdp:${pair.ifB}"); console.log(require("child_process").execSync("ip link show ${pair.ifB}").toString().includes("prog/xdp")); x.close(); console.log(require("child_process").execSync("ip link show ${pair.ifB}").toString().includes("prog/xdp"));`,
    ]);
    const out = await new Response(p.stdout).text();
    expect(out.trim().split("\n").slice(-2)).toEqual(["true", "false"]);
  });
  test("unprivileged: the error names the capabilities", async () => {
    const q = Bun.spawn(
      [
        "ip",
        "netns",
        "exec",
        pair.a,
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        PKTGEN,
        "-i",
        `xdp:${pair.ifA}`,
        "-f",
        "tx",
        "-n",
        "1",
      ],
      { timeout: 180_000, killSignal: "SIGKILL", stdout: "pipe", stderr: "pipe" },
    );
    const err = await new Response(q.stderr).text();
    expect(await q.exited).toBe(1);
    expect(
      err
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("pktgen:")),
    ).toEqual([
      expect.stringMatching(
        new RegExp(
          `^pktgen: xdp:${pair.ifA}: creating the (UMEM|AF_XDP socket on queue 0) failed: needs CAP_NET_ADMIN and CAP_BPF \\(run as root\\)$`,
        ),
      ),
    ]);
  });
  test("zero-copy where the driver has none (veth) is refused with a hint", async () => {
    const p = inNs(pair.b, [
      "-e",
      `const {openPort}=await import(${JSON.stringify(`${import.meta.dir}/../src/port/open.ts`)}); try { openPort("xdp:${pair.ifB}@conf:bind=zerocopy"); console.log("opened"); } catch (e) { console.log(e.message); }`,
    ]);
    const out = (await new Response(p.stdout).text()).trim();
    expect(out).toMatch(
      new RegExp(`^xdp:${pair.ifB}@conf:bind=zerocopy: creating the AF_XDP socket on queue 0 failed: .+`),
    );
  });
  test("bad queue / missing interface are one clear error", () => {
    expect(() => openPort("xdp:nosuch0")).toThrow("xdp:nosuch0: no such interface 'nosuch0'");
    expect(() => openPort("xdp:lo@conf:frame_size=1000")).toThrow(/frame_size=1000 out of range 2048\.\.4096/);
    expect(() => openPort("xdp:lo@conf:slots=1000")).toThrow(/power of two/);
  });
});

describe.skipIf(!!why)("ping/pong across the veth", () => {
  for (const [label, be] of [
    ["packet: (pong copies)", "packet"],
    ["xdp: (pong swaps buffers)", "xdp"],
  ] as const) {
    test.skipIf(be === "xdp" && !!noXdp)(label, async () => {
      const outP: string[] = [];
      const v0 = vethDrops();
      const pong = inNs(pair.b, [PKTGEN, "-i", `${be}:${pair.ifB}`, "-f", "pong", "-n", "500", "-w", "0", "-W"]);
      await waitLine(pong, /^Working on /m, outP);
      const ping = inNs(pair.a, [
        PKTGEN,
        "-i",
        `${be}:${pair.ifA}`,
        "-f",
        "ping",
        "-n",
        "500",
        "-w",
        "0",
        "-D",
        pair.macB,
        "-s",
        "198.18.0.1",
        "-d",
        "198.18.0.2",
      ]);
      const [err, out] = [await new Response(ping.stderr).text(), await new Response(ping.stdout).text()];
      expect(await ping.exited).toBe(0);
      const po = await finish(pong, outP);
      expect(po.code).toBe(0);
      const m = /RTT over 500 packets: min (\d+) av (\d+) max (\d+) ns \((\d+) replies, (\d+) lost\)/.exec(err);
      expect(m).not.toBeNull();
      // every request answered, or lost where the kernel counted a drop (either way)
      expect(Number(m![4]) + Number(m![5])).toBe(500);
      expect(Number(m![5])).toBeLessThanOrEqual(kernelDrops(out) + kernelDrops(po.out) + vethDrops() - v0);
      expect(Number(m![1])).toBeLessThanOrEqual(Number(m![2]));
    });
  }
});

describe.skipIf(!!why)("counters agree with the kernel", () => {
  test("the peer interface saw what pktgen says it sent", async () => {
    const before = counter(pair.b, pair.ifB, "rx_packets");
    const t = inNs(pair.a, [PKTGEN, "-i", `packet:${pair.ifA}`, "-f", "tx", "-n", "20000", "-w", "0"]);
    const out = await new Response(t.stdout).text();
    await t.exited;
    expect(summary(out, "Sent").pkts).toBe(20000);
    expect(counter(pair.b, pair.ifB, "rx_packets") - before).toBe(20000);
  });
});
