// moto_server (an S3-compatible server, Python) on 127.0.0.1 for the object-storage benchmark.
/* global fetch */
import { spawn } from 'node:child_process';
import { freePort } from './proc.mjs';

/** Start moto_server on a free loopback port; resolves with its endpoint and a stop(). */
export async function startMoto() {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  child.on('error', () => undefined);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${endpoint}/`)).status < 500) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('moto_server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    async createBucket(name) {
      const res = await fetch(`${endpoint}/${name}`, { method: 'PUT' });
      if (res.status >= 300) throw new Error(`create bucket ${name}: ${res.status}`);
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
