import { check } from '../../src/db/check.js';
import { open, type OpenOptions } from '../../src/index.js';
import { spawnTs } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';
import { ensureSchema, Rng, TortureModel, type Event } from './workload.js';

/**
 * The kill -9 loop of kill.test.ts (and of the object-storage torture test): a child process runs
 * the workload with background checkpoints, compaction and GC at short intervals; it is killed with
 * SIGKILL at a random moment; the database is opened and checked against the model.
 * `objectStore`: the child and every open keep objects and checkpoints in that bucket and prefix
 * (`tidemark check`, which reads a local directory, is then left out).
 */
/** Start the child, let it work a random while, kill it: the events it reported reach the model. */
async function runAndKill(
  dir: string,
  i: number,
  rng: Rng,
  model: TortureModel,
  objectStore: OpenOptions['objectStore'],
): Promise<number> {
  const child = spawnTs('test/torture/kill_child.ts', [
    dir,
    String(i + 1),
    String(i * 1_000_000),
    `r${i}`,
    ...(objectStore ? [JSON.stringify(objectStore)] : []),
  ]);
  let acks = 0;
  let buf = '';
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const ev = JSON.parse(line) as Event | { e: 'ready' };
      if (ev.e === 'ready') ready();
      else {
        model.apply(ev);
        if (ev.e === 'ack') acks++;
      }
    }
  });
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  await Promise.race([isReady, exited]);
  // Let it work for a random while: from a few commits to several checkpoints.
  await new Promise((r) => setTimeout(r, 20 + rng.int(300)));
  child.kill('SIGKILL');
  const code = await exited;
  if (code !== null) throw new Error(`run ${i}: the child ended by itself (exit ${code}): ${stderr}`);
  return acks;
}

/** Kill and recover `kills` times; stop at the first problem. */
export async function killLoop(
  kills: number,
  objectStore?: OpenOptions['objectStore'],
): Promise<{ acks: number; problems: string[] }> {
  const { dir, cleanup } = tempDir('tidemark-kill-');
  const rng = new Rng(Number(process.env['TIDEMARK_SEED'] ?? 1));
  const model = new TortureModel();
  let acks = 0;
  try {
    const setup = await open(dir, { ...(objectStore ? { objectStore } : {}) });
    await ensureSchema(setup);
    await setup.close();
    for (let i = 0; i < kills; i++) {
      acks += await runAndKill(dir, i, rng, model, objectStore);
      // After the kill: it opens, and holds exactly what was acknowledged (or was in flight).
      let db;
      try {
        db = await open(dir, {
          memory: { leakDetection: 'paranoid' },
          ...(objectStore ? { objectStore } : {}),
        });
      } catch (e) {
        return { acks, problems: [`after kill ${i + 1}: open failed: ${(e as Error).message}`] };
      }
      const problems = (await model.verify(db)).map((p) => `after kill ${i + 1}: ${p}`);
      await db.close();
      if (objectStore === undefined) {
        const report = await check(dir);
        problems.push(...report.problems.map((p) => `after kill ${i + 1}: tidemark check: ${p}`));
      }
      if (problems.length > 0) return { acks, problems };
    }
    return { acks, problems: [] };
  } finally {
    cleanup();
  }
}
