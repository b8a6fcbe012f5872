import { invalidArgument } from '../errors.js';

/** Where objects and checkpoint files go: an S3-compatible bucket (AWS S3, MinIO, moto, ...). */
export interface ObjectStoreOptions {
  /** The service's URL (for AWS S3 itself, leave it out and give the region). */
  endpoint?: string;
  bucket: string;
  /** Keys start with this (a database per prefix). Default ''. */
  prefix?: string;
  /** Default 'us-east-1'. */
  region?: string;
  /** Credentials; default: the AWS SDK's usual chain (environment, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** The local read cache of objects under DIR/cache/, at most this many bytes. Default 1 GiB. */
  cacheBytes?: number;
  /** Attempts per request before it fails with IO (timeouts, 5xx, throttling). Default 6. */
  attempts?: number;
  /** Each attempt's time limit. Default 30 s. */
  requestTimeoutMs?: number;
  /** The writer's claim lapses this long after its last renewal (renewed every third). Default 30 s. */
  leaseMs?: number;
  /** Objects larger than this are uploaded in parts of this size (at least 5 MiB). Default 8 MiB. */
  partBytes?: number;
  /**
   * A deleted object or checkpoint file stays in the bucket this long (invisible to the writer),
   * so that read replicas still on an older checkpoint can read it. Default 10 minutes; 0: at once.
   */
  gcGraceMs?: number;
}

export type ResolvedObjectStore = Required<
  Omit<ObjectStoreOptions, 'endpoint' | 'accessKeyId' | 'secretAccessKey'>
> &
  Pick<ObjectStoreOptions, 'endpoint' | 'accessKeyId' | 'secretAccessKey'>;

const MIN_PART_BYTES = 5 * 1024 * 1024;

/** Check the objectStore option and fill in the defaults (INVALID_ARGUMENT on anything wrong). */
export function resolveObjectStore(v: unknown): ResolvedObjectStore {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalidArgument('option objectStore must be an object');
  const o = v as Record<string, unknown>;
  const known = [
    'endpoint',
    'bucket',
    'prefix',
    'region',
    'accessKeyId',
    'secretAccessKey',
    'cacheBytes',
    'attempts',
    'requestTimeoutMs',
    'leaseMs',
    'partBytes',
    'gcGraceMs',
  ];
  for (const k of Object.keys(o))
    if (!known.includes(k))
      throw invalidArgument(`unknown option objectStore.${k}; known: ${known.join(', ')}`);
  const str = (k: string, required: boolean): string | undefined => {
    const x = o[k];
    if (x === undefined && !required) return undefined;
    if (typeof x !== 'string' || x === '')
      throw invalidArgument(`option objectStore.${k} must be a non-empty string`);
    return x;
  };
  const int = (k: string, min: number, dflt: number): number => {
    const x = o[k];
    if (x === undefined) return dflt;
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min)
      throw invalidArgument(`option objectStore.${k} must be an integer >= ${min}`);
    return x;
  };
  let prefix = o['prefix'] === undefined ? '' : str('prefix', true)!;
  if (prefix.startsWith('/')) throw invalidArgument('option objectStore.prefix must not start with /');
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  const endpoint = str('endpoint', false);
  const accessKeyId = str('accessKeyId', false);
  const secretAccessKey = str('secretAccessKey', false);
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined))
    throw invalidArgument('options objectStore.accessKeyId and secretAccessKey go together');
  return {
    bucket: str('bucket', true)!,
    prefix,
    region: str('region', false) ?? 'us-east-1',
    cacheBytes: int('cacheBytes', 0, 1024 ** 3),
    attempts: int('attempts', 1, 6),
    requestTimeoutMs: int('requestTimeoutMs', 100, 30_000),
    leaseMs: int('leaseMs', 1000, 30_000),
    partBytes: int('partBytes', MIN_PART_BYTES, 8 * 1024 * 1024),
    gcGraceMs: int('gcGraceMs', 0, 10 * 60_000),
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(accessKeyId !== undefined ? { accessKeyId, secretAccessKey } : {}),
  };
}
