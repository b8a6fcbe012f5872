import type { Database, Row, Snapshot } from '../../src/index.js';

/** The order of index entries, for the value kinds tests use: NULL first, then by value. */
function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b);
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

const show = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

/**
 * Problems with the indexes of every table (none: they agree with the tables): at one snapshot,
 * reading each index whole gives exactly the table's rows, in index order then primary key, and a
 * UNIQUE index's rows never share non-null values. Each index is also probed by `eq` for some
 * values, and getBy for a unique one.
 */
export async function checkIndexes(db: Database): Promise<string[]> {
  const problems: string[] = [];
  const snap = db.snapshot();
  try {
    await checkAll(db, snap, problems);
  } catch (e) {
    problems.push(`reading the indexes failed: ${(e as Error).message}`);
  } finally {
    snap.release();
  }
  return problems;
}

async function checkAll(db: Database, snap: Snapshot, problems: string[]): Promise<void> {
  {
    for (const table of db.tables()) {
      const spec = db.describeTable(table);
      if (spec.indexes.length === 0) continue;
      const pk = spec.primaryKey;
      const rows: Row[] = [];
      for await (const r of snap.scan(table)) rows.push(r);
      for (const ix of spec.indexes) {
        const cmp = (a: Row, b: Row) => {
          for (const c of ix.columns) {
            const d = compareValues(a[c], b[c]);
            if (d !== 0) return d;
          }
          return compareValues(a[pk], b[pk]);
        };
        const want = [...rows].sort(cmp);
        const got: Row[] = [];
        for await (const r of snap.scan(table, { index: ix.name })) got.push(r);
        if (show(got) !== show(want)) {
          problems.push(
            `${table}.${ix.name}: the index gives ${got.length} rows ${show(got.slice(0, 5))}..., the table ${want.length} ${show(want.slice(0, 5))}...`,
          );
          continue;
        }
        // Only the indexed columns and the key: read from the entries alone.
        const covered = [...ix.columns, pk];
        const thin: Row[] = [];
        for await (const r of snap.scan(table, { index: ix.name, columns: covered })) thin.push(r);
        const project = (r: Row) => Object.fromEntries(covered.map((c) => [c, r[c]]));
        if (show(thin) !== show(want.map(project)))
          problems.push(
            `${table}.${ix.name}: a covering read gives ${show(thin.slice(0, 5))}..., the table ${show(want.map(project).slice(0, 5))}...`,
          );
        const back: Row[] = [];
        for await (const r of snap.scan(table, { index: ix.name, reverse: true })) back.push(r);
        if (show(back.reverse()) !== show(want)) problems.push(`${table}.${ix.name}: reverse order differs`);
        for (let i = 1; ix.unique && i < want.length; i++) {
          const a = want[i - 1]!;
          const b = want[i]!;
          if (ix.columns.every((c) => a[c] !== null && compareValues(a[c], b[c]) === 0))
            problems.push(`${table}.${ix.name}: UNIQUE, yet rows ${show(a)} and ${show(b)} share values`);
        }
        for (const r of want.filter((_, i) => i % Math.max(1, Math.floor(want.length / 8)) === 0)) {
          const eq = ix.columns.map((c) => r[c]);
          const hits: Row[] = [];
          for await (const h of snap.scan(table, { index: ix.name, eq })) hits.push(h);
          const expected = want.filter((w) => ix.columns.every((c) => compareValues(w[c], r[c]) === 0));
          if (show(hits) !== show(expected))
            problems.push(
              `${table}.${ix.name}: eq ${show(eq)} gives ${show(hits)}, expected ${show(expected)}`,
            );
          if (ix.unique && !eq.includes(null)) {
            const one = await snap.getBy(table, ix.name, eq);
            if (show(one) !== show(r))
              problems.push(`${table}.${ix.name}: getBy ${show(eq)} gives ${show(one)}`);
          }
        }
      }
    }
  }
}
