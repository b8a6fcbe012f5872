/**
 * The syntax tree of tidemark's SQL: MySQL's grammar as the parser reads it. Nodes carry `at`, the
 * offset in the statement's text where they start, for errors that point at the text. Names are
 * kept as written (identifiers are matched case-insensitively by the binder); literals keep what
 * their type needs (numbers their digits, so that exact types can be decided by the planner).
 */

// ---- expressions ----

export type Expr =
  | ColumnRef
  | NumberLit
  | StringLit
  | HexLit
  | BitLit
  | BoolLit
  | NullLit
  | TypedLit
  | Param
  | Variable
  | DefaultValue
  | Unary
  | Binary
  | Quantified
  | IsNull
  | IsTruth
  | Between
  | InList
  | InQuery
  | Like
  | Regexp
  | Exists
  | ScalarQuery
  | RowExpr
  | Case
  | Cast
  | Convert
  | Call
  | Aggregate
  | Collate
  | Interval
  | Star;

/** `name`, `table.name` or `schema.table.name`. */
export interface ColumnRef {
  kind: 'column';
  at: number;
  schema?: string;
  table?: string;
  name: string;
}

/** `*` or `t.*`: only in a select list and COUNT(*). */
export interface Star {
  kind: 'star';
  at: number;
  table?: string;
}

/**
 * A number as written: `form` says which of MySQL's literal kinds it is (an integer, a decimal
 * with a point, or an approximate number with an exponent), `text` is its digits.
 */
export interface NumberLit {
  kind: 'number';
  at: number;
  text: string;
  form: 'int' | 'decimal' | 'float';
}

export interface StringLit {
  kind: 'string';
  at: number;
  value: string;
  /** An introducer (`_utf8mb4'x'`, `_binary'x'`, `N'x'` is national). */
  charset?: string;
}

/** `X'0A1B'` or `0x0A1B`: bytes. */
export interface HexLit {
  kind: 'hex';
  at: number;
  hex: string;
}

/** `B'0101'` or `0b0101`. */
export interface BitLit {
  kind: 'bits';
  at: number;
  bits: string;
}

export interface BoolLit {
  kind: 'bool';
  at: number;
  value: boolean;
}

export interface NullLit {
  kind: 'null';
  at: number;
}

/** `DATE '2024-01-02'`, `TIME '...'`, `TIMESTAMP '...'`. */
export interface TypedLit {
  kind: 'typed';
  at: number;
  type: 'DATE' | 'TIME' | 'TIMESTAMP';
  value: string;
}

/** A `?` placeholder: `index` counts them from 0 in text order. */
export interface Param {
  kind: 'param';
  at: number;
  index: number;
}

/** `@name` (a user variable) or `@@[scope.]name` (a system variable). */
export interface Variable {
  kind: 'variable';
  at: number;
  system: boolean;
  scope?: 'global' | 'session';
  name: string;
}

/** `DEFAULT` as a value (INSERT ... VALUES, UPDATE ... SET) or `DEFAULT(col)`. */
export interface DefaultValue {
  kind: 'default';
  at: number;
  column?: string;
}

export type UnaryOp = '-' | '+' | '~' | '!' | 'NOT' | 'BINARY';

export interface Unary {
  kind: 'unary';
  at: number;
  op: UnaryOp;
  arg: Expr;
}

/** Binary operators; `||` and `&&` are read as OR and AND (MySQL's default sql_mode). */
export type BinaryOp =
  | 'OR'
  | 'XOR'
  | 'AND'
  | '='
  | '<=>'
  | '<>'
  | '<'
  | '<='
  | '>'
  | '>='
  | '|'
  | '&'
  | '<<'
  | '>>'
  | '+'
  | '-'
  | '*'
  | '/'
  | 'DIV'
  | '%'
  | '^';

export interface Binary {
  kind: 'binary';
  at: number;
  op: BinaryOp;
  left: Expr;
  right: Expr;
}

/** `x op ALL (subquery)`, `x op ANY|SOME (subquery)`. */
export interface Quantified {
  kind: 'quantified';
  at: number;
  op: '=' | '<>' | '<' | '<=' | '>' | '>=' | '<=>';
  quantifier: 'ALL' | 'ANY';
  left: Expr;
  query: Query;
}

export interface IsNull {
  kind: 'isNull';
  at: number;
  arg: Expr;
  not: boolean;
}

