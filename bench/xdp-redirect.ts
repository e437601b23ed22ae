// Run inside a namespace: attach an XDP program that redirects every frame from IF to TARGET, hold it
// until stdin closes. `bun bench/xdp-redirect.ts IF TARGET`
import { attachXdp, redirectInsns } from "../ffi/bpf.ts";
import { ifIndex } from "../ffi/libc.ts";

const [ifname, target] = process.argv.slice(2);
const t = ifIndex(target);
if (!t) throw new Error(`no such interface '${target}'`);
const detach = attachXdp(ifname, redirectInsns(t));
const quit = () => {
  detach();
  process.exit(0);
};
process.on("SIGTERM", quit);
process.on("SIGINT", quit);
process.stdout.write(`redirecting ${ifname} -> ${target}\n`);
for await (const _ of console) {
  /* wait for EOF */
}
quit();
