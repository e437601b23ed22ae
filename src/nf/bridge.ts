// netmap's bridge as an NF: what comes in on one of two ports leaves by the other (the runner swaps
// the buffer when the ports share memory, copies it otherwise).
import type { Packet } from "./runner.ts";

export const bridgeNf = (p: Packet): number => p.input ^ 1;
