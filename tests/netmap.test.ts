// The netmap backend where there is no /dev/netmap: every request byte for byte, the ioctl numbers
// from Linux's _IOC formula, vale-ctl against a fake kernel, and the port itself driven through a
// fake struct nmport_d over a hand-built netmap memory region (netmap_if + rings + buffers).

import { type Pointer, ptr } from "bun:ffi";
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { LIBNETMAP_PATHS } from "../ffi/libnetmap.ts";
import {
  decodeRegister,
  encodeHeader,
  encodePolling,
  encodeRegister,
  encodeValeAttach,
  encodeValeList,
  encodeValeNewif,
  HDR,
  NETMAP_API,
  NIOCCTRL,
  NIOCRXSYNC,
  NIOCTXSYNC,
  NMEM_D,
  NMPORT_D,
  NR_FLAG,
  NR_REG,
  REG,
  REQ,
  VALE_ATTACH,
  VALE_DETACH,
} from "../ffi/netmap.ts";
import { parse, UsageError } from "../src/app/vale-ctl/main.ts";
import { NetmapPort, ringsFromNifp } from "../src/port/netmap.ts";
import { type Ctl, getAdmode, setAdmode } from "../src/port/netmap-ctl.ts";
import { openPort } from "../src/port/open.ts";
import { request, run } from "../src/port/vale-control.ts";
import { NIF, POLLIN } from "../src/ring/layout.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const le16 = (v: number) => [v & 255, v >> 8];
const le32 = (v: number) => [v & 255, (v >> 8) & 255, (v >> 16) & 255, v >>> 24];
const le64 = (v: number) => [...le32(v % 2 ** 32), ...le32(Math.floor(v / 2 ** 32))];
const name64 = (s: string) => [...Buffer.from(s), ...Array(64 - s.length).fill(0)];

if (!existsSync("/dev/netmap"))
  console.warn(
    "SKIP real netmap port I/O: /dev/netmap is missing (this kernel takes no modules); the port is tested through a fake nmport_d over a hand-built netmap region instead",
  );

describe("ioctl numbers (Linux _IOC on x86_64)", () => {
  const IOC = (dir: number, type: string, nr: number, size: number) =>
    ((dir << 30) | (size << 16) | (type.charCodeAt(0) << 8) | nr) >>> 0;
  test("NIOCCTRL = _IOWR('i', 151, struct nmreq_header), NIOCTXSYNC/RXSYNC = _IO('i', 148/149)", () => {
    expect(NIOCCTRL).toBe(IOC(3, "i", 151, 88));
    expect(NIOCCTRL).toBe(0xc0586997);
    expect([NIOCTXSYNC, NIOCRXSYNC]).toEqual([IOC(0, "i", 148, 0), IOC(0, "i", 149, 0)]);
  });
});

