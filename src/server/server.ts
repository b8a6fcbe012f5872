import { createReadStream, existsSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Database } from '../api/database.js';
import { invalidArgument, TidemarkError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { Metrics } from '../metrics/metrics.js';
import { History } from './history.js';

export interface ServerOptions {
  /** Default 7070; 0 picks a free port (see `url`). */
  port?: number;
  /** Default 127.0.0.1: reachable from this machine only. */
  host?: string;
  /** Register prom-client's default process metrics too (default true). */
  defaultMetrics?: boolean;
  log?: Logger;
}

/** The dashboard's files, and where uPlot (its chart library, from npm) lives. */
const ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../assets/dashboard');
const requireFrom = createRequire(import.meta.url);
const UPLOT = path.dirname(requireFrom.resolve('uplot/dist/uPlot.iife.min.js'));

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(ASSETS, 'index.html'), type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: path.join(ASSETS, 'dashboard.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: path.join(ASSETS, 'dashboard.css'), type: 'text/css; charset=utf-8' },
  '/vendor/uPlot.iife.min.js': {
    file: path.join(UPLOT, 'uPlot.iife.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  '/vendor/uPlot.min.css': { file: path.join(UPLOT, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

const LOOPBACK = new Set(['127.0.0.1', '::1', '[::1]', 'localhost']);

/** Whether a host name or address reaches this machine only. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host);
}

/** The longest heap-profile sampling a request may ask for. */
const HEAP_SECONDS_MAX = 30;

/**
 * The HTTP face of a database (`tidemark serve`): `/metrics` (Prometheus text), `/api/stats`
 * (`db.stats()` and a few minutes of history), `/` (the dashboard, with its chart library served
 * from this package: the page loads nothing from elsewhere), `/debug/leaks` (live pooled buffers
 * and file handles by holder, with where they were allocated where recorded), `/debug/heap` (a
 * sampled heap profile, for Chrome DevTools). GET only; nothing here writes to the database.
 */
export class TidemarkServer {
  private heapBusy = false;
  /** Ends a heap profile's sampling early (close). */
  private readonly closing = new AbortController();
  /** Host names a request may carry (DNS rebinding): undefined when bound beyond loopback. */
  private readonly hosts: ReadonlySet<string> | undefined;

  private constructor(
    private readonly db: Database,
    private readonly http: Server,
    readonly metrics: Metrics,
    readonly history: History,
    private readonly logger: Logger,
    host: string,
  ) {
    this.hosts = isLoopbackHost(host) ? LOOPBACK : undefined;
  }

  static async start(db: Database, options: ServerOptions = {}): Promise<TidemarkServer> {
    const port = options.port ?? 7070;
    const host = options.host ?? '127.0.0.1';
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw invalidArgument(`port must be an integer from 0 to 65535, got ${String(port)}`);
    if (typeof host !== 'string' || host === '') throw invalidArgument('host must be a non-empty string');
    for (const s of Object.values(STATIC)) {
      if (!existsSync(s.file))
        throw new TidemarkError(
          'NOT_FOUND',
          `the dashboard file ${s.file} is missing: is the package complete?`,
        );
    }
    const logger = options.log ?? createLogger(undefined);
    const metrics = new Metrics(db, { defaultMetrics: options.defaultMetrics ?? true });
    const history = new History(db);
    const http = createServer();
    const server = new TidemarkServer(db, http, metrics, history, logger, host);
    http.on('request', (req: IncomingMessage, res: ServerResponse) => {
      server.handle(req, res).catch((e: unknown) => {
        logger.error({ err: e, url: req.url }, 'request failed');
        if (!res.headersSent)
          server.send(res, 500, 'text/plain; charset=utf-8', `internal error: ${String(e)}\n`);
        else res.destroy();
      });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
          http.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      history.close();
      metrics.close();
      const err = e as NodeJS.ErrnoException;
      throw new TidemarkError(
        err.code === 'EADDRINUSE' ? 'INVALID_ARGUMENT' : 'IO',
        `cannot listen on ${host}:${port}: ${err.message}`,
        { cause: e, details: { errno: err.code } },
      );
    }
    return server;
  }

  /** Where it listens, e.g. http://127.0.0.1:7070/ */
  get url(): string {
    const a = this.http.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}/`;
  }

  get address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  /** Stop listening, end open connections, stop sampling. The database stays open. */
  async close(): Promise<void> {
    this.closing.abort();
    this.history.close();
    this.metrics.close();
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    // Bound to loopback, answer only requests addressed to loopback: a web page that rebinds its
    // own name to 127.0.0.1 must not read the stats or start heap profiles.
    if (this.hosts !== undefined) {
      const hostname = (req.headers.host ?? '').replace(/:\d+$/, '');
      if (!this.hosts.has(hostname)) {
        this.send(res, 403, 'text/plain; charset=utf-8', `not served to host ${JSON.stringify(hostname)}\n`);
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      this.send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
      return;
    }
    const asset = STATIC[url.pathname];
    if (asset !== undefined) {
      res.writeHead(200, { 'Content-Type': asset.type, 'Cache-Control': 'no-cache' });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      // (pipeline closes the file when the client goes away early.)
      await pipeline(createReadStream(asset.file), res).catch((e: unknown) => {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ERR_STREAM_PREMATURE_CLOSE')
          this.logger.error({ err: e, file: asset.file }, 'cannot send a dashboard file');
      });
      return;
    }
    try {
      await this.route(url, res);
    } catch (e) {
      if (!(e instanceof TidemarkError) || e.code !== 'CLOSED') throw e;
      this.send(res, 503, 'text/plain; charset=utf-8', `the database is closed\n`);
    }
  }

  private async route(url: URL, res: ServerResponse): Promise<void> {
    switch (url.pathname) {
      case '/metrics':
        this.db.stats(); // (CLOSED when it is: no stale figures)
        this.send(res, 200, this.metrics.contentType, await this.metrics.text());
        return;
      case '/api/stats':
        this.json(res, {
          now: Date.now(),
          dir: this.db.dir,
          stats: this.db.stats(),
          ...this.history.snapshot(),
        });
        return;
      case '/debug/leaks':
        this.json(res, this.leaks());
        return;
      case '/debug/heap':
        await this.heap(url, res);
        return;
      default:
        this.send(res, 404, 'text/plain; charset=utf-8', `no such page: ${url.pathname}\n`);
    }
  }

  /** Live pooled buffers by pool and owner, and open file handles, with allocation sites. */
  private leaks(): unknown {
    const held = this.db._holders();
    const pools = this.db.stats().memory.pools;
    return {
      note: 'what is live now; at quiescence only long-lived holders (caches, memtables, the WAL buffer) should remain. Stacks are recorded at memory.leakDetection advanced and paranoid (sampled at simple).',
      pools: Object.entries(pools).map(([name, p]) => ({
        pool: name,
        bytes: p.bytes,
        handles: p.handles,
        holders: held.pools
          .filter((h) => h.scope === name)
          .map((h) => ({
            owner: h.owner,
            count: h.count,
            bytes: h.bytes,
            ...(h.stack !== undefined ? { allocatedAt: h.stack } : {}),
          })),
      })),
      files: held.files.map((f) => ({
        path: f.path,
        kind: f.kind,
        mode: f.mode,
        openForMs: Date.now() - f.openedAtMs,
        openedAt: f.stack,
      })),
    };
  }

  /** A sampled heap profile over `seconds` (default 2), in the .heapprofile format of DevTools. */
  private async heap(url: URL, res: ServerResponse): Promise<void> {
    const seconds = Number(url.searchParams.get('seconds') ?? 2);
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > HEAP_SECONDS_MAX) {
      this.send(res, 400, 'text/plain; charset=utf-8', `seconds must be from 0 to ${HEAP_SECONDS_MAX}\n`);
      return;
    }
    if (this.heapBusy) {
      this.send(res, 409, 'text/plain; charset=utf-8', 'a heap profile is being taken already\n');
      return;
    }
    this.heapBusy = true;
    const session = new Session();
    try {
      session.connect();
      await session.post('HeapProfiler.enable');
      await session.post('HeapProfiler.startSampling', { samplingInterval: 32 * 1024 });
      // Sample for the time asked, or until the server closes.
      await new Promise<void>((resolve) => {
        const signal = this.closing.signal;
        const done = () => {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, seconds * 1000);
        signal.addEventListener('abort', done);
        if (signal.aborted) done();
      });
      const { profile } = await session.post('HeapProfiler.stopSampling');
      res.setHeader('Content-Disposition', 'attachment; filename="tidemark.heapprofile"');
      this.json(res, profile);
    } finally {
      session.disconnect();
      this.heapBusy = false;
    }
  }

  private json(res: ServerResponse, body: unknown): void {
    this.send(res, 200, 'application/json; charset=utf-8', JSON.stringify(body));
  }

  private send(res: ServerResponse, status: number, type: string, body: string): void {
    res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }
}
