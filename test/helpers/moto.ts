import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './net.js';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';

/**
 * An S3-compatible server on 127.0.0.1 for the tests: moto_server (Python), which enforces
 * conditional writes (If-None-Match, If-Match). Started on a free port, stopped by `stop()`.
 */
export interface Moto {
  endpoint: string;
  client: S3Client;
  /** A new, empty bucket. */
  bucket(): Promise<string>;
  stop(): Promise<void>;
}

export const CREDENTIALS = { accessKeyId: 'tidemark', secretAccessKey: 'tidemark-secret' };

export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess;
  try {
    child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (e) {
    throw new Error(`could not start moto_server (pip install 'moto[server]'): ${String(e)}`);
  }
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  child.on('error', () => undefined);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${endpoint}/`);
      if (res.status < 500) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error(`moto_server did not start on ${endpoint}: ${stderr.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { ...CREDENTIALS },
  });
  let n = 0;
  return {
    endpoint,
    client,
    async bucket() {
      const name = `tidemark-test-${process.pid}-${++n}`;
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async stop() {
      client.destroy();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * For a test file: moto_server started before its tests and stopped after them. Returns a getter
 * (the server exists only once the tests run).
 */
export function useMoto(): () => Moto {
  let moto: Moto | undefined;
  beforeAll(async () => {
    moto = await startMoto();
  }, 60_000);
  afterAll(async () => {
    await moto?.stop();
  });
  return () => {
    if (moto === undefined) throw new Error('moto_server is not running (useMoto outside a test?)');
    return moto;
  };
}
