// UDP with ordinary kernel sockets, as a container's program would use them.
//   recv PORT MS        count datagrams for MS ms after the first; prints "recv N PPS"
//   send HOST PORT MS   send 18-byte datagrams (64-byte frames) as fast as the socket takes them for
//                       MS ms, a batch per call; prints "sent N"
const [mode, a, b, c] = process.argv.slice(2);
if (mode === "recv") {
  const ms = Number(b);
  let n = 0,
    t0 = 0;
  const sock = await Bun.udpSocket({
    port: Number(a),
    socket: {
      data() {
        if (n++ === 0) {
          t0 = performance.now();
          setTimeout(done, ms);
        }
      },
    },
  });
  const done = () => {
    const dt = (performance.now() - t0) / 1000;
    process.stdout.write(`recv ${n} ${(n / dt).toFixed(0)}\n`);
    sock.close();
    process.exit(0);
  };
  process.stdout.write("listening\n");
} else {
  const ms = Number(c);
  const sock = await Bun.udpSocket({ connect: { hostname: a, port: Number(b) } });
  const batch = Array.from({ length: 64 }, () => new Uint8Array(18));
  let sent = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const k = sock.sendMany(batch);
    sent += k;
    if (k < batch.length) await Bun.sleep(0); // the socket is full: let it drain
  }
  process.stdout.write(`sent ${sent}\n`);
  sock.close();
}

export {};
