// How exactly the link emulator (bun run tlem, src/nf/tlem.ts) keeps its delay and rate, measured
// from outside it (tests/helpers/tlem-measure.ts): 2 ms of delay at 2000 packets/s (each packet's
// lateness at the receiver), and 10 Mbit/s for 1000 packets of 1000 B. No netem on this kernel to
// measure beside it: the aims are absolute (lateness p99 <= 50 us, rate within 1%).
//   bun bench/tlem.ts [RUNS=5]
import { measureDelay, measureRate } from "../tests/helpers/tlem-measure.ts";
import { say } from "./lib/progress.ts";
import { median, q } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 5);
const p50: number[] = [],
  p99: number[] = [],
  rate: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const late = measureDelay(2, 2100, 100);
  p50.push(q(late, 0.5));
  p99.push(q(late, 0.99));
  rate.push(measureRate(10e6, 1000, 1000) / 1e6);
  say(
    `run ${i + 1}/${RUNS}: lateness p50 ${p50.at(-1)?.toFixed(1)} us, p99 ${p99.at(-1)?.toFixed(1)} us, rate ${rate.at(-1)?.toFixed(3)} Mbit/s`,
  );
}
console.log(`tlem, measured from outside: ${RUNS} runs`);
console.log("| measure | median | runs | aim |");
console.log("| --- | --- | --- | --- |");
console.log(
  `| lateness p50, 2 ms delay, 2000 pkt/s (us) | ${median(p50).toFixed(1)} | ${p50.map((x) => x.toFixed(1)).join(", ")} | |`,
);
console.log(`| lateness p99 (us) | ${median(p99).toFixed(1)} | ${p99.map((x) => x.toFixed(1)).join(", ")} | <= 50 |`);
console.log(
  `| rate for 10 Mbit/s (Mbit/s) | ${median(rate).toFixed(3)} | ${rate.map((x) => x.toFixed(3)).join(", ")} | within 1% |`,
);
