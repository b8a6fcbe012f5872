// abstract-level's own test suite (shipped in the abstract-level package under test/) against
// TidemarkLevel, printing TAP. Run by suite.test.ts: node --import tsx test/level/abstract_suite.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { TidemarkLevel } from '../../src/level/index.js';

const require = createRequire(import.meta.url);
const test = require('tape') as { onFinish(fn: () => void): void };
const suite = require('abstract-level/test') as (o: {
  test: unknown;
  factory: (options?: object) => unknown;
}) => void;

const root = mkdtempSync(path.join(os.tmpdir(), 'tidemark-level-suite-'));
let n = 0;
suite({
  test,
  factory(options?: object) {
    // The options as given: the suite checks that hooks see exactly these.
    return new TidemarkLevel(path.join(root, `db${n++}`), options);
  },
});
test.onFinish(() => rmSync(root, { recursive: true, force: true }));
