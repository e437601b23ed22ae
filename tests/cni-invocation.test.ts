// What the CNI executable takes from a runtime, checked without root or a datapath: the CNI_*
// variables and the config (cni/invocation.ts), and how results are written per spec version.
import { describe, expect, test } from "bun:test";
import { parseArgs, parseInvocation } from "../cni/invocation.ts";
import { CniError, resultFor, versionAtLeast } from "../cni/spec.ts";

const conf = {
  cniVersion: "1.0.0",
  name: "n1",
  type: "bunmap",
  ipam: { type: "host-local" },
};
const env = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "c0ffee",
  CNI_NETNS: "/var/run/netns/x",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin:/usr/lib/cni",
};
const exists = (p: string) => p === "/var/run/netns/x";
const refusal = (e: Record<string, string | undefined>, stdin: string) => {
  try {
    parseInvocation(e, stdin, exists);
  } catch (err) {
    expect(err).toBeInstanceOf(CniError);
    return { code: (err as CniError).code, msg: (err as CniError).message };
  }
  return null;
};

describe("CNI invocation", () => {
  test("a good ADD: every variable taken, CNI_PATH split, CNI_ARGS read", () => {
    const inv = parseInvocation(
      { ...env, CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web-0;EMPTY=" },
      JSON.stringify(conf),
      exists,
    );
    expect(inv).toMatchObject({
      command: "ADD",
      containerId: "c0ffee",
      netns: "/var/run/netns/x",
      ifName: "eth0",
      path: ["/opt/cni/bin", "/usr/lib/cni"],
      args: { IgnoreUnknown: "1", K8S_POD_NAME: "web-0", EMPTY: "" },
    });
    expect(inv.conf?.name).toBe("n1");
  });

  test("DEL needs no netns (the container may be gone); VERSION needs no config", () => {
    const { CNI_NETNS: _, ...noNetns } = env;
    expect(parseInvocation({ ...noNetns, CNI_COMMAND: "DEL" }, JSON.stringify(conf), exists).netns).toBe("");
    expect(parseInvocation({ CNI_COMMAND: "VERSION" }, "", exists).conf).toBeUndefined();
    expect(parseInvocation({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"0.4.0"}', exists).conf?.cniVersion).toBe(
      "0.4.0",
    );
  });

  test("refusals carry the spec's codes", () => {
    // [variables, stdin, code] with the codes of the CNI spec's table: 1 version, 3 container, 4 environment, 6 decode, 7 config
    const cases: [Record<string, string | undefined>, string, number][] = [
      [{ ...env, CNI_COMMAND: "add" }, JSON.stringify(conf), 4], // commands are upper case
      [{ ...env, CNI_NETNS: "/nowhere" }, JSON.stringify(conf), 3],
      [{ ...env, CNI_IFNAME: "." }, JSON.stringify(conf), 4],
      [{ ...env, CNI_IFNAME: "eth 0" }, JSON.stringify(conf), 4],
      [{ ...env, CNI_CONTAINERID: "_x" }, JSON.stringify(conf), 4],
      [{ ...env, CNI_ARGS: "=1" }, JSON.stringify(conf), 4],
      [env, "{", 6],
      [env, "x".repeat((1 << 20) + 1), 6],
      [env, JSON.stringify({ ...conf, cniVersion: "0.2.0" }), 1],
      [env, JSON.stringify({ ...conf, type: "" }), 7],
      [env, JSON.stringify({ ...conf, ipam: { type: "../evil" } }), 7],
      [env, JSON.stringify({ ...conf, prevResult: [] }), 7],
      [{ ...env, CNI_COMMAND: "GC" }, JSON.stringify(conf), 1], // GC came with 1.1.0
      [{ ...env, CNI_COMMAND: "STATUS" }, JSON.stringify({ ...conf, cniVersion: "1.0.0" }), 1],
    ];
    for (const [e, stdin, code] of cases)
      expect(refusal(e, stdin)?.code, `${JSON.stringify(e)} ${stdin.slice(0, 60)}`).toBe(code);
  });

  test("CNI_ARGS: pairs split at the first =", () => {
    expect(parseArgs("A=b=c;D=")).toEqual({ A: "b=c", D: "" });
    expect(parseArgs("")).toEqual({});
  });

  test("results per version: 0.3.x names each address's family, later versions do not", () => {
    const r = { ips: [{ address: "198.18.64.2/24" }, { address: "2001:db8::2/64" }] };
    expect(resultFor("0.3.1", r).ips).toEqual([
      { address: "198.18.64.2/24", version: "4" },
      { address: "2001:db8::2/64", version: "6" },
    ]);
    expect(resultFor("1.0.0", { ips: [{ address: "198.18.64.2/24", version: "4" }] }).ips).toEqual([
      { address: "198.18.64.2/24" },
    ]);
    expect(versionAtLeast("1.0.0", "0.4.0")).toBe(true);
    expect(versionAtLeast("0.3.1", "0.4.0")).toBe(false);
    expect(versionAtLeast("0.10.0", "0.4.0")).toBe(true); // numbers, not text
  });
});
