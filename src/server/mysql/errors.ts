import { TidemarkError } from '../../errors.js';

/** A TidemarkError as MySQL's error number, SQLSTATE and message (docs/mysql.md lists them). */
export function mysqlError(e: unknown): { errno: number; state: string; message: string } {
  if (!(e instanceof TidemarkError)) {
    return { errno: 1105, state: 'HY000', message: e instanceof Error ? e.message : String(e) };
  }
  const given = e.details?.['mysqlErrno'];
  const errno = typeof given === 'number' ? given : (CODE_ERRNO[e.code] ?? 1105);
  return { errno, state: ERRNO_STATE[errno] ?? 'HY000', message: e.message };
}

const CODE_ERRNO: Record<string, number> = {
  DUPLICATE_KEY: 1062,
  CONFLICT: 1213,
  SCHEMA: 1054,
  NOT_FOUND: 1146,
  INVALID_ARGUMENT: 1105,
  SYNTAX: 1064,
  CLOSED: 1053,
  LOCKED: 1205,
  CORRUPTION: 1030,
  IO: 1030,
  MEMORY_LIMIT: 1041,
  READ_ONLY: 1290,
  LEAK: 1105,
  REFCOUNT: 1105,
};

const ERRNO_STATE: Record<number, string> = {
  1040: '08004',
  1045: '28000',
  1046: '3D000',
  1047: '08S01',
  1048: '23000',
  1049: '42000',
  1050: '42S01',
  1051: '42S02',
  1052: '23000',
  1059: '42000',
  1053: '08S01',
  1054: '42S22',
  1060: '42S21',
  1061: '42000',
  1062: '23000',
  1064: '42000',
  1066: '42000',
  1068: '42000',
  1070: '42000',
  1072: '42000',
  1091: '42000',
  1110: '42000',
  1111: 'HY000',
  1136: '21S01',
  1146: '42S02',
  1153: '08S01',
  1176: '42000',
  1193: 'HY000',
  1213: '40001',
  1222: '21000',
  1241: '21000',
  1242: '21000',
  1264: '22003',
  1280: '42000',
  1364: 'HY000',
  1366: 'HY000',
  1406: '22001',
  3065: 'HY000',
  4031: 'HY000',
};
