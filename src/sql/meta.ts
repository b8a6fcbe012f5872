/**
 * The SQL catalog as this process holds it: the rows of the meta table (tables' SQL shapes, views,
 * indexes), read at the newest commit when the schema version moved, written by DDL.
 */
import type * as A from './parser/ast.js';
import { TidemarkError } from '../errors.js';
import { parseSql } from './parse.js';
import type { PlanCatalog } from './plan/rel.js';
import {
  autoIndexName,
  defaultValue,
  engineIndexName,
  META_TABLE,
  metaKey,
  sqlTypeText,
  tableFromSpec,
  type SqlIndex,
  type SqlObject,
  type SqlTable,
  type TableIndex,
} from './catalog.js';
import { unsupported } from './bind.js';
import { dateText } from './values.js';
import { atNewest, type SqlHost } from './host.js';

/** The SQL catalog of one database: what the planner reads tables and views from. */
export class SqlMeta implements PlanCatalog {
  private meta: Map<string, SqlObject> | undefined;
  private metaVersion = -1;
  private readonly parsedViews = new Map<string, { sql: string; query: A.Query; columns?: string[] }>();
  /** Tables' indexes as SQL sees them, made once per catalog version (see indexes). */
  private readonly indexCache = new Map<string, TableIndex[]>();

  constructor(
    private readonly host: SqlHost,
    /** Called when an object is written: plans made against the catalog before are dropped. */
    private readonly changed: () => void,
  ) {}

  /** Whether the catalog in memory is the one of the current schema version. */
  get current(): boolean {
    return this.meta !== undefined && this.metaVersion === this.host._schemaVersion;
  }

  /** The SQL catalog, read at the newest commit when it changed (never at a caller's old snapshot). */
  async load(): Promise<void> {
    if (this.current) return;
    const version = this.host._schemaVersion;
    const meta = new Map<string, SqlObject>();
    if (this.host.tables().includes(META_TABLE)) {
      await atNewest(this.host, async (tx) => {
        for await (const row of tx.scan(META_TABLE)) {
          meta.set(String(row.name), JSON.parse(String(row.def)) as SqlObject);
        }
      });
    }
    this.meta = meta;
    this.metaVersion = version;
    this.parsedViews.clear();
    this.indexCache.clear();
    if (this.legacyTables().length > 0) {
      this.migrating ??= this.buildMissing().finally(() => (this.migrating = undefined));
      await this.migrating;
    }
  }

  /** A legacy build in progress (see buildMissing). */
  private migrating: Promise<void> | undefined;
  /** Tables whose legacy UNIQUE constraints could not be built: why (see ready). */
  private readonly unbuilt = new Map<string, TidemarkError>();

  /**
   * Tables whose catalog rows come from before the engine had indexes: an index row without the
   * engine's name, or UNIQUE sets kept on the table row (then checked by scans).
   */
  private legacyTables(): string[] {
    const out = new Set<string>();
    for (const m of this.meta?.values() ?? []) {
      if (m.kind === 'index' && m.engine === undefined) out.add(m.table);
      if (m.kind === 'table' && m.unique.length > 0) out.add(m.name);
    }
    return [...out].filter((t) => this.host.tables().includes(t) && !this.unbuilt.has(t));
  }

  /**
   * The indexes an old catalog lists, built in the engine when the catalog is first read: each
   * index row (CREATE [UNIQUE] INDEX of before) as an index of its name, each UNIQUE set of a table
   * row (column UNIQUE, UNIQUE (...)) as a UNIQUE index named as MySQL names one (its first column,
   * then _2, ...); then the rows are rewritten (the engine's names, no sets left). A UNIQUE set that
   * the table's rows break (two rows written concurrently under the old scans) is not built: writes
   * to the table fail with DUPLICATE_KEY saying so until the duplicates are deleted (reads and
   * DELETE go on). A read replica builds nothing: its writer does.
   */
  private async buildMissing(): Promise<void> {
    for (const table of this.legacyTables()) {
      try {
        await this.buildTable(table);
      } catch (e) {
        if (e instanceof TidemarkError && e.code === 'READ_ONLY') return;
        if (!(e instanceof TidemarkError) || e.code !== 'DUPLICATE_KEY') throw e;
        this.unbuilt.set(
          table,
          new TidemarkError(
            'DUPLICATE_KEY',
            `a UNIQUE constraint of ${table} made before tidemark had indexes could not be built: ${e.message}; ` +
              'writes to the table are refused until the duplicate rows are deleted',
            { cause: e, details: { ...e.details, table, mysqlErrno: 1062 } },
          ),
        );
      }
    }
  }