describe("request encoders, byte for byte", () => {
  test("nmreq_header: version, type, name, options, body", () => {
    const h = encodeHeader({ reqtype: REQ.VALE_NEWIF, name: "vi0", body: 0x7f1122334455, options: 0x10 });
    expect(h.length).toBe(88);
    expect(hex(h)).toBe(
      hex(
        Uint8Array.from([
          ...le16(14),
          ...le16(8),
          0,
          0,
          0,
          0,
          ...name64("vi0"),
          ...le64(0x10),
          ...le64(0x7f1122334455),
        ]),
      ),
    );
    expect(() => encodeHeader({ reqtype: 1, name: "x".repeat(64) })).toThrow(/longer than 63/);
  });
  test("nmreq_register (56 B): every field at its offset", () => {
    const r = encodeRegister({
      mode: NR_REG.ONE_NIC,
      ringId: 2,
      flags: NR_FLAG.RX_RINGS_ONLY | NR_FLAG.EXCLUSIVE,
      memId: 3,
      txSlots: 1024,
      rxSlots: 512,
      txRings: 4,
      rxRings: 5,
      hostTxRings: 1,
      hostRxRings: 1,
      extraBufs: 7,
    });
    expect(hex(r)).toBe(
      hex(
        Uint8Array.from([
          ...le64(0),
          ...le64(0), // nr_offset, nr_memsize (kernel fills)
          ...le32(1024),
          ...le32(512),
          ...le16(4),
          ...le16(5),
          ...le16(1),
          ...le16(1),
          ...le16(3),
          ...le16(2),
          ...le32(4),
          ...le32(7),
          0,
          0,
          0,
          0,
          ...le64(0x2800),
        ]),
      ),
    );
    const reply = Uint8Array.from(r);
    new DataView(reply.buffer).setBigUint64(REG.nr_memsize, 0x4000000n, true);
    new DataView(reply.buffer).setBigUint64(REG.nr_offset, 0x1234n, true);
    expect(decodeRegister(reply)).toMatchObject({
      offset: 0x1234,
      memsize: 0x4000000,
      txSlots: 1024,
      rxRings: 5,
      memId: 3,
      ringId: 2,
      mode: 4,
      flags: 0x2800,
    });
  });
  test("vale_attach (64 B) carries a register; newif (16 B), list (8 B), polling (16 B)", () => {
    const a = encodeValeAttach({ mode: NR_REG.NIC_SW, txSlots: 2048 });
    expect(a.length).toBe(64);
    expect(new DataView(a.buffer).getUint32(VALE_ATTACH.reg + REG.nr_mode, true)).toBe(3);
    expect(new DataView(a.buffer).getUint32(VALE_ATTACH.reg + REG.nr_tx_slots, true)).toBe(2048);
    expect(hex(encodeValeNewif({ txSlots: 1024, rxSlots: 1024, txRings: 2, rxRings: 2, memId: 1 }))).toBe(
      hex(Uint8Array.from([...le32(1024), ...le32(1024), ...le16(2), ...le16(2), ...le16(1), 0, 0])),
    );
    expect(hex(encodeValeList(3, 9))).toBe(hex(Uint8Array.from([...le16(3), 0, 0, ...le32(9)])));
    expect(hex(encodePolling(2, 1, 4))).toBe(hex(Uint8Array.from([...le32(2), ...le32(1), ...le32(4), 0, 0, 0, 0])));
  });
});

/** A fake /dev/netmap: records requests, answers from a table. */
class FakeCtl implements Ctl {
  sent: { reqtype: number; name: string; body: string }[] = [];
  constructor(
    private answer: (reqtype: number, name: string, body: Uint8Array) => { errno?: number; name?: string } = () => ({}),
  ) {}
  request(reqtype: number, name: string, body: Uint8Array) {
    this.sent.push({ reqtype, name, body: hex(body) });
    const a = this.answer(reqtype, name, body);
    return { errno: a.errno ?? 0, name: a.name ?? name, body };
  }
}

