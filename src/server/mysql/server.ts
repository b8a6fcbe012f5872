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
import { SHA2, type Account, type NATIVE } from './auth.js';
import { Connection, type ConnectionHost } from './connection.js';
import { PacketWriter, errPacket } from './protocol.js';

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

/** The MySQL server of one database. */
export class MysqlServer implements ConnectionHost {
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
