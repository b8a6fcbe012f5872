// YCSB's key chooser: a scrambled zipfian distribution (Gray et al., "Quickly generating
// billion-record synthetic databases", as YCSB's ZipfianGenerator and ScrambledZipfianGenerator do),
// written here from the paper's formulas. Constant 0.99, as YCSB's default.

/** Zipfian ranks in [0, n): rank 0 the most popular. */
export class Zipfian {
  constructor(n, rand, theta = 0.99) {
    this.n = n;
    this.rand = rand;
    this.theta = theta;
    let zetan = 0;
    for (let i = 1; i <= n; i++) zetan += 1 / Math.pow(i, theta);
    const zeta2 = 1 + 1 / Math.pow(2, theta);
    this.zetan = zetan;
    this.alpha = 1 / (1 - theta);
    this.eta = (1 - Math.pow(2 / n, 1 - theta)) / (1 - zeta2 / zetan);
    this.half = Math.pow(0.5, theta);
  }

  next() {
    const u = this.rand();
    const uz = u * this.zetan;
    if (uz < 1) return 0;
    if (uz < 1 + this.half) return 1;
    return Math.min(this.n - 1, Math.floor(this.n * Math.pow(this.eta * u - this.eta + 1, this.alpha)));
  }
}

/** FNV-1a over the 4 bytes of a 32-bit integer: spreads popular ranks over the key space. */
function fnv32(x) {
  let h = 0x811c9dc5;
  for (let k = 0; k < 4; k++) {
    h ^= (x >>> (k * 8)) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Keys in [0, n) whose popularity follows a zipfian law, the popular ones scattered. */
export class ScrambledZipfian {
  constructor(n, rand) {
    this.n = n;
    this.z = new Zipfian(n, rand);
  }

  next() {
    return fnv32(this.z.next()) % this.n;
  }
}

/** A YCSB record: the key, a 100-byte field, a number. */
export function record(id) {
  return { id, field: `f${id}`.padEnd(100, 'x'), value: id / 4 };
}