describe("vale-ctl", () => {
  test("each operation is the request vale-ctl sends", () => {
    const cases: [string[], number, string, (b: DataView) => void][] = [
      [
        ["-n", "vi0", "-C", "1024,1024,2,2"],
        REQ.VALE_NEWIF,
        "vi0",
        (b) => expect([b.getUint32(0, true), b.getUint16(8, true)]).toEqual([1024, 2]),
      ],
      [["-r", "vi0"], REQ.VALE_DELIF, "vi0", (b) => expect(b.byteLength).toBe(0)],
      [
        ["-a", "vale0:eth0"],
        REQ.VALE_ATTACH,
        "vale0:eth0",
        (b) => expect(b.getUint32(REG.nr_mode, true)).toBe(NR_REG.ALL_NIC),
      ],
      [
        ["-h", "vale0:eth0"],
        REQ.VALE_ATTACH,
        "vale0:eth0",
        (b) => expect(b.getUint32(REG.nr_mode, true)).toBe(NR_REG.NIC_SW),
      ],
      [["-d", "vale0:eth0"], REQ.VALE_DETACH, "vale0:eth0", (b) => expect(b.byteLength).toBe(8)],
      [["-l", "vale1:p"], REQ.VALE_LIST, "vale1:p", (b) => expect(b.byteLength).toBe(8)],
      [["-g", "vale1:p"], REQ.PORT_INFO_GET, "vale1:p", (b) => expect(b.byteLength).toBe(32)],
      [
        ["-p", "vale0:eth0", "-C", "2,1,3"],
        REQ.VALE_POLLING_ENABLE,
        "vale0:eth0",
        (b) => expect([b.getUint32(0, true), b.getUint32(4, true), b.getUint32(8, true)]).toEqual([2, 1, 3]),
      ],
      [["-P", "vale0:eth0"], REQ.VALE_POLLING_DISABLE, "vale0:eth0", () => {}],
    ];
    for (const [argv, type, name, check] of cases) {
      const { op } = parse(argv);
      if (op === "help" || op.op === "admode" || op.op === "listAll") throw new Error(argv.join(" "));
      const q = request(op);
      expect([q.reqtype, q.name]).toEqual([type, name]);
      check(new DataView(q.body.buffer));
      const ctl = new FakeCtl();
      run(ctl, op);
      expect(ctl.sent).toEqual([{ reqtype: type, name, body: hex(q.body) }]);
    }
  });
  test("listing all ports walks (bridge, port) until ENOENT, as vale-ctl", () => {
    // the kernel's VALE_LIST with an empty name: the first port at or after (bridge_idx, port_idx)
    const table = [
      ["vale0:a", 0, 0],
      ["vale0:b", 0, 1],
      ["vale2:eth1", 2, 0],
      ["vale2:x", 2, 5],
    ] as const;
    const ctl = new FakeCtl((_t, name, body) => {
      expect(name).toBe(""); // vale-ctl clears the name every time
      const dv = new DataView(body.buffer, body.byteOffset);
      const b = dv.getUint16(0, true),
        p = dv.getUint32(4, true);
      const e = table.find(([, tb, tp]) => tb > b || (tb === b && tp >= p));
      if (!e) return { errno: 2 };
      dv.setUint16(0, e[1], true);
      dv.setUint32(4, e[2], true);
      return { name: e[0] };
    });
    expect(run(ctl, { op: "listAll" })).toEqual([
      "vale0:a bridge_idx 0 port_idx 0",
      "vale0:b bridge_idx 0 port_idx 1",
      "vale2:eth1 bridge_idx 2 port_idx 0",
      "vale2:x bridge_idx 2 port_idx 5",
    ]);
    expect(ctl.sent.length).toBe(5); // four ports, then ENOENT
  });
  test("any netmap port name for -g, -p, -P, -a, -d (the kernel decides, as netmap's vale-ctl)", () => {
    for (const argv of [
      ["-g", "k0"],
      ["-g", "eth0"],
      ["-p", "vale0:k0"],
      ["-P", "k0"],
      ["-a", "vale0:eth0"],
      ["-d", "vale0:eth0"],
    ]) {
      const { op } = parse(argv);
      expect((op as { name: string }).name).toBe(argv[1]);
    }
  });
  test("output is netmap's vale-ctl's, line for line (-g, -l, -v on attach, detach and newif)", () => {
    const answer = (reqtype: number, _n: string, body: Uint8Array) => {
      const dv = new DataView(body.buffer, body.byteOffset);
      if (reqtype === REQ.PORT_INFO_GET) {
        dv.setBigUint64(0, 4202496n, true);
        dv.setUint32(8, 1024, true);
        dv.setUint32(12, 1024, true);
        dv.setUint16(16, 2, true);
        dv.setUint16(18, 1, true);
        dv.setUint16(24, 3, true);
      }
      if (reqtype === REQ.VALE_LIST) {
        dv.setUint16(0, 1, true);
        dv.setUint32(4, 7, true);
      }
      if (reqtype === REQ.VALE_ATTACH) dv.setUint32(VALE_ATTACH.port_index, 4, true);
      if (reqtype === REQ.VALE_DETACH) dv.setUint32(VALE_DETACH.port_index, 4, true);
      if (reqtype === REQ.VALE_NEWIF) {
        dv.setUint16(8, 1, true);
        dv.setUint16(10, 1, true);
        dv.setUint16(12, 2, true);
      }
      return {};
    };
    const out = (argv: string[]) => {
      const { op, verbose } = parse(argv);
      return run(new FakeCtl(answer), op as never, verbose);
    };
    expect(out(["-g", "k0"])).toEqual([
      "memsize:    4202496",
      "tx_slots:   1024",
      "rx_slots:   1024",
      "tx_rings:   2",
      "rx_rings    1",
      "mem_id:     3",
    ]);
    expect(out(["-l", "vale0:k0"])).toEqual(["bridge_idx: 1", "port_idx:   7"]);
    expect(out(["-a", "vale0:k0"])).toEqual([]);
    expect(out(["-a", "vale0:k0", "-v"])).toEqual(["port_index: 4"]);
    expect(out(["-v", "-d", "vale0:k0"])).toEqual(["port_index: 4"]);
    expect(out(["-n", "k0", "-C", "512", "-v"])).toEqual([
      "tx_slots:   512",
      "rx_slots:   512",
      "tx_rings:   1",
      "rx_ring:    1",
      "mem_id:     2",
    ]);
    expect(out(["-r", "k0"])).toEqual([]);
    // netmap's verbs in its errors
    for (const [argv, msg] of [
      [["-r", "k0"], "failed to remove k0: No such device"],
      [["-g", "k0"], "failed to obtain info for k0: No such device"],
      [["-n", "k0"], "failed to create k0: No such device"],
      [["-l", "vale0:x"], "failed to list vale0:x: No such device"],
    ] as [string[], string][]) {
      const { op } = parse(argv);
      expect(() => run(new FakeCtl(() => ({ errno: 19 })), op as never)).toThrow(msg);
    }
  });
  test("kernel errors read like vale-ctl's; bad flags are usage errors", () => {
    const ctl = new FakeCtl(() => ({ errno: 16 }));
    const { op } = parse(["-a", "vale0:eth0"]);
    expect(() => run(ctl, op as never)).toThrow("failed to attach vale0:eth0: Device or resource busy");
    for (const [argv, re] of [
      [["-l", "eth0"], /^invalid vale port name: 'eth0'$/],
      [["-n", "bad name!"], /port name of 1 to 63 printable/],
      [["-g", "x".repeat(64)], /1 to 63/],
      [["-q"], /unknown option -q/],
      [["-n", "a", "-r", "b"], /one operation/],
      [["-C", "1,2,3,4,5", "-n", "x"], /up to four/],
      [["-A", "fast"], /best, native or generic/],
    ] as [string[], RegExp][]) {
      expect(() => parse(argv)).toThrow(UsageError);
      expect(() => parse(argv)).toThrow(re);
    }
  });
  test("without /dev/netmap the real control path says so", async () => {
    if (existsSync("/dev/netmap")) return;
    const p = Bun.spawn([process.execPath, `${import.meta.dir}/../src/app/vale-ctl/main.ts`, "-n", "vi0"], {
      timeout: 180_000,
      killSignal: "SIGKILL",
      stderr: "pipe",
    });
    expect(await p.exited).toBe(1);
    expect((await new Response(p.stderr).text()).trim()).toBe(
      "vale-ctl: /dev/netmap is missing: load the netmap kernel module first",
    );
  });
});

