/**
 * tidemark's MySQL server: the client/server protocol (4.1) over TCP, each connection a SQL session
 * of the database (its own transactions and variables). Text queries (several statements in one
 * are several result sets), prepared statements with the binary protocol, ping, quit, init_db and
 * reset. Limits: connections, packet size, idle time; a malformed or oversized packet closes its
 * own connection only. Every connection's receive buffer and its responses in flight are accounted
 * in the database's `io` pool, so that when every client has gone the pools are back to baseline.
 */
import * as net from 'node:net';
import type { Database } from '../../api/database.js';
import { TidemarkError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PooledBuffer, Reservation } from '../../mem/buffer.js';
import type { MemoryPool } from '../../mem/pool.js';
import type { QueryResult } from '../../txn/query.js';
import type { SqlSession } from '../../sql/session.js';
import { dateText, Decimal, toDecimalValue, toText, type SqlValue } from '../../sql/values.js';
import { NATIVE, SHA2, newScramble, verify, type Account } from './auth.js';
import type { Writer } from './protocol.js';
import {
  CHARSET_BINARY,
  CHARSET_UTF8MB4,
  CLIENT,
  COM,
  ProtocolError,
  Reader,
  SERVER_CAPABILITIES,
  STATUS,
  TYPE,
  PacketWriter,
  columnPacket,
  endPacket,
  errPacket,
  okPacket,
  type ColumnDef,
} from './protocol.js';

export interface MysqlServerOptions {
  port?: number;
  host?: string;
  accounts: readonly Account[];
  /** Connections open at once; more are refused with error 1040. Default 151 (MySQL's). */
  maxConnections?: number;
  /** The largest packet a client may send; larger closes its connection. Default 64 MiB. */
  maxPacketBytes?: number;
  /** A connection idle this long is closed. Default 8 hours (MySQL's wait_timeout). */
  idleTimeoutMs?: number;
  /** Wrong credentials are answered after this long. Default 300 ms. */
  authFailureDelayMs?: number;
  /** The plugin offered first. Default caching_sha2_password (MySQL 8's). */
  authPlugin?: typeof NATIVE | typeof SHA2;
  log?: Logger;
}

export interface MysqlServerStats {
  connections: number;
  accepted: number;
  refused: number;
  authFailures: number;
  protocolErrors: number;
  commands: number;
}

const SERVER_VERSION = '8.0.36-tidemark';
const RECV_INITIAL = 16 * 1024;
/** A connection keeps its response buffer between responses up to this size. */
const OUT_KEEP_BYTES = 64 * 1024;
/** Responses up to this size are written before they are accounted (the kernel takes them whole). */
const EAGER_WRITE_BYTES = 16 * 1024;
/** How a prepared statement's parameters are described. */
const PARAMETER: ColumnDef = {
  name: '?',
  type: TYPE.VAR_STRING,
  charset: CHARSET_UTF8MB4,
  length: 0,
  flags: 0,
  decimals: 0,
};

/** A TidemarkError as MySQL's error number, SQLSTATE and message (docs/mysql.md lists them). */
export function mysqlError(e: unknown): { errno: number; state: string; message: string } {
  if (!(e instanceof TidemarkError)) {
    return { errno: 1105, state: 'HY000', message: e instanceof Error ? e.message : String(e) };
  }
  const given = e.details?.['mysqlErrno'];
  const errno = typeof given === 'number' ? given : (CODE_ERRNO[e.code] ?? 1105);
  return { errno, state: ERRNO_STATE[errno] ?? 'HY000', message: e.message };
}

const CODE_ERRNO: Record<string, number> = {
  DUPLICATE_KEY: 1062,
  CONFLICT: 1213,
  SCHEMA: 1054,
  NOT_FOUND: 1146,
  INVALID_ARGUMENT: 1105,
  SYNTAX: 1064,
  CLOSED: 1053,
  LOCKED: 1205,
  CORRUPTION: 1030,
  IO: 1030,
  MEMORY_LIMIT: 1041,
  READ_ONLY: 1290,
  LEAK: 1105,
  REFCOUNT: 1105,
};