/** `x IS [NOT] TRUE|FALSE|UNKNOWN` (`value` null: UNKNOWN). */
export interface IsTruth {
  kind: 'isTruth';
  at: number;
  arg: Expr;
  value: boolean | null;
  not: boolean;
}

export interface Between {
  kind: 'between';
  at: number;
  arg: Expr;
  low: Expr;
  high: Expr;
  not: boolean;
}

export interface InList {
  kind: 'inList';
  at: number;
  arg: Expr;
  list: Expr[];
  not: boolean;
}

export interface InQuery {
  kind: 'inQuery';
  at: number;
  arg: Expr;
  query: Query;
  not: boolean;
}

export interface Like {
  kind: 'like';
  at: number;
  arg: Expr;
  pattern: Expr;
  escape?: Expr;
  not: boolean;
}

export interface Regexp {
  kind: 'regexp';
  at: number;
  arg: Expr;
  pattern: Expr;
  not: boolean;
}

export interface Exists {
  kind: 'exists';
  at: number;
  query: Query;
}

/** A parenthesized query used as a value. */
export interface ScalarQuery {
  kind: 'scalarQuery';
  at: number;
  query: Query;
}

/** `(a, b)` or `ROW(a, b)`. */
export interface RowExpr {
  kind: 'row';
  at: number;
  items: Expr[];
}

export interface Case {
  kind: 'case';
  at: number;
  operand?: Expr;
  whens: { when: Expr; then: Expr }[];
  else?: Expr;
}

/** A type in CAST/CONVERT: MySQL's cast targets. */
export interface CastType {
  name: string;
  /** CHAR(n), DECIMAL(p, s), DATETIME(fsp). */
  length?: number;
  scale?: number;
  unsigned?: boolean;
  charset?: string;
}

export interface Cast {
  kind: 'cast';
  at: number;
  arg: Expr;
  type: CastType;
}

/** `CONVERT(x USING charset)`. */
export interface Convert {
  kind: 'convert';
  at: number;
  arg: Expr;
  charset: string;
}

/**
 * A function call. The special forms are read into plain arguments: TRIM(LEADING x FROM y) is
 * `TRIM` with `mode`, SUBSTRING(s FROM a FOR b) is SUBSTRING(s, a, b), POSITION(a IN b) is
 * LOCATE(a, b), EXTRACT(unit FROM d) has `unit`, DATE_ADD(d, INTERVAL n unit) has an Interval.
 */
export interface Call {
  kind: 'call';
  at: number;
  name: string;
  args: Expr[];
  /** TRIM's BOTH/LEADING/TRAILING, EXTRACT's and TIMESTAMPDIFF's unit. */
  mode?: string;
}

export interface Aggregate {
  kind: 'aggregate';
  at: number;
  /** Upper case: COUNT, SUM, AVG, MIN, MAX, GROUP_CONCAT, ... */
  name: string;
  /** Empty for COUNT(*). */
  args: Expr[];
  distinct: boolean;
  /** GROUP_CONCAT's ORDER BY and SEPARATOR. */
  orderBy?: OrderItem[];
  separator?: string;
}

export interface Collate {
  kind: 'collate';
  at: number;
  arg: Expr;
  collation: string;
}

/** `INTERVAL expr unit` (date arithmetic). */
export interface Interval {
  kind: 'interval';
  at: number;
  value: Expr;
  unit: string;
}

// ---- queries ----

export interface OrderItem {
  expr: Expr;
  desc: boolean;
}

export interface Limit {
  count: Expr;
  offset?: Expr;
}

export interface SelectItem {
  kind: 'item';
  expr: Expr;
  alias?: string;
  /** The item's text as written (MySQL names an unaliased column by it). */
  text: string;
}

export type TableRef = TableName | DerivedTable | Join;

export interface TableName {
  kind: 'table';
  at: number;
  schema?: string;
  name: string;
  alias?: string;
}

export interface DerivedTable {
  kind: 'derived';
  at: number;
  query: Query;
  alias?: string;
  columns?: string[];
  lateral: boolean;
}

export interface Join {
  kind: 'join';
  at: number;
  type: 'inner' | 'cross' | 'left' | 'right' | 'straight';
  natural: boolean;
  left: TableRef;
  right: TableRef;
  on?: Expr;
  using?: string[];
}

/** One SELECT without its ORDER BY and LIMIT (those belong to the Query around it). */
export interface SelectCore {
  kind: 'select';
  at: number;
  distinct: boolean;
  items: (SelectItem | Star)[];
  /** Comma-separated table references (each may be a tree of joins). */
  from: TableRef[];
  where?: Expr;
  groupBy: Expr[];
  withRollup: boolean;
  having?: Expr;
}

