// Every TypeScript example of the public API (```ts run) runs, as written, against src/index.ts, with
// its quoted output checked (expect=). Every shell example in README.md, docker/README.md and
// plugin/README.md runs here, as written, or
// says in its fence why it cannot (```sh skip="..."): the documents stay true. A block runs as a bash
// script in the repository with node_modules/.bin on PATH; its fence says how:
//   netns                  in a network namespace of the test's own (root), with
//   veths="a,b"            veth pairs a/a-p, b/b-p made there first, both ends up
//   serve=N                each line is a long-running program: it must still run after N s, then stop
//                          cleanly (exit 0) on SIGINT
//   docker                 needs a Docker engine and a free plugin socket (the Docker tests' rules)
//   plugin                 with the vale plugin running for it (its state in a directory of the test's)
//   lines=K                only its first K lines (the rest is named in the text as run elsewhere)
//   expect="re1;;re2"      its output must match each regular expression (where the text quotes output)
//   cleanup="cmd"          run afterwards, whatever happened
//   creates="PATH"         a host path the example makes (a bind mount's source): removed after, if new
// Background jobs (`&`) are waited for (10 s at most), then stopped with SIGINT.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dockerUnavailable } from "./helpers/plugin-proc.ts";

setDefaultTimeout(300_000);

const repo = `${import.meta.dir}/..`;
const DOCS = ["README.md", "docker/README.md", "plugin/README.md"];

interface Block {
  file: string;
  line: number;
  attrs: Record<string, string>;
  code: string;
}

/** The fenced blocks of a Markdown file whose info string starts with `lang`, with their attributes. */
export function codeBlocks(file: string, text: string, lang: "sh" | "ts"): Block[] {
  const out: Block[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = new RegExp(`^(\\s*)\`\`\`${lang}\\b(.*)$`).exec(lines[i]);
    if (!open) continue;
    const attrs: Record<string, string> = {};
    for (const m of open[2].matchAll(/([a-z]+)(?:=(?:"([^"]*)"|(\S+)))?/g)) attrs[m[1]] = m[2] ?? m[3] ?? "";
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]); j++) body.push(lines[j].slice(open[1].length));
    out.push({ file, line: i + 1, attrs, code: body.join("\n") });
    i = j;
  }
  return out;
}

const sh = (cmd: string, opts: { timeout?: number } = {}) =>
  spawnSync("bash", ["-c", cmd], { encoding: "utf8", timeout: opts.timeout ?? 120_000, cwd: repo });
const root = process.getuid?.() === 0;
const env = (extra: Record<string, string>) => ({
  ...process.env,
  PATH: `${repo}/node_modules/.bin:${process.env.PATH}`,
  ...extra,
});

/** Why a block cannot run on this machine now, or null. */
function cannot(b: Block): string | null {
  if ("skip" in b.attrs) return b.attrs.skip || "(no reason given)";
  if (("netns" in b.attrs || "serve" in b.attrs) && !root) return "needs root (network namespaces)";
  if ("docker" in b.attrs || "plugin" in b.attrs) return dockerUnavailable();
  return null;
}

const made: string[] = [];
afterAll(() => {
  for (const ns of made) spawnSync("ip", ["netns", "del", ns], { timeout: 60_000 });
});

/** A fresh namespace with the block's veth pairs; returns the command prefix that runs inside it. */
function namespace(b: Block, k: number): string[] {
  if (!("netns" in b.attrs)) return [];
  const ns = `bmdoc${process.pid}x${k}`;
  made.push(ns);
  const must = (c: string) => expect({ c, ...sh(c) }.status === 0 ? c : `${c}: ${sh(c).stderr}`).toBe(c);
  must(`ip netns add ${ns} && ip -n ${ns} link set lo up`);
  for (const v of (b.attrs.veths ?? "").split(",").filter(Boolean))
    must(
      `ip -n ${ns} link add ${v} type veth peer name ${v}-p && ip -n ${ns} link set ${v} up && ip -n ${ns} link set ${v}-p up`,
    );
  return ["ip", "netns", "exec", ns];
}

/** The vale plugin for a block that needs one: its state in a directory of the test's. */
async function startPlugin(dir: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, [`${repo}/plugin/main.ts`], {
    env: env({ BUNMAP_PLUGIN_DB: `${dir}/plugin/vale.db` }),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group (stop() signals the group)
  });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    p.stdout?.on("data", (d) => {
      out += d;
      if (out.includes("listening")) resolve();
    });
    p.on("exit", (code) => reject(new Error(`plugin exited ${code}: ${out}`)));
  });
  return p;
}

const stop = (p: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (p.exitCode !== null) return resolve(p.exitCode);
    p.on("exit", (code) => resolve(code));
    process.kill(-(p.pid as number), "SIGINT"); // its process group: bun run's child too
    setTimeout(() => {
      if (p.exitCode === null && p.signalCode === null) process.kill(-(p.pid as number), "SIGKILL");
    }, 10_000);
  });

/** Each line a long-running program: alive after `secs`, then a clean stop on SIGINT. */
async function serve(b: Block, prefix: string[], dir: string): Promise<void> {
  const cmds = b.code.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
  for (const cmd of cmds) {
    const p = spawn(
      prefix[0] ?? "bash",
      [...prefix.slice(1), ...(prefix.length ? ["bash"] : []), "-c", `exec ${cmd}`],
      {
        cwd: repo,
        env: env({ BUNMAP_PLUGIN_DB: `${dir}/serve/vale.db` }),
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      },
    );
    let err = "";
    p.stderr?.on("data", (d) => {
      err += d;
    });
    p.stdout?.on("data", () => {});
    await Bun.sleep(Number(b.attrs.serve) * 1000);
    const alive = p.exitCode === null;
    const code = await stop(p);
    expect({ cmd, alive, code, err: alive && code === 0 ? "" : err }).toEqual({ cmd, alive: true, code: 0, err: "" });
  }
}