const ERRNO_STATE: Record<number, string> = {
  1040: '08004',
  1045: '28000',
  1046: '3D000',
  1047: '08S01',
  1048: '23000',
  1049: '42000',
  1050: '42S01',
  1051: '42S02',
  1052: '23000',
  1053: '08S01',
  1054: '42S22',
  1060: '42S21',
  1061: '42000',
  1062: '23000',
  1064: '42000',
  1066: '42000',
  1068: '42000',
  1072: '42000',
  1091: '42000',
  1110: '42000',
  1111: 'HY000',
  1136: '21S01',
  1146: '42S02',
  1153: '08S01',
  1193: 'HY000',
  1213: '40001',
  1222: '21000',
  1241: '21000',
  1242: '21000',
  1264: '22003',
  1364: 'HY000',
  1366: 'HY000',
  1406: '22001',
  3065: 'HY000',
  4031: 'HY000',
};

/** The MySQL server of one database. */
export class MysqlServer {
  private readonly connections = new Set<Connection>();
  private nextId = 1;
  private readonly counters: MysqlServerStats = {
    connections: 0,
    accepted: 0,
    refused: 0,
    authFailures: 0,
    protocolErrors: 0,
    commands: 0,
  };
  readonly options: Required<Omit<MysqlServerOptions, 'log'>> & { log: Logger | undefined };

  private constructor(
    readonly db: Database,
    private readonly server: net.Server,
    options: MysqlServerOptions,
  ) {
    this.options = {
      port: options.port ?? 3306,
      host: options.host ?? '127.0.0.1',
      accounts: options.accounts,
      maxConnections: options.maxConnections ?? 151,
      maxPacketBytes: options.maxPacketBytes ?? 64 * 1024 * 1024,
      idleTimeoutMs: options.idleTimeoutMs ?? 8 * 3600 * 1000,
      authFailureDelayMs: options.authFailureDelayMs ?? 300,
      authPlugin: options.authPlugin ?? SHA2,
      log: options.log,
    };
  }

  static async start(db: Database, options: MysqlServerOptions): Promise<MysqlServer> {
    if (!Array.isArray(options.accounts) || options.accounts.length === 0) {
      throw new TidemarkError('INVALID_ARGUMENT', 'the MySQL server needs at least one account');
    }
    const server = net.createServer();
    const s = new MysqlServer(db, server, options);
    server.on('connection', (socket) => s.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const failed = (e: NodeJS.ErrnoException) =>
        reject(
          new TidemarkError(
            'IO',
            `cannot serve the MySQL protocol at ${s.options.host}:${s.options.port} (${e.code ?? e.message}): choose another port with --mysql-port, or --no-mysql`,
            { cause: e, details: { errno: e.code } },
          ),
        );
      server.once('error', failed);
      server.listen(s.options.port, s.options.host, () => {
        server.off('error', failed);
        resolve();
      });
    });
    // Errors after listening (none expected) are logged, never thrown into the process.
    server.on('error', (e) => s.options.log?.error({ err: e }, 'mysql server error'));
    return s;
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : this.options.port;
  }

  stats(): MysqlServerStats {
    return { ...this.counters, connections: this.connections.size };
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    if (this.connections.size >= this.options.maxConnections) {
      this.counters.refused++;
      socket.end(errPacket(new PacketWriter(0), 1040, '08004', 'Too many connections').payload());
      socket.on('error', () => undefined);
      return;
    }
    this.counters.accepted++;
    const c = new Connection(this, socket, this.nextId++, this.db._ioPool());
    this.connections.add(c);
    void c.run().finally(() => {
      this.connections.delete(c);
    });
  }

  /** @internal */
  count(what: 'authFailures' | 'protocolErrors' | 'commands'): void {
    this.counters[what]++;
  }

  /** Stop listening and close every connection (their open transactions roll back). */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((c) => c.close()));
  }
}

interface Prepared {
  sql: string;
  params: number;
  /** Parameter types from the last execute that sent them. */
  types: number[];
  longData: Map<number, Buffer[]>;
}

/** One client connection: the handshake, then commands one at a time. */
class Connection {
  private recv: PooledBuffer;
  private used = 0;
  private readonly packets: { seq: number; payload: Buffer }[] = [];
  private partial: Buffer[] = [];
  private waiting: (() => void) | undefined;
  private closed = false;
  private done: Promise<void> | undefined;
  private capabilities = 0;
  private session: SqlSession | undefined;
  private readonly statements = new Map<number, Prepared>();
  private nextStatement = 1;
  /** Per write not yet called back: the io pool reservation of what the socket holds, if any. */
  private readonly held: (Reservation | undefined)[] = [];
  private out = new PacketWriter();

