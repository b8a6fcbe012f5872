import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Start a TypeScript file of the repository in a child Node process (through tsx). */
export function spawnTs(file: string, args: string[] = [], execArgv: string[] = []): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', ...execArgv, path.join(ROOT, file), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Run to completion; resolves with stdout, stderr and the exit code. */
export function runTs(
  file: string,
  args: string[] = [],
  execArgv: string[] = [],
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const child = spawnTs(file, args, execArgv);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code }));
  });
}

/** Resolve when the child's stdout has printed a line matching `re`. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${re} (got ${JSON.stringify(buf)})`)),
      timeoutMs,
    );
    const onData = (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(line);
      }
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}) before printing ${re}; output ${JSON.stringify(buf)}`));
    });
  });
}
