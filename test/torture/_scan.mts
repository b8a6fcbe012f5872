import { simulate, ioFault, describeOutcome } from './simulate.js';
const from = Number(process.argv[2]),
  to = Number(process.argv[3]);
const fn = process.argv[4] === 'io' ? ioFault : simulate;
const t0 = Date.now();
let bad = 0,
  io = 0,
  wf = 0;
for (let s = from; s <= to; s++) {
  const o = await fn(s);
  io += o.ioErrors ?? 0;
  if (o.walFailed) wf++;
  if (o.problems.length) {
    bad++;
    if (bad <= 3)
      console.log(
        '\n' +
          describeOutcome(o)
            .split('\n')
            .filter((l) => !l.startsWith('    '))
            .join('\n'),
      );
  }
}
console.log('done', bad, 'failing of', to - from + 1, Date.now() - t0, 'ms; ioErrors', io, 'walFailed', wf);
