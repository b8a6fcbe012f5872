import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy on 127.0.0.1 in front of an S3-compatible server (moto), that fails requests on
 * the wire: the Nth request from a reset, and every retry of it (the same method and URL), answered
 * with a 500 InternalError or left without an answer until the client gives up (a timeout).
 * The client under test talks to `endpoint`; everything else is forwarded untouched.
 */
export type ProxyFault = '500' | 'timeout';

export interface S3FaultProxy {
  endpoint: string;
  /** Requests (each attempt counts) since the last reset. */
  readonly seen: number;
  /** Attempts failed on purpose since the last reset. */
  readonly injected: number;
  /** Zero the counts and drop the fault. */
  reset(): void;
  /**
   * Fail the nth request from now and its retries: `times` attempts of that method and URL in all
   * (give the client's attempt count to fail it past its retries).
   */
  failNth(n: number, mode: ProxyFault, times: number): void;
  close(): Promise<void>;
}

export async function startS3FaultProxy(target: string): Promise<S3FaultProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  let seen = 0;
  let injected = 0;
  let rule: { n: number; mode: ProxyFault; times: number; sig?: string; failed: number } | undefined;

  const server = http.createServer((req, res) => {
    seen++;
    const sig = `${req.method} ${req.url}`;
    let fault: ProxyFault | undefined;
    if (rule !== undefined && rule.failed < rule.times) {
      if (rule.sig === undefined && seen === rule.n) rule.sig = sig;
      if (rule.sig === sig) {
        rule.failed++;
        fault = rule.mode;
      }
    }
    if (fault !== undefined) {
      injected++;
      req.resume(); // read the body, answer (or not) afterwards
      if (fault === '500')
        req.on('end', () => {
          res.writeHead(500, { 'content-type': 'application/xml' });
          res.end(
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>',
          );
        });
      // 'timeout': no answer; the client's abort closes the socket.
      return;
    }
    const up = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get seen() {
      return seen;
    },
    get injected() {
      return injected;
    },
    reset() {
      seen = 0;
      injected = 0;
      rule = undefined;
    },
    failNth(n, mode, times) {
      rule = { n, mode, times, failed: 0 };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
