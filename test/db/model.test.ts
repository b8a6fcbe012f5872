import { test } from 'vitest';
import { MemoryFileService } from '../../src/fileservice/memory.js';
import { open } from '../../src/index.js';
import { runModel } from './model_harness.js';

test('random concurrent transactions with flushes, merges, checkpoints and restarts agree with a model of snapshot isolation', async () => {
  await runModel(
    async () => {
      const fs = new MemoryFileService();
      return {
        open: (options) => open('model', { ...options, fileService: fs }),
        crash: (seed) => fs.crash(seed),
      };
    },
    process.env['TIDEMARK_LONG'] === '1' ? 2000 : 150,
  );
}, 300_000);
