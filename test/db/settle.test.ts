import { expect, test } from 'vitest';
import { runTs } from '../helpers/child.js';

/**
 * Awaited calls always settle, and keep the process alive until they do: in a child process (so
 * that nothing the test runner holds keeps the event loop alive), insert, flush, compact and
 * checkpoints run with one I/O fault at the Nth operation of a kind, for every N a clean run
 * makes (test/fixtures/settle_child.ts). A promise left pending with nothing ref'd makes Node exit
 * before the last line (exit code 13 for the pending top-level await); a rejection that is not a
 * TidemarkError fails the child.
 */
test('every awaited call settles under a fault at every write, sync, rename, delete and open', async () => {
  const r = await runTs('test/fixtures/settle_child.ts');
  expect(r.stderr.slice(-3000)).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^all settled \(\d+ faulted runs\)$/m);
  // The faults did land: flushes and checkpoints failed with IO and were reported.
  expect(r.stdout).toMatch(/"flush IO":\d+/);
  expect(r.stdout).toMatch(/"compact IO":\d+/);
}, 120_000);
