// The C structs we lay out by hand in TypeScript, checked against the real headers: a C program
// prints offsetof()/sizeof() as gcc sees them (linux/if_packet.h, xdp/xsk.h) and we compare.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import {
  BPF_FUNC,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_PROG_TYPE_SCHED_CLS,
  BPF_PROG_TYPE_SOCKET_FILTER,
  BPF_PROG_TYPE_XDP,
  BPF_TC_EGRESS,
  BPF_TC_F_REPLACE,
  BPF_TC_INGRESS,
  OP,
  SK_BUFF,
  TC_ACT_OK,
  TC_ACT_SHOT,
  TC_HOOK,
  TC_OPTS,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_SKB_MODE,
} from "../ffi/bpf.ts";
import { ETHTOOL, IFREQ, SIOCETHTOOL } from "../ffi/ethtool.ts";
import * as inet from "../ffi/inet.ts";
import { CLONE_NEWNET, IOVEC, MMSGHDR, MSG_DONTWAIT, MSG_TRUNC, MSGHDR, SO_RCVBUFFORCE } from "../ffi/libc.ts";
import {
  BLOCK,
  HDR_V1,
  PACKET,
  REQ_SIZE,
  REQ3,
  SOCKADDR_LL,
  TP_STATUS_SEND_REQUEST,
  TP_STATUS_USER,
  TP_STATUS_WRONG_FORMAT,
  TP2,
  TP3,
  TPACKET2_HDRLEN,
  TPACKET3_HDRLEN,
  VIRTIO_NET,
  VNET_HDR,
} from "../ffi/tpacket.ts";
import {
  SOCKET_CONFIG,
  UMEM_CONFIG,
  XDP_COPY,
  XDP_DESC,
  XDP_PACKET_HEADROOM,
  XDP_RING_NEED_WAKEUP,
  XDP_USE_NEED_WAKEUP,
  XDP_ZEROCOPY,
  XSK_RING,
} from "../ffi/xsk.ts";

const gcc = spawnSync("gcc", ["--version"], { timeout: 180_000 }).status === 0;
const xskHeader = existsSync("/usr/include/xdp/xsk.h");
if (!gcc) console.warn("SKIP ABI tests: gcc is not installed");
if (gcc && !xskHeader) console.warn("SKIP xsk ABI test: /usr/include/xdp/xsk.h missing (apt-get install libxdp-dev)");

/** Compile and run C that prints "name value" lines; return them as a map. */
function cValues(includes: string[], exprs: Record<string, string>): Record<string, number> {
  const dir = mkdtempSync(`${tmpdir()}/bunmap-abi-`);
  const body = Object.entries(exprs)
    .map(([k, e]) => `  printf("%s %lld\\n", "${k}", (long long)(${e}));`)
    .join("\n");
  writeFileSync(
    `${dir}/a.c`,
    `#define _GNU_SOURCE\n${includes.map((h) => `#include <${h}>`).join("\n")}\n#include <stdio.h>\n#include <stddef.h>\nint main(void) {\n${body}\n  return 0;\n}\n`,
  );
  const cc = spawnSync("gcc", ["-o", `${dir}/a`, `${dir}/a.c`], { encoding: "utf8", timeout: 180_000 });
  if (cc.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(cc.stderr);
  }
  const out = spawnSync(`${dir}/a`, [], { encoding: "utf8", timeout: 180_000 }).stdout;
  rmSync(dir, { recursive: true, force: true });
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => {
        const [k, v] = l.split(" ");
        return [k, Number(v)];
      }),
  );
}

/** Expected map from a TS layout object: key -> offsetof(struct, field) / sizeof. */
function layoutExprs(
  prefix: string,
  struct: string,
  layout: Record<string, number>,
  sizeKey: string,
): [Record<string, string>, Record<string, number>] {
  const exprs: Record<string, string> = {},
    want: Record<string, number> = {};
  for (const [f, v] of Object.entries(layout)) {
    const key = `${prefix}.${f}`;
    exprs[key] = f === sizeKey ? `sizeof(struct ${struct})` : `offsetof(struct ${struct}, ${f})`;
    want[key] = v;
  }
  return [exprs, want];
}

/** Every layout in `parts` plus the named constants, as gcc sees them, must equal our declarations. */
function expectAbi(
  includes: string[],
  parts: [Record<string, string>, Record<string, number>][],
  constants: Record<string, [string, number]>,
): void {
  const exprs = Object.assign(
    {},
    ...parts.map((p) => p[0]),
    Object.fromEntries(Object.entries(constants).map(([k, [e]]) => [k, e])),
  );
  const want = Object.assign(
    {},
    ...parts.map((p) => p[1]),
    Object.fromEntries(Object.entries(constants).map(([k, [, v]]) => [k, v])),
  );
  expect(cValues(includes, exprs)).toEqual(want);
}