  constructor(
    private readonly server: MysqlServer,
    private readonly socket: net.Socket,
    readonly id: number,
    private readonly pool: MemoryPool,
  ) {
    this.recv = pool.allocateSync(RECV_INITIAL, 'mysql.connection');
    socket.on('data', (d) => this.onData(d));
    socket.on('error', () => this.shutdown());
    socket.on('close', () => this.shutdown());
    socket.setTimeout(server.options.idleTimeoutMs, () => {
      void this.sendAndClose(
        errPacket(
          this.response(0),
          4031,
          'HY000',
          'The client was disconnected by the server because of inactivity',
        ),
      );
    });
  }

  private get deprecateEof(): boolean {
    return (this.capabilities & CLIENT.DEPRECATE_EOF) !== 0;
  }

  // ---- receiving ----

  private onData(d: Buffer): void {
    if (this.closed) return;
    try {
      this.append(d);
      this.extract();
    } catch (e) {
      this.server.count('protocolErrors');
      if (e instanceof TooLarge) {
        void this.sendAndClose(
          errPacket(this.response(1), 1153, '08S01', "Got a packet bigger than 'max_allowed_packet' bytes"),
        );
      } else this.shutdown();
    }
  }

  /** Into the pooled receive buffer, grown (from the same pool) as a packet needs. */
  private append(d: Buffer): void {
    const need = this.used + d.length;
    if (need > this.recv.length) {
      const max = this.server.options.maxPacketBytes + 8;
      if (need > max + 4 * 1024 * 1024) throw new TooLarge();
      let size = this.recv.length;
      while (size < need) size *= 2;
      const bigger = this.pool.allocateSync(size, 'mysql.connection');
      bigger.bytes.set(this.recv.bytes.subarray(0, this.used));
      this.recv.release();
      this.recv = bigger;
    }
    this.recv.bytes.set(d, this.used);
    this.used += d.length;
  }

  private extract(): void {
    const bytes = this.recv.bytes;
    let at = 0;
    while (this.used - at >= 4) {
      const len = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
      const seq = bytes[at + 3]!;
      const total = this.partial.reduce((n, b) => n + b.length, 0) + len;
      if (total > this.server.options.maxPacketBytes) throw new TooLarge();
      if (this.used - at < 4 + len) break;
      const body = Buffer.from(bytes.subarray(at + 4, at + 4 + len));
      at += 4 + len;
      if (len === 0xffffff) {
        this.partial.push(body);
        continue;
      }
      const payload = this.partial.length > 0 ? Buffer.concat([...this.partial, body]) : body;
      this.partial = [];
      this.packets.push({ seq, payload });
    }
    if (at > 0) {
      bytes.copyWithin(0, at, this.used);
      this.used -= at;
    }
    if (this.packets.length > 0) {
      const w = this.waiting;
      this.waiting = undefined;
      w?.();
    }
  }

  /** The next packet, or undefined once the connection is closed. */
  private next(): { seq: number; payload: Buffer } | Promise<{ seq: number; payload: Buffer } | undefined> {
    return this.packets.shift() ?? this.nextArriving();
  }

  private async nextArriving(): Promise<{ seq: number; payload: Buffer } | undefined> {
    while (this.packets.length === 0) {
      if (this.closed) return undefined;
      await new Promise<void>((r) => (this.waiting = r));
    }
    return this.packets.shift();
  }

  // ---- sending ----

  /**
   * The writer for a response whose first packet has sequence number `seq`: the connection's own
   * (written responses leave it free), unless a large result left it big.
   */
  private response(seq: number): PacketWriter {
    if (this.out.capacity > OUT_KEEP_BYTES) this.out = new PacketWriter();
    return this.out.reset(seq);
  }

