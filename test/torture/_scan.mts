import { plantBug } from '../../src/util/plant.js';
import { simulate, describeOutcome } from './simulate.js';
const from = Number(process.argv[2]),
  to = Number(process.argv[3]);
if (process.argv[4]) plantBug(process.argv[4] as 'early-ack');
const t0 = Date.now();
let bad = 0;
for (let s = from; s <= to; s++) {
  const o = await simulate(s);
  if (o.problems.length) {
    bad++;
    if (bad <= 2)
      console.log(
        '\n' +
          describeOutcome(o)
            .split('\n')
            .filter((l) => !l.startsWith('    '))
            .join('\n'),
      );
  }
}
console.log('done', bad, 'failing of', to - from + 1, Date.now() - t0, 'ms');