describe.skipIf(!gcc)("AF_PACKET ABI (linux/if_packet.h)", () => {
  test("tpacket2/3 headers, block descriptor, requests, sockaddr_ll, constants", () => {
    expectAbi(
      ["sys/socket.h", "linux/if_packet.h", "linux/virtio_net.h"],
      [
        layoutExprs("vnet", "virtio_net_hdr", VNET_HDR, "size"),
        layoutExprs("tp2", "tpacket2_hdr", TP2, "size"),
        layoutExprs("tp3", "tpacket3_hdr", TP3, "size"),
        layoutExprs("blk", "tpacket_block_desc", BLOCK, "size"),
        layoutExprs("v1", "tpacket_hdr_v1", HDR_V1, "size"),
        layoutExprs("req3", "tpacket_req3", REQ3, "size"),
        layoutExprs("sll", "sockaddr_ll", SOCKADDR_LL, "size"),
      ],
      {
        req: ["sizeof(struct tpacket_req)", REQ_SIZE],
        hdr2: ["TPACKET2_HDRLEN", TPACKET2_HDRLEN],
        hdr3: ["TPACKET3_HDRLEN", TPACKET3_HDRLEN],
        rx_ring: ["PACKET_RX_RING", PACKET.RX_RING],
        tx_ring: ["PACKET_TX_RING", PACKET.TX_RING],
        version: ["PACKET_VERSION", PACKET.VERSION],
        bypass: ["PACKET_QDISC_BYPASS", PACKET.QDISC_BYPASS],
        ignore: ["PACKET_IGNORE_OUTGOING", PACKET.IGNORE_OUTGOING],
        send: ["TP_STATUS_SEND_REQUEST", TP_STATUS_SEND_REQUEST],
        wrong: ["TP_STATUS_WRONG_FORMAT", TP_STATUS_WRONG_FORMAT],
        user: ["TP_STATUS_USER", TP_STATUS_USER],
        ...Object.fromEntries(
          Object.entries(VIRTIO_NET).map(([k, v]) => [`virtio.${k}`, [`VIRTIO_NET_HDR_${k}`, v] as [string, number]]),
        ),
      },
    );
  });
});

describe.skipIf(!gcc || !xskHeader)("AF_XDP ABI (xdp/xsk.h, linux/if_xdp.h)", () => {
  test("xsk rings, UMEM and socket configs, xdp_desc, flags", () => {
    const ring = { ...XSK_RING } as Record<string, number>;
    delete ring.cached_cons; // same struct for prod/cons: check via prod
    expectAbi(
      ["xdp/xsk.h", "linux/bpf.h"],
      [
        layoutExprs("ring", "xsk_ring_prod", ring, "bytes"),
        layoutExprs("umem", "xsk_umem_config", UMEM_CONFIG, "bytes"),
        layoutExprs("sock", "xsk_socket_config", SOCKET_CONFIG, "bytes"),
        layoutExprs("desc", "xdp_desc", XDP_DESC, "bytes"),
      ],
      {
        cons: ["offsetof(struct xsk_ring_cons, cached_cons)", XSK_RING.cached_cons],
        copy: ["XDP_COPY", XDP_COPY],
        zc: ["XDP_ZEROCOPY", XDP_ZEROCOPY],
        wake: ["XDP_USE_NEED_WAKEUP", XDP_USE_NEED_WAKEUP],
        ringwake: ["XDP_RING_NEED_WAKEUP", XDP_RING_NEED_WAKEUP],
        headroom: ["XDP_PACKET_HEADROOM", XDP_PACKET_HEADROOM],
      },
    );
  });
});

describe.skipIf(!gcc)("libc and ethtool ABI (sys/socket.h, net/if.h, linux/ethtool.h)", () => {
  test("msghdr, mmsghdr, iovec, ifreq, SIOCETHTOOL and its commands, socket constants", () => {
    expectAbi(
      ["sys/socket.h", "sys/uio.h", "net/if.h", "linux/ethtool.h", "linux/sockios.h", "sched.h"],
      [
        layoutExprs("msg", "msghdr", MSGHDR, "size"),
        layoutExprs("mmsg", "mmsghdr", MMSGHDR, "size"),
        layoutExprs("iov", "iovec", IOVEC, "size"),
        layoutExprs("ifr", "ifreq", IFREQ, "size"),
      ],
      {
        siocethtool: ["SIOCETHTOOL", SIOCETHTOOL],
        gtx: ["ETHTOOL_GTXCSUM", ETHTOOL.GTXCSUM],
        stx: ["ETHTOOL_STXCSUM", ETHTOOL.STXCSUM],
        ev: ["sizeof(struct ethtool_value)", 8],
        dontwait: ["MSG_DONTWAIT", MSG_DONTWAIT],
        trunc: ["MSG_TRUNC", MSG_TRUNC],
        rcvbufforce: ["SO_RCVBUFFORCE", SO_RCVBUFFORCE],
        newnet: ["CLONE_NEWNET", CLONE_NEWNET],
      },
    );
  });
});

