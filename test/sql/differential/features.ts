/**
 * What the query generator may use, one flag per construct, so that a run can be restricted to what
 * an engine accepts today and widened as it learns more. A query's features are read back from its
 * syntax tree (featuresOf in ast.ts), not from the generator's intentions, so a reduced query names
 * exactly the features it still uses.
 *
 * Always on (the core every query needs): SELECT of columns and literals from one table, WHERE, the
 * comparisons = <> != < <= > >=, AND, OR, NOT, IS [NOT] NULL, integer and string literals, NULL.
 */
export const FEATURES = {
  xor: { on: true, what: 'XOR in operator chains' },
  logicalSymbols: { on: true, what: '&& and || (OR, as without PIPES_AS_CONCAT), and !' },
  nullSafeEqual: { on: true, what: '<=>' },
  isBoolean: { on: true, what: 'IS [NOT] TRUE / FALSE / UNKNOWN' },
  between: { on: true, what: '[NOT] BETWEEN' },
  inList: { on: true, what: '[NOT] IN (list), with NULLs in lists' },
  like: { on: true, what: '[NOT] LIKE with % and _' },
  arithmetic: { on: true, what: '+ - * in operator chains' },
  modulo: { on: true, what: '% and MOD' },
  intDiv: { on: true, what: 'DIV' },
  unaryChains: { on: true, what: 'unary minus and plus, chained: - - 3, + - a' },
  // MySQL's bit operators give BIGINT UNSIGNED (~1 is 18446744073709551614): exact here too.
  bitOps: { on: true, what: '| & ^ << >> ~' },
  caseExpr: { on: true, what: 'CASE WHEN ... and CASE x WHEN ...' },
  functions: { on: true, what: 'COALESCE IFNULL NULLIF IF ABS LENGTH CONCAT UPPER LOWER' },
  doubleLiterals: { on: true, what: 'DOUBLE literals with an exponent (2.5e0, 1e2)' },
  mixedTypes: { on: true, what: 'numbers compared with strings (c_int = ' + "'12'" + ', c_str > 3)' },
  scalarSubquery: { on: true, what: 'scalar subqueries' },
  inSubquery: { on: true, what: '[NOT] IN (subquery)' },
  exists: { on: true, what: '[NOT] EXISTS (subquery)' },
  correlated: { on: true, what: 'subqueries that read the enclosing query' },
  innerJoin: { on: true, what: '[INNER] JOIN ... ON' },
  leftJoin: { on: true, what: 'LEFT JOIN ... ON' },
  crossJoin: { on: true, what: 'CROSS JOIN' },
  commaJoin: { on: true, what: 'FROM a, b with the join condition in WHERE' },
  derivedTables: { on: true, what: 'subqueries in FROM' },
  aggregates: { on: true, what: 'COUNT(*) COUNT SUM MIN MAX AVG (without GROUP BY too)' },
  aggregateDistinct: { on: true, what: 'COUNT(DISTINCT x), SUM(DISTINCT x) ...' },
  aggregateAll: { on: true, what: 'COUNT(ALL x), SUM(ALL x) ...' },
  groupBy: { on: true, what: 'GROUP BY' },
  having: { on: true, what: 'HAVING' },
  distinct: { on: true, what: 'SELECT DISTINCT' },
  selectAll: { on: true, what: 'SELECT ALL' },
  orderLimit: { on: true, what: 'ORDER BY (over every output column) with LIMIT / OFFSET' },
  union: { on: true, what: 'UNION [DISTINCT]' },
  unionAll: { on: true, what: 'UNION ALL' },
  intersect: { on: true, what: 'INTERSECT [DISTINCT]' },
  intersectAll: { on: true, what: 'INTERSECT ALL' },
  except: { on: true, what: 'EXCEPT [DISTINCT]' },
  exceptAll: { on: true, what: 'EXCEPT ALL' },
  setOpParens: { on: true, what: 'parenthesized set operations and branches with ORDER BY / LIMIT' },
  // `/` makes a DECIMAL in MySQL (1 / 3 is 0.3333, exact), as here; but where a quotient is an
  // operand of a DOUBLE computation (1 / c + 'a'), MySQL computes that quotient in doubles
  // (val_real), which tidemark, typing values as they flow, does not know yet: off by default
  // (its DECIMAL results are tested against MariaDB in test/sql/exact_numbers.test.ts).
  division: { on: false, what: '/ (a DECIMAL result in MySQL)' },
  decimalLiterals: { on: true, what: 'decimal literals such as 1.5 (DECIMAL in MySQL)' },
  // utf8mb4_bin is a PAD SPACE collation: 'a' = 'a ' in MySQL and MariaDB; tidemark compares the
  // bytes. Off until that is decided; its groups and DISTINCT are not deterministic in MariaDB.
  trailingSpaces: { on: false, what: "strings ending in spaces ('a ')" },
  // Not generated at all: dates and times, and RAND(), NOW() and the like (no oracle can compare them).
} as const satisfies Record<string, { on: boolean; what: string }>;

export type Feature = keyof typeof FEATURES;
export const ALL_FEATURES = Object.keys(FEATURES) as Feature[];
export const DEFAULT_FEATURES: ReadonlySet<Feature> = new Set(ALL_FEATURES.filter((f) => FEATURES[f].on));

export function isFeature(s: string): s is Feature {
  return Object.hasOwn(FEATURES, s);
}

/**
 * A feature set from its text (the TIDEMARK_DIFF_FEATURES variable): comma-separated names. `-x`
 * removes x from the default set and `+x` adds x to it; if any name has no sign, the set is exactly
 * the unsigned names (plus the signed changes). `all` is every feature, `default` the default set,
 * `none` the core only. Undefined or empty: the default set. An unknown name throws (a typo must not
 * silently test less).
 */
export function parseFeatures(text: string | undefined): Set<Feature> {
  const tokens = (text ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (tokens.length === 0) return new Set(DEFAULT_FEATURES);
  const exact = tokens.some((t) => !t.startsWith('-') && !t.startsWith('+'));
  const out = new Set<Feature>(exact ? [] : DEFAULT_FEATURES);
  for (const t of tokens) {
    const sign = t.startsWith('-') ? '-' : '+';
    const name = t.replace(/^[-+]/, '');
    const names: Feature[] =
      name === 'all'
        ? ALL_FEATURES
        : name === 'default'
          ? [...DEFAULT_FEATURES]
          : name === 'none'
            ? []
            : isFeature(name)
              ? [name]
              : [];
    if (names.length === 0 && name !== 'none') {
      throw new Error(`unknown feature ${JSON.stringify(name)}; known: ${ALL_FEATURES.join(', ')}`);
    }
    for (const n of names) {
      if (sign === '-') out.delete(n);
      else out.add(n);
    }
  }
  return out;
}

/** The text parseFeatures reads back to the same set, relative to the default set. */
export function describeFeatures(set: ReadonlySet<Feature>): string {
  const removed = ALL_FEATURES.filter((f) => DEFAULT_FEATURES.has(f) && !set.has(f));
  const added = ALL_FEATURES.filter((f) => !DEFAULT_FEATURES.has(f) && set.has(f));
  const parts = [...removed.map((f) => `-${f}`), ...added.map((f) => `+${f}`)];
  return parts.length === 0 ? 'default' : parts.join(',');
}
