import { TidemarkError } from '../../src/errors.js';

/** The code of the TidemarkError `fn` throws, undefined if it returns, or a note if it throws something else. */
export function codeOfSync(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof TidemarkError ? e.code : `not a TidemarkError: ${String(e)}`;
  }
  return undefined;
}

/** Like codeOfSync, for a promise. */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof TidemarkError ? e.code : `not a TidemarkError: ${String(e)}`;
  }
  return undefined;
}