describe.skipIf(!gcc)("IPv4 socket ABI (netinet/in.h, linux/filter.h)", () => {
  test("sockaddr_in, ip_mreqn, sock_filter, sock_fprog, IP and socket options, BPF opcodes", () => {
    const bpf = Object.fromEntries(
      Object.entries(inet.BPF).map(([k, v]) => [`bpf.${k}`, [`BPF_${k}`, v] as [string, number]]),
    );
    expectAbi(
      ["sys/socket.h", "netinet/in.h", "linux/filter.h", "errno.h"],
      [
        layoutExprs("sin", "sockaddr_in", inet.SOCKADDR_IN, "size"),
        layoutExprs("mreqn", "ip_mreqn", inet.IP_MREQN, "size"),
        layoutExprs("insn", "sock_filter", inet.SOCK_FILTER, "size"),
        layoutExprs("fprog", "sock_fprog", inet.SOCK_FPROG, "size"),
      ],
      {
        af_inet: ["AF_INET", inet.AF_INET],
        dgram: ["SOCK_DGRAM", inet.SOCK_DGRAM],
        sol_ip: ["SOL_IP", inet.SOL_IP],
        tos: ["IP_TOS", inet.IP_TOS],
        ttl: ["IP_TTL", inet.IP_TTL],
        mtu_disc: ["IP_MTU_DISCOVER", inet.IP_MTU_DISCOVER],
        pmtu_dont: ["IP_PMTUDISC_DONT", inet.IP_PMTUDISC_DONT],
        mc_if: ["IP_MULTICAST_IF", inet.IP_MULTICAST_IF],
        mc_ttl: ["IP_MULTICAST_TTL", inet.IP_MULTICAST_TTL],
        mc_loop: ["IP_MULTICAST_LOOP", inet.IP_MULTICAST_LOOP],
        add_memb: ["IP_ADD_MEMBERSHIP", inet.IP_ADD_MEMBERSHIP],
        bindtodev: ["SO_BINDTODEVICE", inet.SO_BINDTODEVICE],
        attach: ["SO_ATTACH_FILTER", inet.SO_ATTACH_FILTER],
        reuseport: ["SO_REUSEPORT", inet.SO_REUSEPORT],
        inuse: ["EADDRINUSE", inet.EADDRINUSE],
        ...bpf,
      },
    );
  });
});

const libbpfHeader = existsSync("/usr/include/bpf/libbpf.h");
if (gcc && !libbpfHeader)
  console.warn("SKIP BPF ABI test: /usr/include/bpf/libbpf.h missing (apt-get install libbpf-dev)");

describe.skipIf(!gcc || !libbpfHeader)("BPF ABI of the fast path (linux/bpf.h, bpf/libbpf.h)", () => {
  test("__sk_buff, bpf_tc_hook, bpf_tc_opts, helper numbers, program and map types, opcodes", () => {
    const ops = Object.fromEntries(
      Object.entries(OP).map(([k, v]) => [`op_${k}`, [k === "PSEUDO_MAP_FD" ? "BPF_PSEUDO_MAP_FD" : `BPF_${k}`, v]]),
    ) as Record<string, [string, number]>;
    const funcs = Object.fromEntries(
      Object.entries(BPF_FUNC).map(([k, v]) => [`func_${k}`, [`BPF_FUNC_${k}`, v]]),
    ) as Record<string, [string, number]>;
    expectAbi(
      ["linux/bpf.h", "linux/pkt_cls.h", "linux/if_link.h", "bpf/libbpf.h"],
      [
        layoutExprs("skb", "__sk_buff", SK_BUFF, "size"),
        layoutExprs("hook", "bpf_tc_hook", TC_HOOK, "size"),
        layoutExprs("opts", "bpf_tc_opts", TC_OPTS, "size"),
      ],
      {
        ...ops,
        ...funcs,
        prog_sock: ["BPF_PROG_TYPE_SOCKET_FILTER", BPF_PROG_TYPE_SOCKET_FILTER],
        prog_cls: ["BPF_PROG_TYPE_SCHED_CLS", BPF_PROG_TYPE_SCHED_CLS],
        prog_xdp: ["BPF_PROG_TYPE_XDP", BPF_PROG_TYPE_XDP],
        map_hash: ["BPF_MAP_TYPE_HASH", BPF_MAP_TYPE_HASH],
        map_pcpu: ["BPF_MAP_TYPE_PERCPU_ARRAY", BPF_MAP_TYPE_PERCPU_ARRAY],
        map_array: ["BPF_MAP_TYPE_ARRAY", BPF_MAP_TYPE_ARRAY],
        tc_ok: ["TC_ACT_OK", TC_ACT_OK],
        tc_shot: ["TC_ACT_SHOT", TC_ACT_SHOT],
        tc_ingress: ["BPF_TC_INGRESS", BPF_TC_INGRESS],
        tc_egress: ["BPF_TC_EGRESS", BPF_TC_EGRESS],
        tc_replace: ["BPF_TC_F_REPLACE", BPF_TC_F_REPLACE],
        xdp_drv: ["XDP_FLAGS_DRV_MODE", XDP_FLAGS_DRV_MODE],
        xdp_skb: ["XDP_FLAGS_SKB_MODE", XDP_FLAGS_SKB_MODE],
      },
    );
  });
});