export type SetOpKind = 'UNION' | 'INTERSECT' | 'EXCEPT';

export interface SetOp {
  kind: 'setop';
  at: number;
  op: SetOpKind;
  all: boolean;
  left: QueryTerm;
  right: QueryTerm;
}

/** `VALUES ROW(...), ROW(...)` or `TABLE t` as a query term. */
export interface ValuesTerm {
  kind: 'values';
  at: number;
  rows: Expr[][];
}

/** A parenthesized query inside a set operation (it keeps its own ORDER BY and LIMIT). */
export interface NestedQuery {
  kind: 'nested';
  at: number;
  query: Query;
}

export type QueryTerm = SelectCore | SetOp | ValuesTerm | NestedQuery;

export interface Cte {
  name: string;
  columns?: string[];
  query: Query;
}

export interface Query {
  kind: 'query';
  at: number;
  with?: { recursive: boolean; ctes: Cte[] };
  body: QueryTerm;
  orderBy: OrderItem[];
  limit?: Limit;
  /** FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE. */
  lock?: 'update' | 'share';
  /** The query's text as written (views keep it). */
  text: string;
}

// ---- statements ----

export interface Assignment {
  column: ColumnRef;
  value: Expr;
}

export interface SelectStatement {
  kind: 'select';
  query: Query;
}

export interface ExplainStatement {
  kind: 'explain';
  statement: Statement;
}

export interface InsertStatement {
  kind: 'insert';
  replace: boolean;
  ignore: boolean;
  table: TableName;
  columns?: string[];
  source:
    { kind: 'values'; rows: Expr[][] } | { kind: 'query'; query: Query } | { kind: 'set'; set: Assignment[] };
  onDuplicate?: Assignment[];
}

export interface UpdateStatement {
  kind: 'update';
  ignore: boolean;
  tables: TableRef[];
  set: Assignment[];
  where?: Expr;
  orderBy: OrderItem[];
  limit?: Limit;
}

export interface DeleteStatement {
  kind: 'delete';
  ignore: boolean;
  /** Multi-table DELETE's targets (`DELETE t1 FROM t1 JOIN ...`); empty for the single-table form. */
  targets: string[];
  from: TableRef[];
  where?: Expr;
  orderBy: OrderItem[];
  limit?: Limit;
}

export interface DataType {
  /** Upper case, as MySQL names it ('INT', 'VARCHAR', 'DOUBLE', 'ENUM', ...). */
  name: string;
  length?: number;
  scale?: number;
  unsigned: boolean;
  zerofill: boolean;
  /** ENUM and SET members. */
  values?: string[];
  charset?: string;
  collation?: string;
}

export interface ColumnDef {
  name: string;
  type: DataType;
  /** undefined: not said (nullable unless a key says otherwise). */
  nullable?: boolean;
  default?: Expr;
  autoIncrement: boolean;
  primaryKey: boolean;
  unique: boolean;
  comment?: string;
  onUpdate?: Expr;
  generated?: { expr: Expr; stored: boolean };
  references?: ForeignKeyTarget;
  check?: Expr;
}

export interface KeyPart {
  column: string;
  length?: number;
  desc: boolean;
}

export interface ForeignKeyTarget {
  table: string;
  columns: string[];
  onDelete?: string;
  onUpdate?: string;
}

export type TableConstraint =
  | { kind: 'primary'; name?: string; parts: KeyPart[] }
  | { kind: 'unique'; name?: string; parts: KeyPart[] }
  | { kind: 'index'; name?: string; parts: KeyPart[]; fulltext: boolean }
  | { kind: 'foreign'; name?: string; columns: string[]; references: ForeignKeyTarget }
  | { kind: 'check'; name?: string; expr: Expr };

export interface CreateTableStatement {
  kind: 'createTable';
  ifNotExists: boolean;
  temporary: boolean;
  table: TableName;
  columns: ColumnDef[];
  constraints: TableConstraint[];
  options: Record<string, string>;
  like?: TableName;
  as?: Query;
}

export interface DropTableStatement {
  kind: 'dropTable';
  ifExists: boolean;
  tables: TableName[];
}

export interface CreateViewStatement {
  kind: 'createView';
  orReplace: boolean;
  view: TableName;
  columns?: string[];
  query: Query;
}

