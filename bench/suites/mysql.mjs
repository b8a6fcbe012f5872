// MySQL protocol (issue "MySQL wire protocol"): sysbench-like oltp_point_select and oltp_read_write
// through the mysql2 driver, against tidemark serve and a MariaDB server, each in processes of their
// own, measured in alternating rounds by one client process.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonLines } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

await runJsonLines(path.join(here, '..', 'mysql_child.mjs'), quick ? ['--quick'] : [], (r) =>
  process.stdout.write(JSON.stringify(r) + '\n'),
);
