/** A session's variables: the system variables a MySQL client may ask for, and their defaults. */
import type { SessionInfo } from './vector.js';
import type { SqlValue } from './values.js';

/** The system variables a MySQL client may ask for, and what they hold here. */
export function systemVariables(): Map<string, SqlValue> {
  return new Map<string, SqlValue>([
    ['version', '8.0.36-tidemark'],
    ['version_comment', 'tidemark'],
    ['autocommit', 1],
    ['sql_mode', 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'],
    ['character_set_client', 'utf8mb4'],
    ['character_set_connection', 'utf8mb4'],
    ['character_set_results', 'utf8mb4'],
    ['character_set_server', 'utf8mb4'],
    ['collation_connection', 'utf8mb4_bin'],
    ['collation_server', 'utf8mb4_bin'],
    ['max_allowed_packet', 64 * 1024 * 1024],
    ['transaction_isolation', 'REPEATABLE-READ'],
    ['tx_isolation', 'REPEATABLE-READ'],
    ['transaction_read_only', 0],
    ['tx_read_only', 0],
    ['wait_timeout', 28800],
    ['interactive_timeout', 28800],
    ['net_write_timeout', 60],
    ['lower_case_table_names', 0],
    ['time_zone', 'UTC'],
    ['system_time_zone', 'UTC'],
    ['auto_increment_increment', 1],
    ['license', 'Apache-2.0'],
    ['have_ssl', 'DISABLED'],
    ['init_connect', ''],
    ['query_cache_size', 0],
    ['query_cache_type', 'OFF'],
    ['performance_schema', 0],
    ['sql_select_limit', '18446744073709551615'],
    // How scans and joins use secondary indexes: 'cost' (by cost), 'prefer' (whenever one is
    // usable, as a test of the index paths on tables too small for them to pay), 'off' (never).
    ['tidemark_indexes', 'cost'],
  ]);
}

export function defaultSession(user = 'root', connectionId = 0): SessionInfo {
  return { system: systemVariables(), user: new Map(), database: 'tidemark', userName: user, connectionId };
}

/** The session's tidemark_indexes (see systemVariables): how the planner uses secondary indexes. */
export function indexMode(session: SessionInfo): 'cost' | 'prefer' | 'off' {
  const v = session.system.get('tidemark_indexes');
  const s = typeof v === 'string' ? v.toLowerCase() : v;
  if (s === 'off' || s === 0) return 'off';
  if (s === 'prefer') return 'prefer';
  return 'cost';
}