  private async buildTable(table: string): Promise<void> {
    const built = new Set(this.host.describeTable(table).indexes.map((i) => i.name));
    const rows = this.indexRows(table);
    const taken = new Set(rows.map((r) => r.name.toLowerCase()));
    const writes: [string, SqlObject | undefined][] = [];
    const build = async (row: SqlIndex): Promise<void> => {
      const engine = engineIndexName(row.name);
      if (!built.has(engine)) await this.host.createIndex(table, engine, row.columns, { unique: row.unique });
      built.add(engine);
      writes.push([metaKey(row), { ...row, engine }]);
    };
    for (const r of rows) if (r.engine === undefined) await build(r);
    const t = this.meta?.get(`table:${table}`);
    if (t !== undefined && t.kind === 'table' && t.unique.length > 0) {
      for (const cols of t.unique) {
        if (rows.some((r) => r.unique && r.columns.join('\u0000') === cols.join('\u0000'))) continue;
        const name = autoIndexName(cols[0]!, (n) => taken.has(n.toLowerCase()));
        taken.add(name.toLowerCase());
        await build({ kind: 'index', name, table, columns: [...cols], unique: true });
      }
      writes.push([metaKey(t), { ...t, unique: [] }]);
    }
    await this.putAll(writes);
  }

  /**
   * Before a write to a table: its legacy UNIQUE constraints built (see buildMissing), tried again
   * if they could not be before; DUPLICATE_KEY while the rows still break one.
   */
  async ready(table: string): Promise<void> {
    const err = this.unbuilt.get(table);
    if (err === undefined) return;
    try {
      await this.buildTable(table);
    } catch (e) {
      if (e instanceof TidemarkError && e.code === 'DUPLICATE_KEY') throw err;
      throw e;
    }
    this.unbuilt.delete(table);
  }

  table(name: string): SqlTable | undefined {
    const m = this.meta?.get(`table:${name}`);
    if (m !== undefined && m.kind === 'table' && this.host.tables().includes(name)) return m;
    if (name === META_TABLE || !this.host.tables().includes(name)) return undefined;
    return tableFromSpec(name, this.host.describeTable(name));
  }

  view(name: string): { query: A.Query; columns?: string[] } | undefined {
    const m = this.meta?.get(`view:${name}`);
    if (m === undefined || m.kind !== 'view') return undefined;
    let p = this.parsedViews.get(name);
    if (p === undefined || p.sql !== m.sql) {
      p = { sql: m.sql, query: viewQuery(m.sql), ...(m.columns !== undefined ? { columns: m.columns } : {}) };
      this.parsedViews.set(name, p);
    }
    return p;
  }

  estimatedRows(name: string): number {
    return this.host._estimatedRows(name);
  }

  /**
   * A table's indexes: the engine's, each under the name the catalog gives it (its own name for an
   * index made through the API), the primary key not among them; unique ones first, then in the
   * order they were made (as MySQL lists them).
   */
  indexes(table: string): TableIndex[] {
    const cached = this.indexCache.get(table);
    if (cached !== undefined) return cached;
    if (!this.host.tables().includes(table) || table === META_TABLE) return [];
    const rows = this.indexRows(table);
    const out: TableIndex[] = this.host.describeTable(table).indexes.map((e) => {
      const row = rows.find((r) => r.engine === e.name);
      const ix: TableIndex = {
        name: row?.name ?? e.name,
        engine: e.name,
        columns: [...e.columns],
        unique: e.unique,
      };
      if (row?.desc !== undefined && row.desc.some((d) => d)) ix.desc = row.desc;
      return ix;
    });
    out.sort((a, b) => Number(b.unique) - Number(a.unique));
    this.indexCache.set(table, out);
    return out;
  }

  /** The index of a table SQL names `name` (case-insensitively), if there is one. */
  index(table: string, name: string): TableIndex | undefined {
    const n = name.toLowerCase();
    return this.indexes(table).find((i) => i.name.toLowerCase() === n);
  }

  /** The catalog's rows of a table's indexes. */
  indexRows(table: string): SqlIndex[] {
    const out: SqlIndex[] = [];
    for (const m of this.meta?.values() ?? []) if (m.kind === 'index' && m.table === table) out.push(m);
    return out;
  }

  /** The table a statement names to write to (or to describe): NOT_FOUND, or unsupported for a view. */
  targetTable(name: string): SqlTable {
    const t = this.table(name);
    if (t === undefined) {
      if (this.view(name) !== undefined) throw unsupported('writing to a view');
      throw new TidemarkError('NOT_FOUND', `unknown table ${name}`, {
        details: { table: name, mysqlErrno: 1146 },
      });
    }
    return t;
  }