  /**
   * A response, in one write. What the socket keeps until the client reads it is accounted in the
   * io pool until written (and the connection takes a new buffer for its next response). A large
   * response, or one behind bytes still queued, is accounted before it is written, so that
   * MEMORY_LIMIT fails the command with nothing sent; a small one the kernel takes at once (the
   * usual case) costs no reservation. Undefined when done; else a promise for when a slow reader has
   * read enough (it holds up its own connection only).
   */
  private send(w: PacketWriter): Promise<void> | undefined {
    if (this.closed) return undefined;
    const data = w.payload();
    const early =
      data.length > EAGER_WRITE_BYTES || this.socket.writableLength > 0
        ? this.pool.reserveSync(data.length, 'mysql.send')
        : undefined;
    // A slot per write, in order: the write callbacks release them one by one.
    this.held.push(early);
    const flushed = this.socket.write(data, this.written);
    if (this.socket.writableLength > 0) {
      this.out = new PacketWriter();
      if (early === undefined && !this.closed) {
        // A small response the kernel did not take whole: its reader has stopped reading.
        try {
          this.held[this.held.length - 1] = this.pool.reserveSync(data.length, 'mysql.send');
        } catch {
          // No memory left to hold it for a client that does not read: that connection goes.
          this.server.count('protocolErrors');
          this.shutdown();
          return undefined;
        }
      }
    } else {
      // Written whole: nothing is held (an early reservation goes back now).
      if (early !== undefined) this.held[this.held.length - 1] = undefined;
      early?.release();
      if (this.out.capacity > OUT_KEEP_BYTES) this.out = new PacketWriter();
    }
    if (flushed || this.closed) return undefined;
    return new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** A write finished (or failed): its slot's reservation, if any, goes back. */
  private readonly written = (): void => {
    this.held.shift()?.release();
  };

  /** A last response, then the connection closes (never rejects: it is closing either way). */
  private async sendAndClose(w: PacketWriter): Promise<void> {
    try {
      await this.send(w);
    } catch {
      // Not even the error could be sent (no memory for it): the client sees the connection close.
    } finally {
      this.socket.end();
      this.shutdown();
    }
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.session?.end();
    this.session = undefined;
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
    this.socket.destroy();
    this.recv.release();
    for (const r of this.held.splice(0)) r?.release();
  }

  async close(): Promise<void> {
    this.shutdown();
    await this.done;
  }

  // ---- the connection's life ----

  run(): Promise<void> {
    this.done = this.life().catch((e: unknown) => {
      if (!(e instanceof ProtocolError)) this.server.options.log?.warn({ err: e }, 'mysql connection failed');
      else this.server.count('protocolErrors');
      this.shutdown();
    });
    return this.done;
  }

  private async life(): Promise<void> {
    if (!(await this.handshake())) return;
    for (;;) {
      const p = await this.next();
      if (p === undefined) return;
      this.server.count('commands');
      const keep = await this.command(p.payload);
      if (!keep) {
        this.shutdown();
        return;
      }
    }
  }

  private async handshake(): Promise<boolean> {
    const opts = this.server.options;
    const scramble = newScramble();
    const hello = this.response(0)
      .begin()
      .int1(10)
      .zstr(SERVER_VERSION)
      .int4(this.id)
      .bytes(scramble.subarray(0, 8))
      .int1(0)
      .int2(SERVER_CAPABILITIES & 0xffff)
      .int1(CHARSET_UTF8MB4)
      .int2(STATUS.AUTOCOMMIT)
      .int2(SERVER_CAPABILITIES >>> 16)
      .int1(21)
      .zeros(10)
      .bytes(scramble.subarray(8))
      .int1(0)
      .zstr(opts.authPlugin)
      .end();
    await this.send(hello);
    const resp = await this.next();
    if (resp === undefined) return false;
    const r = new Reader(resp.payload);
    const caps = r.int4();
    if ((caps & CLIENT.PROTOCOL_41) === 0) {
      await this.sendAndClose(
        errPacket(
          this.response(resp.seq + 1),
          1047,
          '08S01',
          'clients before protocol 4.1 are not supported',
        ),
      );
      return false;
    }
    if ((caps & CLIENT.SSL) !== 0 && resp.payload.length === 32) {
      await this.sendAndClose(
        errPacket(this.response(resp.seq + 1), 1047, '08S01', 'TLS is not offered by this server'),
      );
      return false;
    }
    r.int4(); // max packet
    r.int1(); // charset
    r.raw(23);
    const user = r.zstr();
    let answer: Buffer;
    if ((caps & CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) answer = r.lbytes();
    else if ((caps & CLIENT.SECURE_CONNECTION) !== 0) answer = r.raw(r.int1());
    else answer = Buffer.from(r.zstr(), 'binary');
    const database = (caps & CLIENT.CONNECT_WITH_DB) !== 0 && r.left > 0 ? r.zstr() : '';
    let plugin = (caps & CLIENT.PLUGIN_AUTH) !== 0 && r.left > 0 ? r.zstr() : NATIVE;
    this.capabilities = caps & SERVER_CAPABILITIES;
    let seq = resp.seq + 1;
    const account = opts.accounts.find((a) => a.user === user);
    if (plugin !== NATIVE && plugin !== SHA2) {
      // A plugin we do not verify: ask for ours.
      plugin = opts.authPlugin;
      await this.send(this.response(seq).begin().int1(0xfe).zstr(plugin).bytes(scramble).int1(0).end());
      const again = await this.next();
      if (again === undefined) return false;
      answer = again.payload;
      seq = again.seq + 1;
    }
    if (account === undefined || !verify(account, plugin, scramble, answer)) {
      this.server.count('authFailures');
      // A delay makes guessing slow; other connections go on meanwhile.
      await new Promise((r2) => setTimeout(r2, opts.authFailureDelayMs));
      await this.sendAndClose(
        errPacket(
          this.response(seq),
          1045,
          '28000',
          `Access denied for user '${user}'@'${this.socket.remoteAddress ?? 'localhost'}' (using password: ${answer.length > 0 ? 'YES' : 'NO'})`,
        ),
      );
      return false;
    }
    this.session = this.server.db.session({ user, connectionId: this.id });
    if (database !== '' && database !== this.session.info.database) {
      await this.sendAndClose(errPacket(this.response(seq), 1049, '42000', `Unknown database '${database}'`));
      return false;
    }
    const w = this.response(seq);
    // caching_sha2_password's "fast authentication succeeded" comes before the OK.
    if (plugin === SHA2) w.begin().int1(0x01).int1(0x03).end();
    await this.send(okPacket(w, 0, 0, this.status()));
    return true;
  }

  private status(): number {
    let s = 0;
    if (this.session?.autocommit !== false) s |= STATUS.AUTOCOMMIT;
    if (this.session?.inTransaction === true) s |= STATUS.IN_TRANS;
    return s;
  }

  // ---- commands ----

  /** One command; false when the connection is to close. */
  private async command(payload: Buffer): Promise<boolean> {
    const session = this.session!;
    const cmd = payload[0];
    try {
      switch (cmd) {
        case COM.QUIT:
          return false;
        case COM.PING:
          await this.send(okPacket(this.response(1), 0, 0, this.status()));
          return true;
        case COM.INIT_DB:
          await session.query(`USE \`${payload.toString('utf8', 1).replace(/`/g, '')}\``);
          await this.send(okPacket(this.response(1), 0, 0, this.status()));
          return true;
        case COM.RESET_CONNECTION:
          session.end();
          this.session = this.server.db.session({ user: session.info.userName, connectionId: this.id });
          this.statements.clear();
          await this.send(okPacket(this.response(1), 0, 0, this.status()));
          return true;
        case COM.SET_OPTION:
          await this.send(endPacket(this.response(1), this.status(), false));
          return true;
        case COM.FIELD_LIST:
          // Deprecated (the mysql client's completion asks): no fields listed.
          await this.send(endPacket(this.response(1), this.status(), false));
          return true;
        case COM.STATISTICS: {
          const s = this.server.stats();
          await this.send(
            this.response(1).begin().eof(`Threads: ${s.connections}  Questions: ${s.commands}`).end(),
          );
          return true;
        }
        case COM.QUERY:
          await this.query(payload.toString('utf8', 1));
          return true;
        case COM.STMT_PREPARE:
          await this.prepare(payload.toString('utf8', 1));
          return true;
        case COM.STMT_EXECUTE:
          await this.execute(new Reader(payload.subarray(1)));
          return true;
        case COM.STMT_SEND_LONG_DATA: {
          const r = new Reader(payload.subarray(1));
          const st = this.statements.get(r.int4());
          const param = r.int2();
          if (st !== undefined) {
            const list = st.longData.get(param) ?? [];
            list.push(Buffer.from(r.rest()));
            st.longData.set(param, list);
          }
          return true; // no response
        }
        case COM.STMT_CLOSE:
          this.statements.delete(new Reader(payload.subarray(1)).int4());
          return true; // no response
        case COM.STMT_RESET: {
          const st = this.statements.get(new Reader(payload.subarray(1)).int4());
          if (st === undefined)
            throw new TidemarkError('NOT_FOUND', 'unknown prepared statement', {
              details: { mysqlErrno: 1243 },
            });
          st.longData.clear();
          await this.send(okPacket(this.response(1), 0, 0, this.status()));
          return true;
        }
        default:
          await this.send(errPacket(this.response(1), 1047, '08S01', `unknown command ${cmd}`));
          return true;
      }
    } catch (e) {
      if (e instanceof ProtocolError) throw e;
      const m = mysqlError(e);
      await this.send(errPacket(this.response(1), m.errno, m.state, m.message));
      return true;
    }
  }

