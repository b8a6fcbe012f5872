import { invalidArgument } from '../errors.js';

const MAX_PATH_LENGTH = 1024;
const MAX_SEGMENT_LENGTH = 255;

/**
 * Check a path relative to the database directory and return its segments. The empty string names
 * the root itself. Absolute paths, `.` and `..` segments, empty segments, backslashes and control
 * characters are refused with INVALID_ARGUMENT: nothing outside the directory can be named.
 */
export function checkPath(path: string, what = 'path'): string[] {
  if (typeof path !== 'string') throw invalidArgument(`${what} must be a string, got ${typeof path}`);
  if (path === '') return [];
  if (path.length > MAX_PATH_LENGTH) {
    throw invalidArgument(`${what} is longer than ${MAX_PATH_LENGTH} characters`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(path)) {
    throw invalidArgument(`${what} ${JSON.stringify(path)} contains a control character or backslash`);
  }
  const segments = path.split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..') {
      throw invalidArgument(
        `${what} ${JSON.stringify(path)} must be relative to the database directory, without '.', '..' or empty segments`,
      );
    }
    if (s.length > MAX_SEGMENT_LENGTH) {
      throw invalidArgument(
        `${what} ${JSON.stringify(path)} has a segment longer than ${MAX_SEGMENT_LENGTH}`,
      );
    }
  }
  return segments;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

let tmpCounter = 0;
/**
 * A temporary sibling name for `path`: `<path>.<tag>.tmp`, the tag by default `<pid>-<n>` with a
 * process-wide counter (a file service may supply its own: see FileService.tempTag). Orphaned
 * temporaries end in `.tmp`.
 */
export function tempNameFor(path: string, tag?: string): string {
  if (tag === undefined) {
    tmpCounter = (tmpCounter + 1) % 1_000_000_000;
    tag = `${process.pid}-${tmpCounter}`;
  }
  return `${path}.${tag}.tmp`;
}

export function isTempName(name: string): boolean {
  return name.endsWith('.tmp');
}
