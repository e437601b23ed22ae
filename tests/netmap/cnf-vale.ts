// In the netmap guest: network functions in containers on the kernel-VALE datapath, VALE-docker's way.
// The driver makes a network and two endpoints (their host ends attached to the VALE switch); each
// container end goes into a namespace standing in for a container, and an app there opens netmap on
// it. A bunmap app in one namespace and one in the other exchange frames through VALE, checked byte
// for byte; then netmap's pkt-gen and bunmap's pktgen, one in each namespace, both ways: the same
// counts. The module's veth has no native netmap support here, so the container ends run in
// netmap's emulated mode, as the host ends do.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Driver } from "../../plugin/driver.ts";
import type { Firewall } from "../../plugin/firewall.ts";
import { State } from "../../plugin/state.ts";
import { listOurs } from "../../plugin/veth.ts";
import { check, sh } from "./check.ts";

writeFileSync("/proc/sys/net/ipv4/ip_forward", "1"); // the network has a gateway, as Docker's do (the guest's own setting)
// a quiet segment, so counts can agree: no IPv6 router solicitations or MLD from the kernel's ends
// (pkt-gen counts every frame; the guest is thrown away after the job)
for (const k of ["all", "default"]) writeFileSync(`/proc/sys/net/ipv6/conf/${k}/disable_ipv6`, "1");
const fw = { apply: () => {} } as unknown as Firewall;
const d = new Driver(new State(":memory:"), { defaultBackend: "vale", firewall: fw });
const NET = `c0ffee000001${"0".repeat(52)}`;
await d.createNetwork({
  NetworkID: NET,
  Options: {},
  IPv4Data: [{ Pool: "198.18.71.0/24", Gateway: "198.18.71.1/24" }],
});
const ends: string[] = [];
for (const [i, ns] of ["c1", "c2"].entries()) {
  const id = `0e${i}${"3".repeat(61)}`;
  await d.createEndpoint({
    NetworkID: NET,
    EndpointID: id,
    Interface: { Address: `198.18.71.${10 + i}/24`, AddressIPv6: "", MacAddress: "" },
  });
  const j = (await d.join({ NetworkID: NET, EndpointID: id, SandboxKey: "/x" })) as {
    InterfaceName: { SrcName: string };
  };
  const c = j.InterfaceName.SrcName;
  for (const s of [
    ["ip", "netns", "add", ns],
    ["ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"],
    ["ip", "link", "set", c, "netns", ns],
    ["ip", "-n", ns, "link", "set", c, "up"],
  ])
    check(sh(...s).status === 0, s.join(" "));
  ends.push(c);
}
const inNs = (ns: string, cmd: string[]) => ["ip", "netns", "exec", ns, ...cmd];
/** Start a command; resolves with its output when it exits; `ready` when a line matches. */
function start(cmd: string[], ready: RegExp) {
  const p = spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let onReady: () => void = () => {};
  const isReady = new Promise<void>((r) => (onReady = r));
  const add = (b: Buffer) => {
    out += b;
    if (ready.test(out)) onReady();
  };
  p.stdout.on("data", add);
  p.stderr.on("data", add);
  const done = new Promise<string>((r) => p.on("exit", () => r(out)));
  return { ready: Promise.race([isReady, done.then(() => undefined)]), done };
}
const bun = process.execPath;
const peer = `${import.meta.dir}/cnf-peer.ts`;
const pktgen = `${import.meta.dir}/../../src/app/pktgen/main.ts`;
const PKTGEN_C = `${process.env.NETMAP_APPS}/pkt-gen/pkt-gen`;

// 1. bunmap <-> bunmap, byte for byte
const N = 300;
const rx = start(inNs("c2", [bun, peer, "rx", `netmap:${ends[1]}`, `${N}`]), /ready on/);
await rx.ready;
const tx = sh(...inNs("c1", [bun, peer, "tx", `netmap:${ends[0]}`, `${N}`]));
check(
  tx.status === 0 && tx.stdout.includes(`sent ${N}`),
  `bunmap app in c1 sent ${N} frames of 60..1514 bytes: ${tx.stderr}`,
);
const rxOut = await rx.done;
check(rxOut.includes(`${N} of ${N} frames, 0 not as sent`), `bunmap app in c2: ${rxOut.trim().split("\n").at(-1)}`);

// 2. netmap's pkt-gen receives what bunmap's pktgen sends, and the other way
const M = 20000;
const cRx = start(
  inNs("c2", [PKTGEN_C, "-i", `netmap:${ends[1]}`, "-f", "rx", "-n", `${M}`]),
  /Wait|Ready|main_thread/,
);
await cRx.ready;
await Bun.sleep(3000);
const bTx = sh(...inNs("c1", [bun, pktgen, "-i", `netmap:${ends[0]}`, "-f", "tx", "-n", `${M}`, "-R", "4000"]));
check(bTx.stdout.includes(`Sent ${M} packets`), `bunmap pktgen in c1 sent ${M}`);
const cOut = await Promise.race([cRx.done, Bun.sleep(60_000).then(() => "timed out")]);
check(
  new RegExp(`Received ${M} packets`).test(cOut),
  `netmap's pkt-gen in c2: ${cOut.split("\n").find((l) => l.startsWith("Received")) ?? cOut.slice(-300)}`,
);

const bRx = start(inNs("c1", [bun, pktgen, "-i", `netmap:${ends[0]}`, "-f", "rx", "-n", `${M}`]), /main_thread/);
await bRx.ready;
const cTx = sh(...inNs("c2", [PKTGEN_C, "-i", `netmap:${ends[1]}`, "-f", "tx", "-n", `${M}`, "-R", "4000"]));
check(/Sent 20000 packets/.test(cTx.stdout + cTx.stderr), `netmap's pkt-gen in c2 sent ${M}`);
const bOut = await Promise.race([bRx.done, Bun.sleep(60_000).then(() => "timed out")]);
check(
  bOut.includes(`Received ${M} packets`),
  `bunmap pktgen in c1: ${bOut.split("\n").find((l) => l.startsWith("Received")) ?? bOut.slice(-300)}`,
);

for (const [i, ns] of ["c1", "c2"].entries()) {
  const id = `0e${i}${"3".repeat(61)}`;
  sh("ip", "netns", "del", ns);
  await d.leave({ NetworkID: NET, EndpointID: id });
  await d.deleteEndpoint({ NetworkID: NET, EndpointID: id });
}
await d.deleteNetwork({ NetworkID: NET });
check(listOurs().length === 0, "no interface of ours left");
await d.shutdown();
console.log("cnf-vale: all passed");
