// In the netmap guest (/dev/netmap present): the Docker driver's kernel-VALE datapath with its gateway
// port, through the driver's own code path (no Docker): a network is created (its gateway veth's
// switch end attached to the VALE switch), an endpoint joins and its container end goes into a
// namespace acting as the container; it pings its gateway (the host) and the host pings it; then
// everything is removed and no interface of ours or VALE port is left. iptables is not in the
// guest: the firewall is a recorder here (tests/docker-gateway.test.ts covers it with Docker).

import { writeFileSync } from "node:fs";
import { Driver } from "../../plugin/driver.ts";
import type { Firewall, Published, RoutedNet } from "../../plugin/firewall.ts";
import { gatewayNames } from "../../plugin/gateway.ts";
import { State } from "../../plugin/state.ts";
import { listOurs } from "../../plugin/veth.ts";
import { check, sh } from "./check.ts";

writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
const applied: [RoutedNet[], Published[]][] = [];
const fw = {
  apply: (n: RoutedNet[], p: Published[]) => {
    applied.push([n, p]);
  },
} as unknown as Firewall;
const d = new Driver(new State(":memory:"), { defaultBackend: "vale", firewall: fw });
const NET = `a1b2c3d4e5f6${"0".repeat(52)}`,
  EP = `0f1e2d3c4b5a${"1".repeat(52)}`;
const gw = gatewayNames(NET);
check(
  JSON.stringify(
    await d.createNetwork({
      NetworkID: NET,
      Options: {},
      IPv4Data: [{ Pool: "198.18.70.0/24", Gateway: "198.18.70.1/24" }],
    }),
  ) === "{}",
  "CreateNetwork on backend vale",
);
check(
  sh("ip", "-o", "addr", "show", "dev", gw.host).stdout.includes("inet 198.18.70.1/24"),
  `gateway address on ${gw.host}`,
);
const ports = () => sh(`${process.env.NETMAP_APPS}/vale-ctl/vale-ctl`).stdout;
check(ports().includes(`:${gw.sw}`), `${gw.sw} attached to the VALE switch (netmap's vale-ctl lists it)`);
check(applied.at(-1)?.[0][0]?.subnet === "198.18.70.0/24", "the firewall was asked to route the subnet");

// two containers: endpoints made and joined through the driver, then what Docker does with each end
const EP2 = `0f1e2d3c4b5b${"2".repeat(52)}`;
for (const [id, ns, addr] of [
  [EP, "ctr", "198.18.70.10"],
  [EP2, "ctr2", "198.18.70.11"],
]) {
  const ep = await d.createEndpoint({
    NetworkID: NET,
    EndpointID: id,
    Interface: { Address: `${addr}/24`, AddressIPv6: "", MacAddress: "" },
  });
  const j = (await d.join({ NetworkID: NET, EndpointID: id, SandboxKey: "/x" })) as {
    InterfaceName: { SrcName: string };
    Gateway: string;
  };
  check(j.Gateway === "198.18.70.1", `Join answers Gateway 198.18.70.1 (MAC ${JSON.stringify(ep)})`);
  const c = j.InterfaceName.SrcName;
  for (const s of [
    ["ip", "netns", "add", ns],
    ["ip", "link", "set", c, "netns", ns],
    ["ip", "-n", ns, "addr", "add", `${addr}/24`, "dev", c],
    ["ip", "-n", ns, "link", "set", c, "up"],
    ["ip", "-n", ns, "link", "set", "lo", "up"],
    ["ip", "-n", ns, "route", "add", "default", "via", "198.18.70.1"],
  ]) {
    const r = sh(...s);
    check(r.status === 0, `${s.join(" ")} ${r.stderr.trim()}`);
  }
}
const p0 = sh("ip", "netns", "exec", "ctr", "ping", "-c", "3", "-W", "3", "198.18.70.11");
check(
  /3 received/.test(p0.stdout),
  `container -> container through VALE: ${p0.stdout.split("\n").find((l) => l.includes("received"))}`,
);
const p1 = sh("ip", "netns", "exec", "ctr", "ping", "-c", "3", "-W", "3", "198.18.70.1");
check(
  /3 received/.test(p1.stdout),
  `container -> gateway through VALE: ${p1.stdout.split("\n").find((l) => l.includes("received"))}`,
);
const p2 = sh("ping", "-c", "3", "-W", "3", "198.18.70.10");
check(
  /3 received/.test(p2.stdout),
  `host -> container through VALE: ${p2.stdout.split("\n").find((l) => l.includes("received"))}`,
);

for (const [id, ns] of [
  [EP, "ctr"],
  [EP2, "ctr2"],
]) {
  sh("ip", "netns", "del", ns);
  await d.leave({ NetworkID: NET, EndpointID: id });
  await d.deleteEndpoint({ NetworkID: NET, EndpointID: id });
}
await d.deleteNetwork({ NetworkID: NET });
check(!ports().includes(gw.sw), "gateway port detached");
check(listOurs().length === 0 && sh("ip", "link", "show", gw.host).status !== 0, "no interface of ours left");
check(applied.at(-1)?.[0].length === 0, "the firewall was told no network is routed");
await d.shutdown();
console.log("driver-gateway: all passed");