  private async query(sql: string): Promise<void> {
    const session = this.session!;
    const text = sql.trim().replace(/;+\s*$/, '');
    if (!text.includes(';')) {
      const r = await session.query(text);
      const sent = this.send(this.result(this.response(1), r, false));
      if (sent !== undefined) await sent;
      return;
    }
    // Several statements: a result set each, all but the last flagged "more results".
    const results: QueryResult[] = [];
    let failure: unknown;
    try {
      await session.queryAll(text, [], (r) => results.push(r));
    } catch (e) {
      failure = e;
    }
    const w = this.response(1);
    results.forEach((r, i) => this.result(w, r, i < results.length - 1 || failure !== undefined));
    if (failure !== undefined) {
      const m = mysqlError(failure);
      errPacket(w, m.errno, m.state, m.message);
    }
    await this.send(w);
  }

  /**
   * A result as packets: OK for statements; for queries a result set, its rows in the text
   * protocol (COM_QUERY) or the binary one (COM_STMT_EXECUTE).
   */
  private result(w: PacketWriter, r: QueryResult, more: boolean, binary = false): PacketWriter {
    const status = this.status() | (more ? STATUS.MORE_RESULTS : 0);
    if (r.columns.length === 0) return okPacket(w, r.affectedRows, r.insertId ?? 0, status);
    const cols = describeColumns(r);
    w.begin().lenenc(cols.length).end();
    for (const c of cols) columnPacket(w, c);
    if (!this.deprecateEof) endPacket(w, status, false);
    for (const row of r.rows) {
      w.begin();
      if (binary) binaryRow(w, cols, row);
      else textRow(w, cols, row);
      w.end();
    }
    return endPacket(w, status, this.deprecateEof);
  }

