import { pino, type Logger, type LevelWithSilent } from 'pino';
import { invalidArgument } from './errors.js';

export type { Logger, LevelWithSilent };

export const LOG_LEVELS: readonly LevelWithSilent[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];

export interface LogOptions {
  /** Default 'silent' when used as a library: an embedded database should not write to stdout. */
  level?: LevelWithSilent;
  /** Where to write (a file path or a file descriptor); default stderr. */
  destination?: string | number;
}

/**
 * The engine's structured logger. Recovery decisions, checkpoint escalations, leak reports and I/O
 * failures go through it. Pass `log: { level: 'info' }` to `open`, or a pino logger of your own.
 */
export function createLogger(options: LogOptions | Logger | undefined, name = 'tidemark'): Logger {
  if (isLogger(options)) return options.child({ name });
  const level = options?.level ?? 'silent';
  if (!LOG_LEVELS.includes(level)) {
    throw invalidArgument(`log.level must be one of ${LOG_LEVELS.join(', ')}, got ${String(level)}`);
  }
  if (level === 'silent') return SILENT.child({ name });
  const key = options?.destination ?? 2;
  let dest = destinations.get(key);
  if (dest === undefined) {
    dest = pino.destination({ dest: key, sync: true });
    destinations.set(key, dest);
  }
  return pino({ level, name }, dest);
}

/**
 * One silent logger, writing nowhere, and one destination stream per target, for the whole process:
 * a database opened and closed a thousand times must not leave a thousand streams (each with its
 * exit hook) for the garbage collector to find.
 */
const SILENT = pino({ level: 'silent' }, { write: () => undefined });
const destinations = new Map<string | number, ReturnType<typeof pino.destination>>();

function isLogger(x: unknown): x is Logger {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as Logger).child === 'function' &&
    typeof (x as Logger).info === 'function'
  );
}