  /** Tables and views (the shell's .tables), the catalog read first. */
  async listObjects(): Promise<{ name: string; kind: 'table' | 'view' }[]> {
    await this.load();
    return this.objects();
  }

  /** The CREATE statement of a table or view (the shell's .schema), or undefined. */
  async createStatement(name: string): Promise<string | undefined> {
    await this.load();
    const v = this.meta?.get(`view:${name}`);
    if (v !== undefined && v.kind === 'view') return `CREATE VIEW ${name} AS ${v.sql}`;
    const t = this.table(name);
    if (t === undefined) return undefined;
    const lines = t.columns.map((c) => {
      let s = `  ${c.name} ${sqlTypeText(c)}`;
      if (!c.nullable) s += ' NOT NULL';
      if (c.autoIncrement === true) s += ' AUTO_INCREMENT';
      if (c.default !== undefined) {
        const d = defaultValue(c);
        s += ` DEFAULT ${c.default === 'CURRENT_TIMESTAMP' ? 'CURRENT_TIMESTAMP' : typeof d === 'string' ? `'${d.replace(/'/g, "''")}'` : d instanceof Date ? `'${dateText(d)}'` : String(d)}`;
      }
      return s;
    });
    if (t.primaryKey.length > 0) lines.push(`  PRIMARY KEY (${t.primaryKey.join(', ')})`);
    for (const ix of this.indexes(name)) {
      const parts = ix.columns.map((c, i) => `${quoteName(c)}${ix.desc?.[i] === true ? ' DESC' : ''}`);
      lines.push(`  ${ix.unique ? 'UNIQUE KEY' : 'KEY'} ${quoteName(ix.name)} (${parts.join(', ')})`);
    }
    // UNIQUE sets of an old catalog not built yet (see buildMissing).
    for (const u of t.unique) lines.push(`  UNIQUE (${u.map(quoteName).join(', ')})`);
    return `CREATE TABLE ${name} (\n${lines.join(',\n')}\n)`;
  }

  /** Table names for SHOW TABLES and the shell (views included, the meta table not). */
  objects(): { name: string; kind: 'table' | 'view' }[] {
    const out: { name: string; kind: 'table' | 'view' }[] = this.host
      .tables()
      .filter((t) => t !== META_TABLE)
      .map((name) => ({ name, kind: 'table' as const }));
    for (const m of this.meta?.values() ?? [])
      if (m.kind === 'view') out.push({ name: m.name, kind: 'view' });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The object kept under a meta key (see metaKey), if the catalog has it. */
  get(key: string): SqlObject | undefined {
    return this.meta?.get(key);
  }

  has(key: string): boolean {
    return this.meta?.has(key) === true;
  }

  /** Every object of the catalog (none before it is read). */
  values(): Iterable<SqlObject> {
    return this.meta?.values() ?? [];
  }

  async put(o: SqlObject | undefined, key: string): Promise<void> {
    await this.putAll([[key, o]]);
  }

  /** Write (or, undefined, delete) several catalog rows in one transaction. */
  async putAll(entries: readonly (readonly [string, SqlObject | undefined])[]): Promise<void> {
    if (!this.host.tables().includes(META_TABLE)) {
      await this.host.createTable(META_TABLE, {
        columns: { name: 'string', def: 'string' },
        primaryKey: 'name',
      });
    }
    const tx = this.host._begin();
    try {
      for (const [key, o] of entries) {
        if (o === undefined) await tx.delete(META_TABLE, key);
        else await tx.upsert(META_TABLE, { name: key, def: JSON.stringify(o) });
      }
      await this.host._commit(tx);
    } catch (e) {
      this.host._rollback(tx, 'rolled back', e);
      throw e;
    }
    for (const [key, o] of entries) {
      if (o === undefined) this.meta?.delete(key);
      else this.meta?.set(key, o);
    }
    this.indexCache.clear();
    this.changed();
  }

  /** The index caches dropped (an index was made or dropped in the engine). */
  indexesChanged(): void {
    this.indexCache.clear();
    this.changed();
  }
}

/** A name as SHOW CREATE TABLE writes it: quoted with backticks unless it is a plain identifier. */
export function quoteName(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `\`${name.replace(/`/g, '``')}\``;
}

/** A view's stored text as a query. */
export function viewQuery(sql: string): A.Query {
  const s = parseSql(sql).statements[0]!;
  if (s.kind !== 'select')
    throw new TidemarkError('CORRUPTION', `a view's text is not a query: ${sql.slice(0, 80)}`);
  return s.query;
}