export interface DropViewStatement {
  kind: 'dropView';
  ifExists: boolean;
  views: TableName[];
}

export interface CreateIndexStatement {
  kind: 'createIndex';
  unique: boolean;
  name: string;
  table: TableName;
  parts: KeyPart[];
}

export interface DropIndexStatement {
  kind: 'dropIndex';
  name: string;
  /** Without ON (SQLite's form): the one table with an index of that name. */
  table?: TableName;
}

export type AlterAction =
  | { kind: 'addColumn'; column: ColumnDef; position?: { first: true } | { after: string } }
  | { kind: 'addConstraint'; constraint: TableConstraint }
  | { kind: 'dropColumn'; name: string }
  | { kind: 'dropIndex'; name: string }
  | { kind: 'dropPrimaryKey' }
  | { kind: 'dropForeignKey'; name: string }
  | { kind: 'modifyColumn'; column: ColumnDef; position?: { first: true } | { after: string } }
  | { kind: 'changeColumn'; from: string; column: ColumnDef; position?: { first: true } | { after: string } }
  | { kind: 'renameColumn'; from: string; to: string }
  | { kind: 'renameIndex'; from: string; to: string }
  | { kind: 'renameTable'; to: TableName }
  | { kind: 'alterDefault'; column: string; default?: Expr }
  | { kind: 'options'; options: Record<string, string> };

export interface AlterTableStatement {
  kind: 'alterTable';
  table: TableName;
  actions: AlterAction[];
}

export interface TruncateStatement {
  kind: 'truncate';
  table: TableName;
}

export interface TransactionStatement {
  kind: 'begin' | 'commit' | 'rollback';
  /** START TRANSACTION READ ONLY. */
  readOnly?: boolean;
  /** ROLLBACK TO SAVEPOINT x. */
  savepoint?: string;
}

export interface SavepointStatement {
  kind: 'savepoint' | 'releaseSavepoint';
  name: string;
}

/** One assignment of SET: a variable (user or system) and its value. */
export interface SetAssignment {
  target: Variable;
  /** A bare word (SET sql_mode = TRADITIONAL, SET autocommit = ON) is kept as a string literal. */
  value: Expr;
}

export type SetStatement =
  | { kind: 'set'; assignments: SetAssignment[] }
  | { kind: 'setNames'; charset?: string; collation?: string }
  | { kind: 'setTransaction'; scope?: 'global' | 'session'; isolation?: string; readOnly?: boolean };

/**
 * SHOW: `what` names the form in upper case, words joined by spaces ('TABLES', 'COLUMNS',
 * 'CREATE TABLE', 'VARIABLES', 'INDEX', 'TABLE STATUS', ...).
 */
export interface ShowStatement {
  kind: 'show';
  what: string;
  full: boolean;
  scope?: 'global' | 'session';
  /** SHOW COLUMNS FROM t, SHOW CREATE TABLE t, SHOW INDEX FROM t. */
  target?: TableName;
  /** FROM db / IN db. */
  database?: string;
  like?: string;
  where?: Expr;
  limit?: Limit;
}

export interface DescribeStatement {
  kind: 'describe';
  table: TableName;
  column?: string;
}

export interface UseStatement {
  kind: 'use';
  database: string;
}

export interface CreateDatabaseStatement {
  kind: 'createDatabase';
  ifNotExists: boolean;
  name: string;
}

export interface DropDatabaseStatement {
  kind: 'dropDatabase';
  ifExists: boolean;
  name: string;
}

export interface LockTablesStatement {
  kind: 'lockTables';
  tables: { table: TableName; alias?: string; write: boolean }[];
}

export interface UnlockTablesStatement {
  kind: 'unlockTables';
}

export type Statement = (
  | SelectStatement
  | ExplainStatement
  | InsertStatement
  | UpdateStatement
  | DeleteStatement
  | CreateTableStatement
  | DropTableStatement
  | CreateViewStatement
  | DropViewStatement
  | CreateIndexStatement
  | DropIndexStatement
  | AlterTableStatement
  | TruncateStatement
  | TransactionStatement
  | SavepointStatement
  | SetStatement
  | ShowStatement
  | DescribeStatement
  | UseStatement
  | CreateDatabaseStatement
  | DropDatabaseStatement
  | LockTablesStatement
  | UnlockTablesStatement
) & {
  /** Where the statement starts and ends in the text it came from. */
  start?: number;
  end?: number;
};
