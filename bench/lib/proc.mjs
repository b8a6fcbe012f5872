// Helpers shared by the benchmark processes: JSON-lines output from children, and reading it.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * Run `node --expose-gc script ...args` and resolve with the JSON objects it printed, one per line
 * (each also passed to `onLine` as it arrives). Rejects if the child fails.
 */
export function runJsonLines(script, args, onLine = () => {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const results = [];
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        const r = JSON.parse(line);
        results.push(r);
        onLine(r);
      }
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(results) : reject(new Error(`${script} ${args.join(' ')} exited ${code}`)),
    );
  });
}

/**
 * In an engine's child process: `out(result)` prints one JSON line with the engine, its settings and
 * the peak RSS so far (sampled every 50 ms until `stop()`).
 */
export function reporter(engine, settings) {
  let peakRss = 0;
  const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  return {
    out: (r) =>
      process.stdout.write(
        JSON.stringify({
          engine,
          settings,
          peakRssMiB: Math.round(Math.max(peakRss, process.memoryUsage.rss()) / 2 ** 20),
          ...r,
        }) + '\n',
      ),
    stop: () => clearInterval(timer),
  };
}

/** Bytes to MiB, rounded; null stays null. */
export function toMiB(b) {
  return b === null || b === undefined ? null : Math.round(b / 2 ** 20);
}

/** A free TCP port on 127.0.0.1 (for a server a benchmark starts). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
