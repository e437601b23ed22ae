// In the netmap guest (/dev/netmap present): CNI attachments on the kernel-VALE datapath, through the
// datapath's own CNI code (plugin/cni.ts, what POST /bunmap/cni runs) with the addresses an IPAM
// plugin would give: two namespaces acting as containers join a network of their config's own, each
// container end made in its namespace and its host end a VALE port (netmap's vale-ctl lists them);
// they ping each other and the gateway; ADD again answers the same; CHECK passes; DEL leaves no
// interface of ours and no VALE port. iptables is not in the guest: the firewall is a recorder.

import { writeFileSync } from "node:fs";
import type { CniCall } from "../../cni/proto.ts";
import { cniNetworkId } from "../../plugin/cni.ts";
import { Driver } from "../../plugin/driver.ts";
import type { Firewall } from "../../plugin/firewall.ts";
import { gatewayNames } from "../../plugin/gateway.ts";
import { State } from "../../plugin/state.ts";
import { listOurs } from "../../plugin/veth.ts";
import { check, sh } from "./check.ts";

writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
const fw = { apply: () => {} } as unknown as Firewall;
const d = new Driver(new State(":memory:"), { defaultBackend: "vale", firewall: fw });
const conf = { cniVersion: "1.0.0", name: "valecni", type: "bunmap", ipam: { type: "host-local" } };
const call = (command: CniCall["command"], ns: string, ip?: string, prevResult?: unknown): CniCall => ({
  command,
  containerId: ns,
  netns: `/var/run/netns/${ns}`,
  ifName: "eth0",
  conf,
  ...(ip ? { ipam: { ips: [{ address: `${ip}/24`, gateway: "198.18.71.1" }] } } : {}),
  ...(prevResult ? { prevResult: prevResult as CniCall["prevResult"] } : {}),
});
const vale = () => sh(`${process.env.NETMAP_APPS}/vale-ctl/vale-ctl`).stdout;

const results: Record<string, unknown> = {};
for (const [ns, ip] of [
  ["cni1", "198.18.71.10"],
  ["cni2", "198.18.71.11"],
]) {
  sh("ip", "netns", "add", ns);
  const a = (await d.cni.handle(call("ADD", ns, ip))) as {
    result?: { ips: { address: string }[]; interfaces: { name: string }[] };
  };
  check(a.result?.ips[0].address === `${ip}/24`, `ADD ${ns}: ${JSON.stringify(a)}`);
  results[ns] = a.result;
  const host = a.result!.interfaces[0].name;
  check(vale().includes(`:${host}`), `${host} is a port of the VALE switch (netmap's vale-ctl lists it)`);
  check(
    sh("ip", "-n", ns, "-o", "addr", "show", "dev", "eth0").stdout.includes(`inet ${ip}/24`),
    `${ns}'s eth0 holds ${ip}`,
  );
}
check(vale().includes(`:${gatewayNames(cniNetworkId("valecni")).sw}`), "the network's gateway is a VALE port too");
for (const [from, to] of [
  ["cni1", "198.18.71.11"],
  ["cni2", "198.18.71.10"],
  ["cni1", "198.18.71.1"],
]) {
  const p = sh("ip", "netns", "exec", from, "ping", "-c", "3", "-W", "3", to);
  check(
    /3 received/.test(p.stdout),
    `${from} -> ${to} through VALE: ${p.stdout.split("\n").find((l) => l.includes("received"))}`,
  );
}
const again = await d.cni.handle(call("ADD", "cni1"));
check(JSON.stringify(again) === JSON.stringify({ result: results.cni1 }), "ADD again answers the same result");
check(
  JSON.stringify(await d.cni.handle(call("CHECK", "cni1", undefined, results.cni1))) === JSON.stringify({ result: {} }),
  "CHECK passes",
);
for (const ns of ["cni1", "cni2"]) {
  check(JSON.stringify(await d.cni.handle(call("DEL", ns))) === JSON.stringify({ result: {} }), `DEL ${ns}`);
  sh("ip", "netns", "del", ns);
}
check(!/v[hs][0-9a-f]{12}/.test(vale()), "no VALE port of ours left");
check(listOurs().length === 0, "no interface of ours left");
await d.shutdown();
console.log("cni-vale: all passed");
