// `server PORT`: echo every datagram back and print "from IP:PORT"; `client IP PORT N`: send N
// datagrams, print each echo as "echo <payload> from IP".
import dgram from "node:dgram";

const [mode, a, b, c] = process.argv.slice(2);
if (mode === "server") {
  const s = dgram.createSocket("udp4");
  s.on("message", (msg, rinfo) => {
    process.stdout.write(`from ${rinfo.address}:${rinfo.port} ${msg}\n`);
    s.send(msg, rinfo.port, rinfo.address);
  });
  s.bind(Number(a), () => process.stdout.write("listening\n"));
} else {
  const s = dgram.createSocket("udp4");
  const n = Number(c);
  let got = 0;
  s.on("message", (msg, rinfo) => {
    process.stdout.write(`echo ${msg} from ${rinfo.address}\n`);
    if (++got === n) {
      s.close();
      process.exit(0);
    }
  });
  s.bind(0, async () => {
    for (let i = 0; i < n; i++) {
      s.send(`hello ${i}`, Number(b), a);
      await Bun.sleep(100);
    }
    setTimeout(() => process.exit(1), 5000);
  });
}
