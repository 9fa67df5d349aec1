import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { bindWindow, closedWindow, databaseName, FROM_SQL, fromBeforeTo, TO_SQL, tableName, whole } from './params.js'
import { TABLE_FILTER } from './table-names.js'
import { principalTableTotals, spanSources } from './principal-days.js'

export interface FirstTimeRow {
  principal_id: string
  database: string
  table: string
  first_read_at: string
  reads: number
  rows_read: number
}

const Params = z
  .object({ ...closedWindow, lookback_days: whole(1, 3660).default(90), database: databaseName.optional(), table: tableName.optional() })
  .strict()
  .superRefine(fromBeforeTo)

const LOOKBACK_START = `${FROM_SQL} - toIntervalDay({lookback_days:UInt32})`


/**
 * The (principal, table) pairs read in the window minus those read in the
 * look-back, both from whole days (the p_days projection) plus the partial
 * edge days.
 */
export const firstTimeAccess = defineQuery<typeof Params, FirstTimeRow>({
  name: 'first-time-access',
  description: 'Principals reading a table they had not read in the look-back period before the window: new access paths worth a look.',
  params: Params,
  paramHelp: {
    from: 'window start (ISO 8601, inclusive; required)',
    to: 'window end (exclusive; required)',
    lookback_days: 'days before the window in which the principal must not have read the table (default 90)',
    database: 'only this database',
    table: 'only this table: patients, public.patients or db.public.patients',
  },
  tables: { table: 'table', database: 'database' },
  columns: ['principal_id', 'database', 'table', 'first_read_at', 'reads', 'rows_read'],
  sql: (store) => `
    SELECT w.principal_id AS principal_id, w.db_name AS database, w.table_name AS table, w.first_at AS first_read_at,
           w.reads AS reads, w.rows_read AS rows_read
    FROM (${principalTableTotals(store, FROM_SQL, TO_SQL, TABLE_FILTER)}) AS w
    LEFT ANTI JOIN (${principalTableTotals(store, LOOKBACK_START, FROM_SQL, TABLE_FILTER)}) AS before
      ON before.principal_id = w.principal_id AND before.db_name = w.db_name AND before.table_name = w.table_name
    ORDER BY first_read_at, principal_id, database, table`,
  // It stands on the window and on the absence of reads in the look-back.
  sourcesSql: (store) => spanSources(store, LOOKBACK_START, TO_SQL, TABLE_FILTER),
  // Both spans' whole days at once: the look-back's and the window's.
  // Answered from access_log (its p_days projection and edge-day events): nothing derived to re-check.
  checks: () => [],
  bind: (p) => ({ ...bindWindow(p), lookback_days: p.lookback_days }),
})
