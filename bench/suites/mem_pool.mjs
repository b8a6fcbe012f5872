// Microbenchmark: acquire + release of a pooled buffer at each leak-detection level, against
// allocating a fresh ArrayBuffer or Buffer each time. Prints one JSON line per case.
import { MemoryManager } from '../../dist/mem/manager.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 40 : 200;
const PER_ROUND = 20_000;

function measure(fn, rounds = ROUNDS) {
  for (let i = 0; i < 5; i++) fn(PER_ROUND); // warm up the JIT
  const perOp = new Float64Array(rounds);
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    fn(PER_ROUND);
    perOp[r] = Number(process.hrtime.bigint() - t0) / PER_ROUND;
  }
  perOp.sort();
  return { medianNs: perOp[rounds >> 1], p99Ns: perOp[Math.floor(rounds * 0.99)] };
}

const cases = [];
for (const size of [100, 4096]) {
  for (const level of ['disabled', 'simple', 'advanced', 'paranoid']) {
    const m = new MemoryManager({ limitBytes: 1 << 30, leakDetection: level });
    const pool = m.pool('io');
    // paranoid captures a stack per buffer (about 20 µs): fewer rounds keep the suite short.
    const r = measure(
      (n) => {
        for (let i = 0; i < n; i++) pool.allocateSync(size, 'bench').release();
      },
      level === 'paranoid' ? 20 : ROUNDS,
    );
    m.close();
    cases.push({ name: `acquire+release ${size} B, ${level}`, level, size, ...r });
  }
  // With the bytes view touched, as real callers do.
  {
    const m = new MemoryManager({ limitBytes: 1 << 30, leakDetection: 'simple' });
    const pool = m.pool('io');
    const r = measure((n) => {
      for (let i = 0; i < n; i++) {
        const h = pool.allocateSync(size, 'bench');
        h.bytes[0] = 1;
        h.release();
      }
    });
    m.close();
    cases.push({ name: `acquire+write+release ${size} B, simple`, level: 'simple', size, ...r });
  }
  const ab = measure((n) => {
    for (let i = 0; i < n; i++) new Uint8Array(new ArrayBuffer(size))[0] = 1;
  });
  cases.push({ name: `new ArrayBuffer(${size}) (no pool)`, level: 'none', size, ...ab });
  const bu = measure((n) => {
    for (let i = 0; i < n; i++) Buffer.allocUnsafe(size)[0] = 1;
  });
  cases.push({ name: `Buffer.allocUnsafe(${size}) (no pool)`, level: 'none', size, ...bu });
}
for (const c of cases) process.stdout.write(JSON.stringify(c) + '\n');
