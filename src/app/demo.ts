// bun run demo: the main job on the embedded default — pktgen rx and tx in two processes over a
// fresh shm pipe, no root and no kernel module needed. Prints both reports.
const n = process.argv[2] ?? "50000000";
if (!/^[0-9]+$/.test(n)) {
  process.stderr.write(`demo: packet count '${n}' is not a number\n`);
  process.exit(1);
}
const pipe = `demo${process.pid}`;
const main = `${import.meta.dir}/pktgen/main.ts`;
const run = (args: string[]) => Bun.spawn([process.execPath, main, ...args], { stdout: "pipe", stderr: "inherit" });

const rx = run(["-i", `shm:${pipe}{0`, "-f", "rx", "-n", n]);
// start the sender once the receiver has its end open (its banner is printed then)
const reader = rx.stdout.getReader();
let banner = "";
while (!banner.includes("Receiving from")) {
  const { value, done } = await reader.read();
  if (done) process.exit((await rx.exited) || 1);
  banner += new TextDecoder().decode(value);
}
const tx = run(["-i", `shm:${pipe}}0`, "-f", "tx", "-n", n]);
const txOut = await new Response(tx.stdout).text();
let rxOut = banner;
for (;;) {
  const { value, done } = await reader.read();
  if (done) break;
  rxOut += new TextDecoder().decode(value);
}
const codes = [await tx.exited, await rx.exited];
process.stdout.write(`--- sender\n${txOut}--- receiver\n${rxOut}`);
process.exit(codes.some((c) => c !== 0) ? 1 : 0);
