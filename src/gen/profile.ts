// A traffic profile: a TypeScript module whose default export is { streams: [...], rate? }, each
// stream a StreamSpec (stream.ts) with its rate and pattern (pacing.ts). Checked whole before a
// packet is sent: every mistake is one sentence naming the stream and the fix.
import { resolve } from "node:path";
import { checkRate, PacingError, type Pattern, type Rate } from "./pacing.ts";
import { StreamError, type StreamSpec, StreamWriter } from "./stream.ts";

export interface ProfileStream extends StreamSpec {
  rate: Rate;
  pattern?: Pattern;
}
export interface Profile {
  streams: ProfileStream[];
  /** The total rate shares are of (-R overrides it). */
  rate?: { pps: number };
}

export class ProfileError extends Error {}

export interface CompiledStream {
  name: string;
  writer: StreamWriter;
  rate: { pps?: number; bps?: number };
  pattern: Pattern;
}

/** Import a profile module; one sentence if it cannot be read or is not a profile. */
export async function loadProfile(file: string): Promise<Profile> {
  let p: Profile;
  try {
    p = (await import(resolve(file))).default;
  } catch (e) {
    throw new ProfileError(`${file}: ${(e as Error).message.split("\n")[0]} (fix the module, or check its path)`);
  }
  if (!p || typeof p !== "object" || !Array.isArray(p.streams) || !p.streams.length)
    throw new ProfileError(`${file}: its default export must be { streams: [{ name, packet, rate }, ...] }`);
  return p;
}

/** Every stream compiled and checked; `totalPps` (-R) overrides the profile's total rate. */
export function compileProfile(p: Profile, maxLen: number, totalPps?: number): CompiledStream[] {
  const names = new Set<string>();
  const total = totalPps ?? p.rate?.pps;
  if (p.streams.length > 65536) throw new ProfileError("a profile has at most 65536 streams");
  return p.streams.map((s, id) => {
    const name = typeof s?.name === "string" && s.name ? s.name : `stream ${id}`;
    if (names.has(name))
      throw new ProfileError(`stream '${name}': the name is taken by another stream: give each its own`);
    names.add(name);
    try {
      const rate = checkRate(s.rate, s.pattern, total);
      const writer = new StreamWriter(s, id, maxLen);
      dryRun(writer, name);
      return { name, writer, rate, pattern: s.pattern ?? "constant" };
    } catch (e) {
      if (e instanceof PacingError) throw new ProfileError(`stream '${name}': ${e.message}`);
      if (e instanceof StreamError) throw new ProfileError(e.message);
      throw e;
    }
  });
}

/** Write the stream's first packets into scratch memory, so a callback that throws is found before
 * anything is sent. */
function dryRun(w: StreamWriter, name: string): void {
  const scratch = new Uint8Array(w.largest + 64);
  w.prime(scratch, 0);
  try {
    for (let k = 0; k < 4; k++) w.write(scratch, 0, k, 0);
  } catch (e) {
    throw new ProfileError(
      `stream '${name}': its callback (each) threw on a trial packet: ${(e as Error).message.split("\n")[0]}`,
    );
  }
}

/** Ethernet's bytes on the wire beyond a frame without FCS: FCS 4, preamble 8, gap 12. */
export const WIRE_OVERHEAD = 24;

/** Bits/s each stream puts on the wire at its rate. */
export function wireBps(s: CompiledStream): number {
  const mean = s.writer.meanSize;
  return s.rate.pps ? s.rate.pps * (mean + WIRE_OVERHEAD) * 8 : ((s.rate.bps ?? 0) * (mean + WIRE_OVERHEAD)) / mean;
}

/** Refuse a profile whose streams add up to more than the link carries (speedBps; 0: unknown). */
export function checkLinkRate(streams: CompiledStream[], speedBps: number, port: string): void {
  if (!speedBps) return;
  const total = streams.reduce((a, s) => a + wireBps(s), 0);
  if (total <= speedBps) return;
  const top = streams.reduce((a, s) => (wireBps(s) > wireBps(a) ? s : a));
  throw new ProfileError(
    `stream '${top.name}': the profile's streams need ${(total / 1e6).toFixed(1)} Mbit/s on the wire (this one ${(wireBps(top) / 1e6).toFixed(1)}), above what ${port} carries (${speedBps / 1e6} Mbit/s): lower their rates`,
  );
}