/** The block as a script. On its way out, whatever happened: its background jobs get 10 s to end,
 * then its cleanup runs (while servers it started still serve), then the jobs left get SIGINT. */
function script(b: Block): string {
  const lines = b.code.split("\n");
  const code = b.attrs.lines ? lines.slice(0, Number(b.attrs.lines)).join("\n") : b.code;
  const cleanup = b.attrs.cleanup ? `{ ${b.attrs.cleanup}; } >/dev/null 2>&1 || true` : ":";
  return [
    "finish() {",
    '  for _ in $(seq 1 100); do [ -z "$(jobs -rp)" ] && break; sleep 0.1; done',
    `  ${cleanup}`,
    "  kill -INT $(jobs -rp) 2>/dev/null || true",
    "  wait",
    "}",
    "trap finish EXIT",
    "set -e",
    code,
    "",
  ].join("\n");
}

const blocks = DOCS.flatMap((f) => codeBlocks(f, readFileSync(`${repo}/${f}`, "utf8"), "sh"));
const tsBlocks = DOCS.flatMap((f) => codeBlocks(f, readFileSync(`${repo}/${f}`, "utf8"), "ts"));

describe("documentation: every TypeScript example of the public API runs", () => {
  test("each ts block is marked run (an example that does not run is not one)", () => {
    expect(tsBlocks.length).toBeGreaterThan(1);
    // run here, or shown from a file that a test of its own runs (file=)
    expect(tsBlocks.filter((b) => !("run" in b.attrs) && !b.attrs.file).map((b) => `${b.file}:${b.line}`)).toEqual([]);
  });
  for (const b of tsBlocks.filter((x) => x.attrs.file)) {
    test(`${b.file}:${b.line} is ${b.attrs.file} as it is`, () => {
      expect(b.code.trim()).toBe(readFileSync(`${repo}/${b.attrs.file}`, "utf8").trim());
    });
  }
  for (const b of tsBlocks.filter((x) => "run" in x.attrs)) {
    test(`${b.file}:${b.line}`, () => {
      const dir = mkdtempSync(`${tmpdir()}/bunmap-doc-`);
      try {
        // the package's name is this repository's entry point
        const code = b.code.replaceAll('from "bunmap"', `from "${repo}/src/index.ts"`);
        writeFileSync(`${dir}/example.ts`, code);
        const r = spawnSync(process.execPath, [`${dir}/example.ts`], { encoding: "utf8", timeout: 60_000, cwd: repo });
        expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
        for (const re of (b.attrs.expect ?? "").split(";;").filter(Boolean))
          expect(r.stdout).toMatch(new RegExp(re, "m"));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("documentation: every shell example runs, or says why not", () => {
  test("the documents have shell examples, and the README's test command is what .ci/run runs", () => {
    expect(blocks.length).toBeGreaterThan(5);
    const first = blocks[0];
    expect(first.file).toBe("README.md");
    expect(first.code.split("\n")[1]).toStartWith("npm install && npm test");
    expect(readFileSync(`${repo}/.ci/run`, "utf8")).toContain("\nnpm test\n");
  });

  blocks.forEach((b, k) => {
    const why = cannot(b);
    const name = `${b.file}:${b.line}${why ? ` (not here: ${why})` : ""}`;
    if (why) console.log(`SKIP ${name}`);
    test.skipIf(!!why)(name, async () => {
      const dir = mkdtempSync(`${tmpdir()}/bunmap-doc-`);
      // a path the block makes on the host (a bind mount's source): removed after, if it was not there
      const existedBefore = !!b.attrs.creates && existsSync(b.attrs.creates);
      const prefix = namespace(b, k);
      const plugin = "plugin" in b.attrs ? await startPlugin(dir) : null;
      try {
        if ("serve" in b.attrs) {
          await serve(b, prefix, dir);
          return;
        }
        const r = spawnSync(
          prefix[0] ?? "bash",
          [...prefix.slice(1), ...(prefix.length ? ["bash"] : []), "-c", script(b)],
          {
            cwd: repo,
            encoding: "utf8",
            timeout: Number(b.attrs.timeout ?? 240) * 1000,
            env: env({ BUNMAP_PLUGIN_DB: `${dir}/block/vale.db` }),
          },
        );
        expect({ block: name, status: r.status, stderr: r.status === 0 ? "" : r.stderr }).toEqual({
          block: name,
          status: 0,
          stderr: "",
        });
        for (const re of (b.attrs.expect ?? "").split(";;").filter(Boolean))
          expect({ block: name, matches: new RegExp(re, "m").test(`${r.stdout}${r.stderr}`) }).toEqual({
            block: name,
            matches: true,
          });
      } finally {
        if ("serve" in b.attrs && b.attrs.cleanup) sh(b.attrs.cleanup);
        if (plugin) await stop(plugin);
        if (b.attrs.creates && !existedBefore) rmSync(b.attrs.creates, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
        expect(existsSync(dir)).toBe(false);
      }
    });
  });
});
