import { open } from '../db/database.js';
import { LeakError } from '../errors.js';
import { createLogger } from '../log.js';
import { DemoWorkload } from '../server/demo_workload.js';
import { TidemarkServer } from '../server/server.js';

export interface ServeOptions {
  dir: string;
  port: number;
  host: string;
  demo: boolean;
}

/**
 * `tidemark serve`: open the database, serve metrics, stats and the dashboard, and run until
 * SIGINT or SIGTERM, then close everything (a leak makes the exit code 1). Resolves with the exit
 * code.
 */
export async function serve(opts: ServeOptions, print: (line: string) => void): Promise<number> {
  const logger = createLogger({ level: 'warn' });
  const db = await open(opts.dir, {
    log: logger,
    // The demo checkpoints every few seconds, so that the timeline fills within the first minute.
    ...(opts.demo
      ? {
          checkpoint: { intervalMs: 3_000, incrementalsPerGlobal: 5 },
          storage: { memtableRowsMax: 20_000 },
        }
      : {}),
  });
  let server: TidemarkServer | undefined;
  let demo: DemoWorkload | undefined;
  try {
    server = await TidemarkServer.start(db, { port: opts.port, host: opts.host, log: logger });
    if (opts.demo) demo = await DemoWorkload.start(db, logger);
  } catch (e) {
    await server?.close();
    await db.close();
    throw e;
  }
  // Listen for the signals before saying where we are: whoever reads the URL may signal at once.
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  print(`tidemark: serving ${opts.dir} at ${server.url}${opts.demo ? ' (demo workload running)' : ''}`);
  print(`tidemark: metrics at ${server.url}metrics; Ctrl-C to stop`);
  const signal = await stopped;
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  print(`tidemark: ${signal}: closing`);
  await demo?.stop();
  await server.close();
  try {
    await db.close();
  } catch (e) {
    if (e instanceof LeakError) {
      print(`tidemark: closed with a leak: ${e.message}`);
      for (const h of e.holders)
        print(`  ${h.scope} ${h.owner}: ${h.count} (${h.bytes} bytes)${h.stack ? `\n${h.stack}` : ''}`);
      return 1;
    }
    throw e;
  }
  print('tidemark: closed cleanly');
  return 0;
}
