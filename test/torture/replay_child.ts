// Runs simulated-crash seeds in a process of its own and prints each outcome as a JSON line, for
// the test that a seed replays the same way in another process. Usage: replay_child.ts SEED...
import { simulate } from './simulate.js';

for (const arg of process.argv.slice(2)) {
  const o = await simulate(Number(arg));
  process.stdout.write(JSON.stringify(o) + '\n');
}
