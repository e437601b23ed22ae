// TCP between containers with ordinary kernel sockets: `server PORT` accepts one connection and
// prints "got BYTES SUM"; `client HOST PORT BYTES` sends a known pattern and prints "sent BYTES SUM".
// SUM is the CRC-32 of the whole stream, so corruption anywhere shows (native: it never limits the rate).
const [mode, a, b, c] = process.argv.slice(2);
const sum = (s: number, u8: Uint8Array) => Bun.hash.crc32(u8, s);
if (mode === "server") {
  let got = 0,
    s = 0;
  Bun.listen({
    hostname: "0.0.0.0",
    port: Number(a),
    socket: {
      data(_sock, d) {
        got += d.length;
        s = sum(s, d);
      },
      close() {
        process.stdout.write(`got ${got} ${s}\n`);
        process.exit(0);
      },
    },
  });
  process.stdout.write("listening\n");
} else {
  const total = Number(c);
  const chunk = new Uint8Array(1 << 16);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7 + 3) & 255;
  let sent = 0,
    s = 0,
    pendingChunk: Uint8Array | null = null;
  const t0 = performance.now();
  const pump = (sock: { write(d: Uint8Array): number; end(): void }) => {
    for (;;) {
      const d = pendingChunk ?? chunk.subarray(0, Math.min(chunk.length, total - sent));
      if (d.length === 0) {
        sock.end();
        return;
      }
      const n = sock.write(d);
      if (n > 0) {
        s = sum(s, d.subarray(0, n));
        sent += n;
      }
      pendingChunk = n < d.length ? d.subarray(Math.max(n, 0)) : null;
      if (n < d.length) return; // wait for drain
    }
  };
  await Bun.connect({
    hostname: a,
    port: Number(b),
    socket: {
      open: pump,
      drain: pump,
      close() {
        process.stdout.write(`sent ${sent} ${s} ${(sent / 1e6 / ((performance.now() - t0) / 1000)).toFixed(1)} MB/s\n`);
        process.exit(0);
      },
      error(_s, e) {
        process.stderr.write(`${e}\n`);
        process.exit(1);
      },
    },
  });
}

export {};
