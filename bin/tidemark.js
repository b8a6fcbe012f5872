#!/usr/bin/env node
// The `tidemark` command. The implementation is compiled TypeScript under dist/.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('tidemark is not built yet: run `npm run build` (`npm start` builds it for you)\n');
  process.exit(2);
}
// The leak check forces garbage collections: it needs node's --expose-gc.
if (process.argv[2] === 'leakcheck' && typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(main), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}
await import(main.href);
