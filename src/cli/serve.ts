import { open } from '../api/database.js';
import { LeakError } from '../errors.js';
import { createLogger } from '../log.js';
import { DemoWorkload } from '../server/demo_workload.js';
import { isLoopbackHost, TidemarkServer } from '../server/server.js';
import { setupAccounts } from '../server/mysql/auth.js';
import { MysqlServer } from '../server/mysql/server.js';

export interface ServeOptions {
  dir: string;
  port: number;
  host: string;
  demo: boolean;
  /** The MySQL protocol's port (0: any free one); undefined: no MySQL server. */
  mysqlPort?: number;
  /** The MySQL account (else TIDEMARK_USER / TIDEMARK_PASSWORD, else stored or generated). */
  user?: string;
  password?: string;
  allowEmptyPassword?: boolean;
}

/**
 * `tidemark serve`: open the database, serve metrics, stats and the dashboard, and run until
 * SIGINT or SIGTERM, then close everything (a leak makes the exit code 1). A signal during startup
 * closes as soon as the database is open; a second signal while closing exits at once (130).
 * Resolves with the exit code.
 */
export async function serve(opts: ServeOptions, print: (line: string) => void): Promise<number> {
  // Listen for the signals first: whoever starts us may signal at any moment.
  let signalled: NodeJS.Signals | undefined;
  let wake: (s: NodeJS.Signals) => void = () => undefined;
  const onSignal = (s: NodeJS.Signals) => {
    if (signalled !== undefined) {
      print(`tidemark: ${s} again: exiting without closing`);
      process.exit(130);
    }
    signalled = s;
    wake(s);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await serveUntilSignalled(opts, print, () =>
      signalled !== undefined ? Promise.resolve(signalled) : new Promise((r) => (wake = r)),
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function serveUntilSignalled(
  opts: ServeOptions,
  print: (line: string) => void,
  stopped: () => Promise<NodeJS.Signals>,
): Promise<number> {
  const logger = createLogger({ level: 'warn' });
  if (!isLoopbackHost(opts.host))
    print(`tidemark: warning: listening on ${opts.host}: the stats and debug pages are open to that network`);
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
  let mysql: MysqlServer | undefined;
  let demo: DemoWorkload | undefined;
  try {
    server = await TidemarkServer.start(db, { port: opts.port, host: opts.host, log: logger });
    if (opts.mysqlPort !== undefined) {
      const setup = setupAccounts(opts.dir, {
        user: opts.user ?? process.env['TIDEMARK_USER'],
        password: opts.password ?? process.env['TIDEMARK_PASSWORD'],
        allowEmptyPassword: opts.allowEmptyPassword,
      });
      mysql = await MysqlServer.start(db, {
        port: opts.mysqlPort,
        host: opts.host,
        accounts: setup.accounts,
        log: logger,
      });
      if (setup.generated !== undefined) {
        print(
          `tidemark: MySQL account ${setup.generated.user} with the generated password ${setup.generated.password} (shown once; only its hash is kept, in ${opts.dir}/mysql-accounts.json)`,
        );
      }
    }
    if (opts.demo) demo = await DemoWorkload.start(db, logger);
  } catch (e) {
    await mysql?.close();
    await server?.close();
    await db.close();
    throw e;
  }
  print(`tidemark: serving ${opts.dir} at ${server.url}${opts.demo ? ' (demo workload running)' : ''}`);
  if (mysql !== undefined) print(`tidemark: MySQL protocol at ${opts.host}:${mysql.port}`);
  print(`tidemark: metrics at ${server.url}metrics; Ctrl-C to stop`);
  const signal = await stopped();
  print(`tidemark: ${signal}: closing`);
  await demo?.stop();
  await mysql?.close();
  await server.close();
  try {
    await db.close();
  } catch (e) {
    if (e instanceof LeakError) {
      print(`tidemark: closed with a leak: ${e.message}`);
      for (const h of e.holders)
        print(
          `  ${h.scope} ${h.owner}: ${h.count} (${h.bytes} bytes)${h.stack !== undefined ? `\n${h.stack}` : ''}`,
        );
      return 1;
    }
    throw e;
  }
  print('tidemark: closed cleanly');
  return 0;
}
