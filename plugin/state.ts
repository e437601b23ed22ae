// What the driver must not forget across restarts: networks and endpoints, in SQLite (bun:sqlite),
// each change one transaction, WAL + synchronous=FULL so an acknowledged answer is on disk.
import { Database } from "bun:sqlite";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { BACKENDS } from "./backends.ts";

/** Rows as they must come back from the file: anything else is a damaged database, said plainly. */
export const NetworkRowSchema = Type.Object({
  id: Type.String({ minLength: 1 }),
  switch: Type.String({ pattern: "^vale[0-9A-Za-z_]*$" }),
  backend: Type.Union(BACKENDS.map((b) => Type.Literal(b))),
  mtu: Type.Integer({ minimum: 68, maximum: 9000 }),
  gateway: Type.String(),
  options: Type.String(),
  created: Type.Number(),
  /** 1: --internal (no gateway port, no NAT) */
  internal: Type.Union([Type.Literal(0), Type.Literal(1)]),
  /** IPv4 subnet ("" without IPv4), IPv6 gateway and subnet ("" without IPv6) */
  pool: Type.String(),
  gateway6: Type.String(),
  pool6: Type.String(),
});
/** A published port as stored: what Docker asked for, with the host port chosen. */
export const BindingSchema = Type.Object({
  proto: Type.Union([Type.Literal("tcp"), Type.Literal("udp"), Type.Literal("sctp")]),
  hostIp: Type.String(),
  hostPort: Type.Integer({ minimum: 1, maximum: 65535 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
});
export type Binding = Static<typeof BindingSchema>;
export const EndpointRowSchema = Type.Object({
  id: Type.String({ minLength: 1 }),
  network: Type.String({ minLength: 1 }),
  host_if: Type.String({ pattern: "^vh[0-9a-f]{12}$" }),
  cont_if: Type.String({ pattern: "^vc[0-9a-f]{12}$" }),
  mac: Type.String({ pattern: "^([0-9a-f]{2}:){5}[0-9a-f]{2}$" }),
  address: Type.String(),
  address6: Type.String(),
  joined: Type.Union([Type.Literal(0), Type.Literal(1)]),
  sandbox: Type.String(),
  ports: Type.String(),
});
/** A network as stored (the type is the schema's: one statement of the row). */
/** A zero-copy port a container's process holds into a network (plugin/cnf.ts): a switch port, or one end of a pipe. */
export const CnfRowSchema = Type.Object({
  key: Type.String(),
  network: Type.String(),
  endpoint: Type.String(),
  kind: Type.Union([Type.Literal("switch"), Type.Literal("pipe")]),
  /** The shm region's name (its file in the plugin's shm directory). */
  region: Type.String(),
  /** The holder: its pid as the plugin sees it and its start time (the pair names one process). */
  pid: Type.Integer(),
  start: Type.String(),
  /** The switch's doorbell: its eventfd-id, found again in the holder's descriptors after a restart. */
  bell_id: Type.Integer(),
  /** The MAC the holder said it sends from ('' if none): learned as the port joins. */
  station: Type.String(),
});
export type CnfRow = Static<typeof CnfRowSchema>;
/** A CNI attachment (plugin/cni.ts): a container's interface on a network, as a runtime asked for it. */
export const CniRowSchema = Type.Object({
  /** the endpoint's ID (derived from network name, container ID and interface name) */
  endpoint: Type.String({ minLength: 1 }),
  network: Type.String({ minLength: 1 }),
  /** the CNI network's name (the config's "name") */
  name: Type.String({ minLength: 1 }),
  container: Type.String({ minLength: 1 }),
  ifname: Type.String({ minLength: 1 }),
  netns: Type.String(),
  /** 1: the network was made for CNI configs (it goes with its last attachment) */
  own: Type.Union([Type.Literal(0), Type.Literal(1)]),
  /** the result ADD answered, JSON; '' while ADD has not finished */
  result: Type.String(),
});
export type CniRow = Static<typeof CniRowSchema>;
export type NetworkRow = Static<typeof NetworkRowSchema>;
/** An endpoint as stored; `ports` is its published ports, JSON Binding[]. */
export type EndpointRow = Static<typeof EndpointRowSchema>;

function checked<T>(schema: TSchema, what: string, row: T | null): T | null {
  if (row !== null && !Value.Check(schema, row)) {
    const e = [...Value.Errors(schema, row)][0];
    throw new Error(
      `state database: bad ${what} row ${JSON.stringify(row)}: ${e?.path ?? ""} ${e?.message ?? ""}`.trim(),
    );
  }
  return row;
}

export class State {
  readonly db: Database;
  /** This state's identity, 12 hex digits (marks the interfaces it owns). */
  readonly instance: string;
  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { create: true, strict: true });
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
    // the database, its WAL and shared memory: the owner's only, whatever umask made them
    if (path !== ":memory:")
      for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    this.db.exec(`CREATE TABLE IF NOT EXISTS networks (
      id TEXT PRIMARY KEY, switch TEXT NOT NULL, backend TEXT NOT NULL, mtu INTEGER NOT NULL,
      gateway TEXT NOT NULL, options TEXT NOT NULL, created INTEGER NOT NULL)`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS endpoints (
      id TEXT PRIMARY KEY, network TEXT NOT NULL REFERENCES networks(id), host_if TEXT NOT NULL UNIQUE,
      cont_if TEXT NOT NULL UNIQUE, mac TEXT NOT NULL, address TEXT NOT NULL, address6 TEXT NOT NULL,
      joined INTEGER NOT NULL DEFAULT 0, sandbox TEXT NOT NULL DEFAULT '')`);
    // columns added since the first release: a database from an older plugin gains them
    this.addColumns("networks", {
      internal: "INTEGER NOT NULL DEFAULT 0",
      pool: "TEXT NOT NULL DEFAULT ''",
      gateway6: "TEXT NOT NULL DEFAULT ''",
      pool6: "TEXT NOT NULL DEFAULT ''",
    });
    this.addColumns("endpoints", { ports: "TEXT NOT NULL DEFAULT '[]'" });
    this.db.exec(`CREATE TABLE IF NOT EXISTS cnf_ports (
      key TEXT PRIMARY KEY, network TEXT NOT NULL, endpoint TEXT NOT NULL, kind TEXT NOT NULL,
      region TEXT NOT NULL, pid INTEGER NOT NULL, start TEXT NOT NULL, bell_id INTEGER NOT NULL,
      station TEXT NOT NULL DEFAULT '')`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS cni_attachments (
      endpoint TEXT PRIMARY KEY, network TEXT NOT NULL, name TEXT NOT NULL, container TEXT NOT NULL,
      ifname TEXT NOT NULL, netns TEXT NOT NULL, own INTEGER NOT NULL, result TEXT NOT NULL)`);
    // who made our interfaces: a random identity, kept with the state (interfaces are marked with it)
    this.db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    this.db.query("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', ?)").run(randomBytes(6).toString("hex"));
    this.instance = this.db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'instance'").get()!.value;
  }
  private addColumns(table: string, cols: Record<string, string>): void {
    const have = new Set(
      this.db
        .query<{ name: string }, []>(`PRAGMA table_info(${table})`)
        .all()
        .map((c) => c.name),
    );
    for (const [c, def] of Object.entries(cols))
      if (!have.has(c)) this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${c} ${def}`);
  }
  network(id: string): NetworkRow | null {
    return checked(
      NetworkRowSchema,
      "network",
      this.db.query<NetworkRow, [string]>("SELECT * FROM networks WHERE id = ?").get(id),
    );
  }
  networks(): NetworkRow[] {
    return this.db
      .query<NetworkRow, []>("SELECT * FROM networks ORDER BY created")
      .all()
      .map((r) => checked(NetworkRowSchema, "network", r)!);
  }
  addNetwork(n: NetworkRow): void {
    this.db
      .query(`INSERT INTO networks (id, switch, backend, mtu, gateway, options, created, internal, pool, gateway6, pool6)
      VALUES ($id, $switch, $backend, $mtu, $gateway, $options, $created, $internal, $pool, $gateway6, $pool6)`)
      .run({ ...n });
  }
  deleteNetwork(id: string): void {
    this.db.query("DELETE FROM networks WHERE id = ?").run(id);
  }
  endpoint(id: string): EndpointRow | null {
    return checked(
      EndpointRowSchema,
      "endpoint",
      this.db.query<EndpointRow, [string]>("SELECT * FROM endpoints WHERE id = ?").get(id),
    );
  }
  endpoints(network?: string): EndpointRow[] {
    const rows = network
      ? this.db.query<EndpointRow, [string]>("SELECT * FROM endpoints WHERE network = ? ORDER BY id").all(network)
      : this.db.query<EndpointRow, []>("SELECT * FROM endpoints ORDER BY id").all();
    return rows.map((r) => checked(EndpointRowSchema, "endpoint", r)!);
  }
  addEndpoint(e: EndpointRow): void {
    this.db
      .query(`INSERT INTO endpoints (id, network, host_if, cont_if, mac, address, address6, joined, sandbox, ports)
      VALUES ($id, $network, $host_if, $cont_if, $mac, $address, $address6, $joined, $sandbox, $ports)`)
      .run({ ...e });
  }
  setJoined(id: string, joined: boolean, sandbox = ""): void {
    this.db.query("UPDATE endpoints SET joined = ?, sandbox = ? WHERE id = ?").run(joined ? 1 : 0, sandbox, id);
  }
  /** Is an interface name held by some endpoint's row? */
  ifInUse(name: string): boolean {
    return !!this.db.query("SELECT 1 FROM endpoints WHERE host_if = ? OR cont_if = ?").get(name, name);
  }
  setPorts(id: string, ports: Binding[]): void {
    this.db.query("UPDATE endpoints SET ports = ? WHERE id = ?").run(JSON.stringify(ports), id);
  }
  /** An endpoint's published ports (checked: a damaged row is an error). */
  ports(e: EndpointRow): Binding[] {
    const v: unknown = JSON.parse(e.ports);
    const ok = Array.isArray(v) && v.every((b) => Value.Check(BindingSchema, b));
    if (!ok) throw new Error(`state database: bad ports of endpoint ${e.id}: ${e.ports}`);
    return v as Binding[];
  }
  deleteEndpoint(id: string): void {
    this.db.query("DELETE FROM endpoints WHERE id = ?").run(id);
  }
  cnfPorts(): CnfRow[] {
    return this.db
      .query<CnfRow, []>("SELECT * FROM cnf_ports ORDER BY key")
      .all()
      .map((r) => checked(CnfRowSchema, "cnf port", r)!);
  }
  addCnfPort(r: CnfRow): void {
    this.db
      .query(`INSERT OR REPLACE INTO cnf_ports (key, network, endpoint, kind, region, pid, start, bell_id, station)
      VALUES ($key, $network, $endpoint, $kind, $region, $pid, $start, $bell_id, $station)`)
      .run({
        key: r.key,
        network: r.network,
        endpoint: r.endpoint,
        kind: r.kind,
        region: r.region,
        pid: r.pid,
        start: r.start,
        bell_id: r.bell_id,
        station: r.station,
      });
  }
  deleteCnfPort(key: string): void {
    this.db.query("DELETE FROM cnf_ports WHERE key = ?").run(key);
  }
  cniAttachment(endpoint: string): CniRow | null {
    return checked(
      CniRowSchema,
      "CNI attachment",
      this.db.query<CniRow, [string]>("SELECT * FROM cni_attachments WHERE endpoint = ?").get(endpoint),
    );
  }
  cniAttachments(): CniRow[] {
    return this.db
      .query<CniRow, []>("SELECT * FROM cni_attachments ORDER BY endpoint")
      .all()
      .map((r) => checked(CniRowSchema, "CNI attachment", r)!);
  }
  addCniAttachment(r: CniRow): void {
    this.db
      .query(`INSERT OR REPLACE INTO cni_attachments (endpoint, network, name, container, ifname, netns, own, result)
      VALUES ($endpoint, $network, $name, $container, $ifname, $netns, $own, $result)`)
      .run({ ...r });
  }
  setCniResult(endpoint: string, result: string): void {
    this.db.query("UPDATE cni_attachments SET result = ? WHERE endpoint = ?").run(result, endpoint);
  }
  deleteCniAttachment(endpoint: string): void {
    this.db.query("DELETE FROM cni_attachments WHERE endpoint = ?").run(endpoint);
  }
  close(): void {
    this.db.close();
  }
}