  private async prepare(sql: string): Promise<void> {
    // Refuse what does not parse now, as MySQL does at prepare time.
    const params = this.server.db._sql.prepare(sql).params;
    const id = this.nextStatement++;
    this.statements.set(id, { sql, params, types: [], longData: new Map() });
    const w = this.response(1).begin().int1(0).int4(id).int2(0).int2(params).int1(0).int2(0).end();
    if (params > 0) {
      for (let i = 0; i < params; i++) columnPacket(w, PARAMETER);
      if (!this.deprecateEof) endPacket(w, this.status(), false);
    }
    await this.send(w);
  }

  private async execute(r: Reader): Promise<void> {
    const st = this.statements.get(r.int4());
    if (st === undefined) {
      throw new TidemarkError('NOT_FOUND', 'unknown prepared statement handler', {
        details: { mysqlErrno: 1243 },
      });
    }
    r.int1(); // flags (cursors are not offered)
    r.int4(); // iteration count, always 1
    const values: unknown[] = [];
    if (st.params > 0) {
      const nulls = r.raw((st.params + 7) >> 3);
      if (r.int1() === 1) {
        st.types = [];
        for (let i = 0; i < st.params; i++) st.types.push(r.int2());
      }
      for (let i = 0; i < st.params; i++) {
        const long = st.longData.get(i);
        if (long !== undefined) values.push(Buffer.concat(long).toString('utf8'));
        else if ((nulls[i >> 3]! & (1 << (i & 7))) !== 0) values.push(null);
        else values.push(readBinaryValue(r, st.types[i] ?? TYPE.VAR_STRING));
      }
      st.longData.clear();
    }
    const result = await this.session!.query(st.sql, values);
    const sent = this.send(this.result(this.response(1), result, false, true));
    if (sent !== undefined) await sent;
  }
}

