// The published-port proxy (plugin/proxy.ts) on loopback: TCP half-close crosses it both ways, as it
// does through docker-proxy (a client that shuts its write side down still gets the answer; a server
// that answers and shuts down first still gets the rest of the request), bytes compared.
import { afterAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { Proxies } from "../plugin/proxy.ts";

const BACK = 18471,
  FRONT = 18472;
const proxies = new Proxies();
const servers: net.Server[] = [];
afterAll(() => {
  proxies.close();
  for (const s of servers) s.close();
});

/** A server on BACK running `onConn`, and the proxy FRONT -> BACK. */
async function serve(onConn: (s: net.Socket) => void): Promise<void> {
  for (const s of servers.splice(0)) s.close();
  proxies.close();
  const srv = net.createServer({ allowHalfOpen: true }, onConn);
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(BACK, "127.0.0.1", r));
  await proxies.sync([{ proto: "tcp", hostIp: "127.0.0.1", hostPort: FRONT, ip: "127.0.0.1", port: BACK }]);
}

/** Connect through the proxy, run `talk` (which ends the client's write side when it wants); resolve
 * with all the client read until the server's FIN. */
function client(talk: (s: net.Socket) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: FRONT, host: "127.0.0.1", allowHalfOpen: true });
    let got = "";
    s.on("data", (d) => {
      got += d.toString();
    });
    s.on("end", () => resolve(got)); // the client's own write side is `talk`'s to end
    s.on("error", reject);
    s.on("connect", () => talk(s));
    setTimeout(() => reject(new Error(`no FIN from the server; got ${JSON.stringify(got)}`)), 5000);
  });
}

describe("the TCP proxy passes half-close on", () => {
  test("client shuts down its write side after the request: the server reads to EOF, then answers", async () => {
    await serve((s) => {
      let req = "";
      s.on("data", (d) => {
        req += d.toString();
      });
      s.on("end", () => s.end(`answer to ${req.length} bytes: ${req.slice(0, 12)}`)); // only after the client's FIN
    });
    const request = `GET / ${"x".repeat(100_000)}`;
    const got = await client((s) => s.end(request)); // write, then FIN
    expect(got).toBe(`answer to ${request.length} bytes: GET / xxxxxx`);
  });

  test("server answers and shuts down first: the client still sends the rest, and the server gets it", async () => {
    let serverGot: Promise<string> = Promise.resolve("");
    await serve((s) => {
      s.end("hello, then FIN"); // the server's FIN first
      serverGot = new Promise((r) => {
        let req = "";
        s.on("data", (d) => {
          req += d.toString();
        });
        s.on("end", () => r(req));
      });
    });
    const got = await client((s) => {
      setTimeout(() => s.end("more after your FIN"), 200); // well after the server's FIN came
    });
    expect(got).toBe("hello, then FIN");
    expect(await serverGot).toBe("more after your FIN");
  });
});
