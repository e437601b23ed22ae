// The port-name grammar (src/port/name.ts): libnetmap's syntax where it applies, each backend's
// @conf keys, and the sentence a bad name gets.
import { describe, expect, test } from "bun:test";
import { NR_REG } from "../src/port/name.ts";
import { PortError, parsePortName } from "../src/port/open.ts";

describe("port names (libnetmap syntax)", () => {
  test("modes, pipes, flags, memory ids and options", () => {
    const p = parsePortName;
    expect(p("netmap:eth0")).toMatchObject({ backend: "netmap", ifname: "eth0", mode: NR_REG.ALL_NIC });
    expect(p("netmap:eth0-1")).toMatchObject({ mode: NR_REG.ONE_NIC, ringId: 1 });
    expect(p("netmap:eth0^")).toMatchObject({ mode: NR_REG.SW });
    expect(p("netmap:eth0^2")).toMatchObject({ mode: NR_REG.ONE_SW, ringId: 2 });
    expect(p("netmap:eth0*")).toMatchObject({ mode: NR_REG.NIC_SW });
    expect(p("netmap:eth0/R")).toMatchObject({ flags: "R" });
    expect(p("valeA:p@2")).toMatchObject({ backend: "vale", ifname: "valeA:p", memId: 2 });
    expect(p("vale0:vi0{1")).toMatchObject({ ifname: "vale0:vi0", pipe: { role: "master", id: 1 } });
    expect(p("shm:ch}3-1")).toMatchObject({
      ifname: "ch",
      pipe: { role: "slave", id: 3 },
      mode: NR_REG.ONE_NIC,
      ringId: 1,
    });
    expect(p("netmap:eth0@conf:rings=4,tx-slots=1024").options).toEqual({ conf: { rings: "4", tx_slots: "1024" } });
    expect(p("vale0:x@share=netmap:vi0").options).toEqual({ share: { "": "netmap:vi0" } });
    expect(p("xdp:veth0@2")).toMatchObject({ backend: "xdp", ifname: "veth0", queue: 2 });
    expect(p("pcap:/tmp/a b.pcap")).toMatchObject({ backend: "pcap", ifname: "/tmp/a b.pcap" });
  });
  test("bad names give one sentence naming the problem", () => {
    const bad: [string, RegExp][] = [
      ["eth0", /expected subsystem:name/],
      ["foo:bar", /unknown subsystem 'foo'/],
      ["shm:x", /pipe ends/],
      ["shm:x{0^", /host rings/],
      ["xdp:v{1", /no pipes/],
      ["netmap:", /cannot parse/],
      ["shm:a$b{0", /cannot parse/],
      ["netmap:eth0@conf:rings", /key=value/],
      ["pcap:", /missing file/],
    ];
    for (const [name, re] of bad) {
      expect(() => parsePortName(name)).toThrow(PortError);
      expect(() => parsePortName(name)).toThrow(re);
    }
  });
});