/** A row's payload in the text protocol: each value a length-encoded string, NULL as 0xFB. */
function textRow(w: Writer, cols: readonly ColumnDef[], row: readonly unknown[]): void {
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (v === null || v === undefined) w.int1(0xfb);
    else w.lstr(textValue(v as SqlValue, cols[i]));
  }
}

/** A row's payload in the binary protocol: 0x00, a NULL bitmap (offset 2), then each non-NULL value by its column's type. */
function binaryRow(w: Writer, cols: readonly ColumnDef[], row: readonly unknown[]): void {
  w.int1(0);
  const bitmap = w.size;
  w.zeros((cols.length + 7 + 2) >> 3);
  for (let i = 0; i < cols.length; i++) {
    const v = row[i] as SqlValue | undefined;
    if (v === null || v === undefined) w.orByte(bitmap + ((i + 2) >> 3), 1 << ((i + 2) & 7));
    // A string in a string column, the usual value, goes straight in.
    else if (typeof v === 'string' && cols[i]!.type === TYPE.VAR_STRING) w.lstr(v);
    else writeBinaryValue(w, cols[i]!, v);
  }
}

class TooLarge extends Error {}

/** Column definitions from a result's values: MySQL types as clients convert them. */
export function describeColumns(r: QueryResult): ColumnDef[] {
  return r.columns.map((name, i) => {
    let kind: 'int' | 'uint' | 'decimal' | 'double' | 'string' | 'bytes' | 'date' | 'null' = 'null';
    let scale = 0;
    let digits = 1;
    let negative = false;
    for (const row of r.rows) {
      const v = row[i];
      if (v === null || v === undefined) continue;
      if (typeof v === 'number' || typeof v === 'bigint') {
        const int = typeof v === 'bigint' || Number.isSafeInteger(v);
        if (int && v < 0) negative = true;
        digits = Math.max(digits, int ? String(v).replace('-', '').length : 1);
        const big = typeof v === 'bigint' && v > 9223372036854775807n;
        if (kind === 'null' || kind === 'int' || kind === 'uint')
          kind = !int ? 'double' : big || (kind as string) === 'uint' ? 'uint' : 'int';
        else if (kind === 'decimal' && int)
          digits = Math.max(digits, String(v).replace('-', '').length + scale);
        else if (kind !== 'double') kind = 'string';
      } else if (v instanceof Decimal) {
        if (kind === 'null' || kind === 'int' || kind === 'uint' || kind === 'decimal') {
          kind = 'decimal';
          scale = Math.max(scale, v.s);
          digits = Math.max(digits, v.intDigits + scale);
        } else if (kind !== 'double') kind = 'string';
      } else if (typeof v === 'string') kind = 'string';
      else if (v instanceof Uint8Array) kind = kind === 'null' || kind === 'bytes' ? 'bytes' : 'string';
      else if (v instanceof Date) kind = kind === 'null' || kind === 'date' ? 'date' : 'string';
    }
    // Past BIGINT's range and negative values in one column: neither BIGINT nor BIGINT UNSIGNED
    // holds both, DECIMAL(20, 0) does (as MySQL types such a UNION).
    if (kind === 'uint' && negative) kind = 'decimal';
    switch (kind) {
      case 'int':
      case 'uint':
        return {
          name,
          type: TYPE.LONGLONG,
          charset: CHARSET_BINARY,
          length: 20,
          // BINARY, NUM; UNSIGNED when a value is past BIGINT's range.
          flags: 0x80 | 0x8000 | ((kind as string) === 'uint' ? 0x20 : 0),
          decimals: 0,
        };
      case 'decimal':
        // As MySQL describes DECIMAL(p, s): digits, a point and a sign; the text carries s digits.
        return {
          name,
          type: TYPE.NEWDECIMAL,
          charset: CHARSET_BINARY,
          length: Math.max(digits, scale + 1) + (scale > 0 ? 1 : 0) + 1,
          flags: 0x80 | 0x8000,
          decimals: scale,
        };
      case 'double':
        return {
          name,
          type: TYPE.DOUBLE,
          charset: CHARSET_BINARY,
          length: 22,
          flags: 0x80 | 0x8000,
          decimals: 31,
        };
      case 'bytes':
        return {
          name,
          type: TYPE.BLOB,
          charset: CHARSET_BINARY,
          length: 65535,
          flags: 0x80 | 0x10,
          decimals: 0,
        };
      case 'date':
        return { name, type: TYPE.DATETIME, charset: CHARSET_BINARY, length: 23, flags: 0x80, decimals: 3 };
      default:
        return {
          name,
          type: TYPE.VAR_STRING,
          charset: CHARSET_UTF8MB4,
          length: 1020,
          flags: 0,
          decimals: 31,
        };
    }
  });
}

