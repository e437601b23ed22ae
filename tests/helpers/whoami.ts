// `server PORT`: answer every TCP connection and every UDP datagram on PORT with "you are IP" (the
// peer's address as this end sees it: NAT shows); `client HOST PORT tcp|udp`: print the answer.
import dgram from "node:dgram";
import net from "node:net";

const [mode, a, b, proto] = process.argv.slice(2);
if (mode === "server") {
  net.createServer((s) => s.end(`you are ${s.remoteAddress?.replace(/^::ffff:/, "")}\n`)).listen(Number(a), "0.0.0.0");
  const u = dgram.createSocket("udp4");
  u.on("message", (_m, r) => u.send(`you are ${r.address}\n`, r.port, r.address));
  u.bind(Number(a), "0.0.0.0", () => process.stdout.write("listening\n"));
} else {
  setTimeout(() => {
    process.stdout.write("timeout\n");
    process.exit(1);
  }, 3000);
  if (proto === "udp") {
    const u = dgram.createSocket("udp4");
    u.on("message", (m) => {
      process.stdout.write(String(m));
      process.exit(0);
    });
    u.send("who", Number(b), a);
  } else {
    let got = "";
    net
      .connect(Number(b), a)
      .on("data", (d) => {
        got += d;
      })
      .on("end", () => {
        process.stdout.write(got);
        process.exit(0);
      })
      .on("error", (e) => {
        process.stdout.write(`error ${e.message}\n`);
        process.exit(1);
      });
  }
}
