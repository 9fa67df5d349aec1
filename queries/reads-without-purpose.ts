import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { bindWindow, closedWindow, FROM_SQL, fromBeforeTo, limit, LIMIT_SQL, list, tableName, TO_SQL } from './params.js'
import { TABLE_FILTER } from './table-names.js'
import { principalTableTotals, spanSources } from './principal-days.js'

export interface ReadsWithoutPurposeRow {
  principal_id: string
  database: string
  table: string
  reads: number
  rows_read: number
  first_access: string
  last_access: string
}

const Params = z.object({ tables: list(tableName, 200).pipe(z.array(z.string()).min(1, 'name at least one table that requires a purpose')), ...closedWindow, limit: limit(1000) }).strict().superRefine(fromBeforeTo)

/**
 * From the daily shape's count of reads without a purpose (none, or only
 * blanks). first_access/last_access are of any read of the table by the
 * principal in the window; use who-touched-record or the principal's
 * timeline for the individual reads.
 */
export const readsWithoutPurpose = defineQuery<typeof Params, ReadsWithoutPurposeRow>({
  name: 'reads-without-purpose',
  description: 'Reads of tables that require a stated purpose (e.g. care, billing) that carried none: per principal and table.',
  params: Params,
  paramHelp: {
    tables: 'tables that require a purpose, comma-separated: patients, public.patients or db.public.patients (required)',
    from: 'window start (ISO 8601, inclusive; required)',
    to: 'window end (exclusive; required)',
    limit: 'rows to return, most reads first (default 1000, 0 = all)',
  },
  tables: { table: 'tables' },
  columns: ['principal_id', 'database', 'table', 'reads', 'rows_read', 'first_access', 'last_access'],
  sql: (store) => `
    SELECT principal_id, db_name AS database, table_name AS table, unpurposed_reads AS reads, unpurposed_rows AS rows_read,
           first_at AS first_access, last_at AS last_access
    FROM (${principalTableTotals(store, FROM_SQL, TO_SQL, TABLE_FILTER)})
    WHERE unpurposed_reads > 0
    ORDER BY reads DESC, principal_id, database, table
    ${LIMIT_SQL}`,
  sourcesSql: (store) => spanSources(store, FROM_SQL, TO_SQL, TABLE_FILTER),
  // Answered from access_log (its p_days projection and edge-day events): nothing derived to re-check.
  checks: () => [],
  bind: (p) => bindWindow(p),
})
