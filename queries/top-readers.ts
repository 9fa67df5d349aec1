import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { bindWindow, closedWindow, databaseName, FROM_SQL, fromBeforeTo, IN_WINDOW, tableName, TO_SQL, whole } from './params.js'
import { TABLE_FILTER } from './table-names.js'
import { principalTableTotals, spanSources } from './principal-days.js'

export interface TopReaderRow {
  principal_id: string
  reads: number
  rows_read: number
  distinct_records: number
  tables: string[]
  first_access: string
  last_access: string
}

const Params = z
  .object({ ...closedWindow, database: databaseName.optional(), table: tableName.optional(), limit: whole(1, 1000).default(20) })
  .strict()
  .superRefine(fromBeforeTo)

const WHERE = `${IN_WINDOW} AND ${TABLE_FILTER}`

/**
 * Ranks on rows read (from access_log's daily projection and the edge days), then counts distinct records only
 * for the top principals: the exact count expands their record ids, not
 * everyone's.
 */
export const topReaders = defineQuery<typeof Params, TopReaderRow>({
  name: 'top-readers',
  description: 'The principals who read the most rows in a window, optionally of one table: reads, rows, distinct records, tables, first and last.',
  params: Params,
  paramHelp: {
    from: 'window start (ISO 8601, inclusive; required)',
    to: 'window end (exclusive; required)',
    database: 'only this database',
    table: 'only this table: patients, public.patients or db.public.patients',
    limit: 'how many principals (default 20)',
  },
  tables: { table: 'table', database: 'database' },
  columns: ['principal_id', 'reads', 'rows_read', 'distinct_records', 'tables', 'first_access', 'last_access'],
  sql: (store) => `
    WITH top AS (
      SELECT principal_id, sum(reads) AS n_reads, sum(rows_read) AS n_rows, min(first_at) AS first_at, max(last_at) AS last_at,
             arraySort(groupUniqArray(concat(db_name, '.', table_name))) AS read_tables
      FROM (${principalTableTotals(store, FROM_SQL, TO_SQL, TABLE_FILTER)})
      GROUP BY principal_id
      ORDER BY n_rows DESC, principal_id
      LIMIT {limit:UInt32})
    SELECT t.principal_id AS principal_id, t.n_reads AS reads, t.n_rows AS rows_read, d.n_distinct AS distinct_records,
           t.read_tables AS tables, t.first_at AS first_access, t.last_at AS last_access
    FROM top AS t
    INNER JOIN (
      -- Records of different tables are different records: count per table, then add.
      SELECT principal_id, sum(per_table) AS n_distinct FROM (
        SELECT principal_id, uniqExact(record_id) AS per_table
        FROM (SELECT principal_id, db_name, table_name, record_ids FROM ${store.table('access_log')}
              WHERE principal_id IN (SELECT principal_id FROM top) AND ${WHERE}) ARRAY JOIN record_ids AS record_id
        GROUP BY principal_id, db_name, table_name)
      GROUP BY principal_id) AS d ON d.principal_id = t.principal_id
    ORDER BY rows_read DESC, principal_id`,
  sourcesSql: (store) => spanSources(store, FROM_SQL, TO_SQL, TABLE_FILTER),
  // Ranked from access_log's p_days projection and edge days, distinct records
  // from its p_principal projection: nothing derived to re-check.
  checks: () => [],
  bind: (p) => ({ ...bindWindow(p), limit: p.limit }),
})
