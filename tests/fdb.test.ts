// The learning table (src/packet/fdb.ts): learn, look up, move, age out, collisions.
import { describe, expect, test } from "bun:test";
import { parseMac } from "../src/packet/ethernet.ts";
import { Fdb } from "../src/packet/fdb.ts";

const mac = (n: number) => parseMac(`02:00:00:00:${(n >> 8).toString(16)}:${(n & 255).toString(16)}`);

describe("fdb", () => {
  test("learn, look up, move, age out, and survive collisions", () => {
    const f = new Fdb(4, 10); // 16 entries, 10 s
    const m = (n: number) => mac(n);
    expect(f.learn(m(1), 0, 3, 100)).toBe(true); // new: the kernel fast path is told
    expect(f.lookup(m(1), 0, 105)).toBe(3);
    expect(f.lookup(m(2), 0, 105)).toBe(-1);
    expect(f.learn(m(1), 0, 3, 105)).toBe(false); // seen again, same port: nothing to tell
    expect(f.learn(m(1), 0, 5, 106)).toBe(true); // the station moved
    expect(f.lookup(m(1), 0, 106)).toBe(5);
    expect(f.lookup(m(1), 0, 117)).toBe(-1); // aged out
    expect(f.learn(m(1), 0, 5, 117)).toBe(true); // back after aging out: new again
    for (let i = 10; i < 40; i++) f.learn(m(i), 0, i, 200); // more than the table holds: oldest replaced
    expect(f.lookup(m(39), 0, 200)).toBe(39);
    expect(f.count(200)).toBeLessThanOrEqual(16);
  });
});
