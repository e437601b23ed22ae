// The in-band signature a generated packet carries at the start of its innermost payload, stated
// once: the receiver finds its stream, its place in the stream, and when it was sent. 16 bytes, so a
// 60-byte IPv4/UDP frame (64 on the wire) carries one:
//   0 magic u16 0xB34D | 2 stream u16 | 4 seq u32 (wraps; the receiver unwraps) |
//   8 tx time f64, big-endian: ms since the Unix epoch (performance.timeOrigin + performance.now():
//     one clock for every process on the machine; 0.25 µs steps at today's values)
export const SIG_MAGIC = 0xb34d;
export const SIG_LEN = 16;
export const SIG = { magic: 0, stream: 2, seq: 4, time: 8 } as const;

/** The clock the signature carries (ms since the epoch, sub-µs resolution). */
export const wallMs = (): number => performance.timeOrigin + performance.now();

const f64 = new Float64Array(1),
  f64b = new Uint8Array(f64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Write a signature at u8[at] (no allocation); seq is taken modulo 2^32. */
export function writeSignature(u8: Uint8Array, at: number, stream: number, seq: number, timeMs: number): void {
  u8[at] = 0xb3;
  u8[at + 1] = 0x4d;
  u8[at + 2] = stream >> 8;
  u8[at + 3] = stream & 255;
  const s = seq % 4294967296;
  u8[at + 4] = s >>> 24;
  u8[at + 5] = (s >>> 16) & 255;
  u8[at + 6] = (s >>> 8) & 255;
  u8[at + 7] = s & 255;
  putTime(u8, at + SIG.time, timeMs);
}

/** The tx time's 8 bytes (a big-endian f64) at u8[at]. */
export function putTime(u8: Uint8Array, at: number, timeMs: number): void {
  f64[0] = timeMs;
  for (let i = 0; i < 8; i++) u8[at + i] = f64b[LITTLE ? 7 - i : i];
}

/** True if u8[at] holds a signature. */
export const hasSignature = (u8: Uint8Array, at: number): boolean => u8[at] === 0xb3 && u8[at + 1] === 0x4d;

export const sigStream = (u8: Uint8Array, at: number): number => (u8[at + 2] << 8) | u8[at + 3];

/** The sequence number as sent (32 bits). */
export const sigSeq = (u8: Uint8Array, at: number): number =>
  ((u8[at + 4] << 24) | (u8[at + 5] << 16) | (u8[at + 6] << 8) | u8[at + 7]) >>> 0;

export function sigTime(u8: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) f64b[LITTLE ? 7 - i : i] = u8[at + 8 + i];
  return f64[0];
}