describe("admode (emulated adapter for veths)", () => {
  test("reads and writes the module parameter; missing module is a clear error", () => {
    const root = mkdtempSync(`${tmpdir()}/bunmap-sys-`);
    expect(() => setAdmode("generic", root)).toThrow(/netmap module not loaded/);
    mkdirSync(`${root}/module/netmap/parameters`, { recursive: true });
    writeFileSync(`${root}/module/netmap/parameters/admode`, "0\n");
    setAdmode("generic", root);
    expect(readFileSync(`${root}/module/netmap/parameters/admode`, "utf8")).toBe("2");
    expect(getAdmode(root)).toBe(2);
    rmSync(root, { recursive: true, force: true });
  });
});

/**
 * A netmap region as the kernel maps it: netmap_if at nifpOff with ring_ofs[] relative to it
 * (2 NIC tx + 1 host tx, 2 NIC rx + 1 host rx), ring headers, slots, and one buffer pool.
 */
function fakeNetmapRegion() {
  const slots = 8,
    bufSize = 2048,
    nrings = 6;
  const nifpOff = 4096,
    ringsOff = 8192,
    ringStride = 512,
    bufsOff = 16384;
  const mem = new Uint8Array(bufsOff + (nrings * slots + 2) * bufSize);
  const dv = new DataView(mem.buffer);
  mem.set(Buffer.from("vale0:vi0"), nifpOff + NIF.ni_name);
  dv.setUint32(nifpOff + NIF.ni_tx_rings, 2, true);
  dv.setUint32(nifpOff + NIF.ni_rx_rings, 2, true);
  dv.setUint32(nifpOff + NIF.ni_host_tx_rings, 1, true);
  dv.setUint32(nifpOff + NIF.ni_host_rx_rings, 1, true);
  for (let i = 0; i < nrings; i++) {
    const r = ringsOff + i * ringStride;
    dv.setBigInt64(nifpOff + NIF.ring_ofs + 8 * i, BigInt(r - nifpOff), true);
    dv.setBigInt64(r, BigInt(bufsOff - r), true);
    dv.setUint32(r + 8, slots, true);
    dv.setUint32(r + 12, bufSize, true);
    dv.setUint16(r + 16, i % 3, true);
    dv.setUint16(r + 18, i < 3 ? 0 : 1, true);
    dv.setUint32(r + 28, i < 3 ? slots - 1 : 0, true);
    for (let s = 0; s < slots; s++) dv.setUint32(r + 256 + 16 * s, 2 + i * slots + s, true);
  }
  return { mem, nifpOff, ringsOff, ringStride, bufsOff, bufSize, slots };
}

