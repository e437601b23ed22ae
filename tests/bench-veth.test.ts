// bench/veth.ts leaves nothing behind: its namespaces and its frame directory go when it ends (a
// short run: this checks the clean-up, not the numbers, which bench/RESULTS.md holds).
import { expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";

setDefaultTimeout(120_000);
const root = process.getuid?.() === 0 && spawnSync("ip", ["-V"], { timeout: 60_000 }).status === 0;
if (!root) console.warn("SKIP bench clean-up test: needs root (the bench makes network namespaces)");

const ours = () => readdirSync(tmpdir()).filter((f) => f.startsWith("bunmap-bench-"));
const netns = () => spawnSync("ip", ["netns", "list"], { encoding: "utf8", timeout: 60_000 }).stdout;

test.skipIf(!root)("a short bench/veth.ts run ends with no /tmp/bunmap-bench-* and no namespace of its own", () => {
  const before = { dirs: ours(), ns: netns() };
  const r = spawnSync(process.execPath, [`${import.meta.dir}/../bench/veth.ts`, "1", "20000"], {
    encoding: "utf8",
    timeout: 100_000,
  });
  expect(r.status).toBe(0);
  expect(r.stdout).toContain("| backend | tool | median Mpps | runs | bunmap / best C tool |");
  expect(ours()).toEqual(before.dirs);
  expect(netns()).toBe(before.ns);
});
