#!/usr/bin/env node
// The `tidemark` command. The implementation is compiled TypeScript under dist/.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('tidemark is not built yet: run `npm run build` (`npm start` builds it for you)\n');
  process.exit(2);
}
await import(main.href);