describe("NetmapPort over a fake nmport_d", () => {
  test("rings come from netmap_if's ring_ofs[], host rings skipped for rx numbering", () => {
    const f = fakeNetmapRegion();
    const { tx, rx } = ringsFromNifp(f.mem.buffer, f.nifpOff, { firstTx: 0, lastTx: 1, firstRx: 0, lastRx: 2 });
    expect(tx.map((r) => r.offset)).toEqual([f.ringsOff, f.ringsOff + f.ringStride]);
    // rx ring i is ring_ofs[i + ni_tx_rings + ni_host_tx_rings]: 3, 4, 5 (the last is the host ring)
    expect(rx.map((r) => r.offset)).toEqual([3, 4, 5].map((i) => f.ringsOff + i * f.ringStride));
    expect(rx.map((r) => r.dir)).toEqual([1, 1, 1]);
  });

  test("open from a descriptor: whole region viewed once, sync = one ioctl each, NETMAP_BUF addresses right", () => {
    const f = fakeNetmapRegion();
    const memAddr = ptr(f.mem) as number;
    // struct nmem_d and struct nmport_d as libnetmap leaves them after nmport_open
    const nmem = new Uint8Array(24);
    new DataView(nmem.buffer).setUint16(NMEM_D.mem_id, 7, true);
    new DataView(nmem.buffer).setBigUint64(NMEM_D.mem, BigInt(memAddr), true);
    new DataView(nmem.buffer).setBigUint64(NMEM_D.size, BigInt(f.mem.length), true);
    const d = new Uint8Array(NMPORT_D.size);
    const dv = new DataView(d.buffer);
    dv.setUint16(NMPORT_D.hdr + HDR.nr_version, NETMAP_API, true);
    dv.setBigUint64(NMPORT_D.reg + REG.nr_memsize, BigInt(f.mem.length), true);
    dv.setBigUint64(NMPORT_D.reg + REG.nr_offset, BigInt(f.nifpOff), true);
    dv.setBigUint64(NMPORT_D.mem, BigInt(ptr(nmem) as number), true);
    dv.setInt32(NMPORT_D.fd, 42, true);
    dv.setBigUint64(NMPORT_D.nifp, BigInt(memAddr + f.nifpOff), true);
    dv.setUint16(NMPORT_D.first_tx_ring, 0, true);
    dv.setUint16(NMPORT_D.last_tx_ring, 1, true);
    dv.setUint16(NMPORT_D.first_rx_ring, 0, true);
    dv.setUint16(NMPORT_D.last_rx_ring, 1, true);
    const calls: [number, number][] = [];
    let closed = 0;
    const injected: [number, number][] = [];
    const port = new NetmapPort("vale0:vi0", ptr(d) as Pointer, {
      ioctl: (fd, req) => {
        calls.push([fd, req]);
        return 0;
      },
      nmport_close: () => {
        closed++;
      },
      nmport_inject: (dd, _buf, n) => {
        injected.push([dd as number, n]);
        return n;
      },
    });
    expect([port.txRings.length, port.rxRings.length, port.deviceRings, port.bufSize, port.memId, port.fd]).toEqual([
      2,
      2,
      2,
      2048,
      "netmap:mem7",
      42,
    ]);
    expect(port.mem.byteLength).toBe(f.mem.length);
    // write a packet through the shared ring code; it must land at ring + buf_ofs + idx * nr_buf_size
    const t = port.txRings[1];
    const off = t.buf(t.head);
    expect(off).toBe(f.bufsOff + (2 + 1 * f.slots + 0) * f.bufSize);
    t.u8.set([1, 2, 3, 4], off);
    t.setLenFlags(t.head, 60, 0);
    t.advance(t.next(t.head));
    expect([...f.mem.subarray(off, off + 4)]).toEqual([1, 2, 3, 4]); // same memory, no copy
    expect(f.mem[f.ringsOff + f.ringStride + 20]).toBe(1); // head as the kernel reads it
    port.txsync();
    port.rxsync();
    expect(calls).toEqual([
      [42, NIOCTXSYNC],
      [42, NIOCRXSYNC],
    ]);
    expect(port.poll(POLLIN, 0)).toBe(0); // fd 42 is not a netmap fd here: nothing ready, no throw
    expect(port.inject(new Uint8Array(60))).toBe(true);
    expect(injected).toEqual([[ptr(d) as number, 60]]);
    port.close();
    port.close();
    expect(closed).toBe(1);
  });

  test("a missing libnetmap.so names the gcc line that builds it", async () => {
    if (LIBNETMAP_PATHS.some((p) => p.startsWith("/") && existsSync(p))) return;
    const p = Bun.spawn(
      [
        process.execPath,
        "-e",
        `try { (await import(${JSON.stringify(`${import.meta.dir}/../ffi/libnetmap.ts`)})).libnetmap(); } catch (e) { console.log(e.message); }`,
      ],
      {
        timeout: 180_000,
        killSignal: "SIGKILL",
        stdout: "pipe",
        env: { ...process.env, BUNMAP_LIBNETMAP: "/nonexistent/libnetmap.so" },
      },
    );
    const msg = (await new Response(p.stdout).text()).trim();
    expect(msg).toStartWith("libnetmap.so not found (tried /nonexistent/libnetmap.so");
    expect(msg).toContain("gcc -shared -fPIC -O2 -I sys -I libnetmap libnetmap/*.c -o libnetmap.so -lpthread");
    expect(msg).toEndWith("set BUNMAP_LIBNETMAP to it");
  });
  test("opening a netmap port without /dev/netmap is one sentence with the fix", () => {
    if (existsSync("/dev/netmap")) return;
    expect(() => openPort("netmap:eth0")).toThrow(
      "netmap:eth0: /dev/netmap is missing: load the netmap kernel module (insmod netmap.ko, built from netmap's LINUX/ tree) on a kernel that accepts modules",
    );
    expect(() => openPort("vale0:vi0{1")).toThrow(/\/dev\/netmap is missing/);
  });
});
