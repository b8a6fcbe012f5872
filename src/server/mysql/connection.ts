import type * as net from 'node:net';
import type { Database } from '../../api/database.js';
import { TidemarkError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PooledBuffer, Reservation } from '../../mem/buffer.js';
import type { MemoryPool } from '../../mem/pool.js';
import type { SqlSession } from '../../sql/session.js';
import type { QueryResult } from '../../txn/query.js';
import { NATIVE, SHA2, newScramble, verify, type Account } from './auth.js';
import { mysqlError } from './errors.js';
import {
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
import type { StatementShape } from '../../sql/describe.js';
import {
  binaryRow,
  declaredColumns,
  describeColumns,
  executedColumns,
  readBinaryValue,
  textRow,
} from './values.js';

/** What a connection needs of its server (MysqlServer): the database, the options, the counters. */
export interface ConnectionHost {
  readonly db: Database;
  readonly options: {
    readonly accounts: readonly Account[];
    readonly maxPacketBytes: number;
    readonly idleTimeoutMs: number;
    readonly authFailureDelayMs: number;
    readonly authPlugin: typeof NATIVE | typeof SHA2;
    readonly log: Logger | undefined;
  };
  count(what: 'authFailures' | 'protocolErrors' | 'commands'): void;
  stats(): { connections: number; commands: number };
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

interface Prepared {
  sql: string;
  params: number;
  /** What the SQL layer said the statement gives, and the column definitions declared from it. */
  shape: StatementShape;
  declared: { defs: ColumnDef[]; known: boolean[] };
  /** Parameter types from the last execute that sent them. */
  types: number[];
  longData: Map<number, Buffer[]>;
}

/** One client connection: the handshake, then commands one at a time. */
export class Connection {
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
    private readonly server: ConnectionHost,
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
    // caching_sha2_password's "fast authentication succeeded" comes before the OK, unless the
    // client sent no scramble (an empty password): MySQL answers that with the OK alone, and
    // libmariadb (the mariadb client, sysbench) reads nothing else.
    if (plugin === SHA2 && answer.length > 0) w.begin().int1(0x01).int1(0x03).end();
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
  private result(
    w: PacketWriter,
    r: QueryResult,
    more: boolean,
    binary = false,
    cols: ColumnDef[] = r.columns.length === 0 ? [] : describeColumns(r),
  ): PacketWriter {
    const status = this.status() | (more ? STATUS.MORE_RESULTS : 0);
    if (r.columns.length === 0) return okPacket(w, r.affectedRows, r.insertId ?? 0, status);
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

  /**
   * COM_STMT_PREPARE: the statement's id, its parameters and the columns of the result set its
   * executions give (as MySQL answers, so that a client knows whether to read one), each followed by
   * an EOF packet unless the client asked for DEPRECATE_EOF. A statement that does not parse or
   * names an unknown table or column is refused now, as MySQL refuses it.
   */
  private async prepare(sql: string): Promise<void> {
    const shape = await this.server.db._sql.describe(sql, this.session!.info.database);
    // A result whose columns only a run tells (rare: SHOW forms not described) is declared with
    // none, as MySQL does for such statements; its execution then brings the columns.
    const declared = declaredColumns(shape.columns ?? []);
    const id = this.nextStatement++;
    const params = shape.params;
    this.statements.set(id, { sql, params, shape, declared, types: [], longData: new Map() });
    const w = this.response(1)
      .begin()
      .int1(0)
      .int4(id)
      .int2(declared.defs.length)
      .int2(params)
      .int1(0)
      .int2(0)
      .end();
    if (params > 0) {
      for (let i = 0; i < params; i++) columnPacket(w, PARAMETER);
      if (!this.deprecateEof) endPacket(w, this.status(), false);
    }
    if (declared.defs.length > 0) {
      for (const c of declared.defs) columnPacket(w, c);
      if (!this.deprecateEof) endPacket(w, this.status(), false);
    }
    await this.send(w);
  }

  /**
   * The column definitions of an execution's result: those declared at prepare (re-declared if the
   * schema changed since, as MySQL re-prepares), a column of unknown kind described by its values.
   */
  private async executedColumns(st: Prepared, result: QueryResult): Promise<ColumnDef[]> {
    let shape: StatementShape;
    try {
      shape = await this.server.db._sql.describe(st.sql, this.session!.info.database);
    } catch {
      return describeColumns(result);
    }
    if (shape !== st.shape) {
      st.shape = shape;
      st.declared = declaredColumns(shape.columns ?? []);
    }
    return shape.columns === undefined ? describeColumns(result) : executedColumns(st.declared, result);
  }

  private async execute(r: Reader): Promise<void> {
    const st = this.statements.get(r.int4());
    if (st === undefined) {
      throw new TidemarkError('NOT_FOUND', 'unknown prepared statement handler', {
        details: { mysqlErrno: 1243 },
      });
    }
    // Flags: a cursor asked for (CURSOR_TYPE_READ_ONLY) is not opened; the whole result set follows
    // without SERVER_STATUS_CURSOR_EXISTS, which clients take as the answer (libmariadb then reads
    // it at once, as for a statement MySQL opens no cursor for).
    r.int1();
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
    const cols = result.columns.length === 0 ? [] : await this.executedColumns(st, result);
    const sent = this.send(this.result(this.response(1), result, false, true, cols));
    if (sent !== undefined) await sent;
  }
}

class TooLarge extends Error {}