/** A value as the text protocol sends it (in a DECIMAL column, every value with its scale). */
function textValue(v: SqlValue, col?: ColumnDef): string | Uint8Array {
  if (
    col?.type === TYPE.NEWDECIMAL &&
    (typeof v === 'number' || typeof v === 'bigint' || v instanceof Decimal)
  )
    return toDecimalValue(v).rescale(col.decimals).toString();
  if (v instanceof Uint8Array) return v;
  if (v instanceof Date) return dateText(v);
  return toText(v);
}

function writeBinaryValue(w: Writer, col: ColumnDef, v: SqlValue): void {
  const type = col.type;
  switch (type) {
    case TYPE.LONGLONG:
      if (typeof v === 'bigint') w.int8(v);
      else w.int64(Math.trunc(typeof v === 'number' ? v : Number(toText(v))));
      return;
    case TYPE.DOUBLE:
      w.double(typeof v === 'number' ? v : Number(toText(v)));
      return;
    case TYPE.DATETIME: {
      const d = v instanceof Date ? v : new Date(toText(v));
      const ms = d.getUTCMilliseconds();
      w.int1(ms !== 0 ? 11 : 7)
        .int2(d.getUTCFullYear())
        .int1(d.getUTCMonth() + 1)
        .int1(d.getUTCDate())
        .int1(d.getUTCHours())
        .int1(d.getUTCMinutes())
        .int1(d.getUTCSeconds());
      if (ms !== 0) w.int4(ms * 1000);
      return;
    }
    case TYPE.BLOB:
      w.lstr(v instanceof Uint8Array ? v : toText(v));
      return;
    default:
      w.lstr(textValue(v, col));
  }
}

/** A parameter of COM_STMT_EXECUTE in the binary protocol (type: low byte, 0x8000 unsigned). */
function readBinaryValue(r: Reader, type: number): unknown {
  const unsigned = (type & 0x8000) !== 0;
  switch (type & 0xff) {
    case TYPE.NULL:
      return null;
    case TYPE.TINY: {
      const v = r.sint(1);
      return unsigned ? v & 0xff : v;
    }
    case TYPE.SHORT:
    case TYPE.YEAR: {
      const v = r.sint(2);
      return unsigned ? v & 0xffff : v;
    }
    case TYPE.LONG:
    case TYPE.INT24: {
      const v = r.sint(4);
      return unsigned ? v >>> 0 : v;
    }
    case TYPE.LONGLONG:
      return r.int64(unsigned);
    case TYPE.NEWDECIMAL:
    case TYPE.DECIMAL: {
      // Sent as text: a DECIMAL parameter, exact.
      const t = Buffer.from(r.lbytes()).toString('utf8');
      return Decimal.parse(t) ?? t;
    }
    case TYPE.FLOAT:
      return r.float();
    case TYPE.DOUBLE:
      return r.double();
    case TYPE.DATE:
    case TYPE.DATETIME:
    case TYPE.TIMESTAMP: {
      const n = r.int1();
      if (n === 0) return new Date(Date.UTC(0, 0, 0));
      const y = r.int2();
      const mo = r.int1();
      const d = r.int1();
      let h = 0;
      let mi = 0;
      let s = 0;
      let us = 0;
      if (n >= 7) {
        h = r.int1();
        mi = r.int1();
        s = r.int1();
      }
      if (n >= 11) us = r.int4();
      return new Date(Date.UTC(y, mo - 1, d, h, mi, s, Math.floor(us / 1000)));
    }
    case TYPE.TIME: {
      const n = r.int1();
      const b = r.raw(n);
      return n === 0 ? '00:00:00' : `${b[5]}:${b[6]}:${b[7]}`;
    }
    case TYPE.BLOB:
    case TYPE.TINY_BLOB:
    case TYPE.MEDIUM_BLOB:
    case TYPE.LONG_BLOB:
      return new Uint8Array(r.lbytes());
    default:
      return r.lbytes().toString('utf8');
  }
}
