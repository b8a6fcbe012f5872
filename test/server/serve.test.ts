import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ROOT, spawnTs, waitForLine } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `tidemark serve --demo` in a process of its own: the demo workload commits and checkpoints
 * within seconds; the dashboard renders its charts in a real headless Chromium with no console
 * error and nothing loaded from elsewhere (a screenshot goes to test-artifacts/); SIGTERM and
 * SIGINT close the database cleanly and exit 0.
 */

const ARTIFACTS = path.join(ROOT, 'test-artifacts');

function chromiumPath(): string {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/ensure-chromium.sh')], { encoding: 'utf8' });
  const p = r.stdout.trim();
  if (r.status !== 0 || !existsSync(p))
    throw new Error(`no Chromium for the dashboard test (scripts/ensure-chromium.sh): ${r.stderr}`);
  return p;
}

interface Served {
  child: ChildProcess;
  url: string;
  out: () => string;
  exit: Promise<number | null>;
}

async function serve(dir: string, demo: boolean): Promise<Served> {
  const child = spawnTs('src/cli/main.ts', [
    'serve',
    '--dir',
    dir,
    '--port',
    '0',
    '--mysql-port',
    '0',
    ...(demo ? ['--demo'] : []),
  ]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const line = await waitForLine(child, /serving .* at (http:\/\/\S+)/, 30_000);
  return { child, url: /at (http:\/\/\S+)/.exec(line)![1]!, out: () => out, exit };
}

interface Stats {
  stats: { transactions: { committed: number }; checkpoints: { incremental: number } };
  history: unknown[];
  checkpoints: { kind: string; ok: boolean }[];
}

let tmp: { dir: string; cleanup: () => void };
let served: Served;
beforeAll(async () => {
  tmp = tempDir('tidemark-serve-');
  served = await serve(tmp.dir, true);
}, 60_000);
afterAll(() => {
  served?.child.kill('SIGKILL');
  tmp?.cleanup();
});

test('the demo workload commits and checkpoints within seconds', async () => {
  let s: Stats | undefined;
  for (let i = 0; i < 150; i++) {
    s = (await (await fetch(new URL('/api/stats', served.url))).json()) as Stats;
    if (s.stats.transactions.committed > 50 && s.checkpoints.some((c) => c.kind === 'incremental' && c.ok))
      break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(s!.stats.transactions.committed).toBeGreaterThan(50);
  expect(s!.checkpoints.filter((c) => c.ok && c.kind === 'incremental').length).toBeGreaterThan(0);
}, 60_000);

test('the dashboard renders live charts in headless Chromium, with no console error and nothing from elsewhere', async () => {
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    const origin = new URL(served.url).origin;
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:'))
        problems.push(`loaded from elsewhere: ${r.url()}`);
    });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    await page.goto(served.url);
    // Refreshed every second: wait for a few updates, then look at what the charts hold.
    // (Browser code as strings: the tests are compiled without the DOM library.)
    await page.waitForFunction('Number(document.body.dataset.updates ?? 0) >= 4', undefined, {
      timeout: 30_000,
    });
    // Per chart: how many x values, and how many positive y values, it holds.
    const charts = await page.evaluate<Record<string, { points: number; values: number }>>(
      `Object.fromEntries(Object.entries(window.tidemark.charts).map(([id, c]) => [id, {
        points: c.data[0].length,
        values: c.data.slice(1).flat().filter((v) => v !== null && v > 0).length,
      }]))`,
    );
    for (const id of ['chart-pools', 'chart-commits', 'chart-wal'])
      expect(charts[id]!.points, `${id} has data`).toBeGreaterThanOrEqual(3);
    expect(charts['chart-pools']!.values).toBeGreaterThan(0);
    expect(charts['chart-commits']!.values, 'commit latencies charted').toBeGreaterThan(0);
    expect(charts['chart-checkpoints']!.points, 'checkpoint marks').toBeGreaterThan(0);
    // The canvases were drawn (uPlot draws on canvas; a blank one has no colour).
    const inked = await page.evaluate<number[]>(`[...document.querySelectorAll('canvas')].map((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    })`);
    expect(inked.length).toBe(4);
    for (const n of inked) expect(n).toBeGreaterThan(500);
    expect(await page.locator('#checkpoints tbody tr').count()).toBeGreaterThan(0);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(problems).toEqual([]);
  } finally {
    await browser.close();
  }
}, 90_000);

test('SIGTERM closes the database cleanly and exits 0', async () => {
  served.child.kill('SIGTERM');
  expect(await served.exit).toBe(0);
  expect(served.out()).toMatch(/SIGTERM: closing[\s\S]*closed cleanly/);
  expect(served.out()).not.toMatch(/leak|error/i);
}, 60_000);

test('SIGINT too, and the directory opens again', async () => {
  const again = await serve(tmp.dir, false);
  again.child.kill('SIGINT');
  expect(await again.exit).toBe(0);
  expect(again.out()).toMatch(/SIGINT: closing[\s\S]*closed cleanly/);
}, 60_000);
