import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { TidemarkError } from '../errors.js';
import { runDemo } from './demo.js';
import { formatReport, inspect } from './inspect.js';

function packageVersion(): string {
  // dist/cli/main.js and src/cli/main.ts both sit two levels below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('tidemark')
    .description('A transactional columnar database engine for Node.js')
    .version(packageVersion(), '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError();

  program
    .command('demo')
    .description(
      'open a database, write and read through transactions, print memory pool and WAL figures, close',
    )
    .option('--dir <dir>', 'data directory', './data')
    .action(async (opts: { dir: string }) => {
      await runDemo(opts.dir, (line) => process.stdout.write(line + '\n'));
    });

  program
    .command('inspect')
    .description(
      'read a database directory without opening it: the checkpoint chain, WAL segments, objects and orphan files',
    )
    .argument('<dir>', 'data directory')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const report = await inspect(dir);
      process.stdout.write(
        (opts.json === true ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n',
      );
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof TidemarkError) {
      process.stderr.write(`tidemark: ${e.code}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
