import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { principalId, toChDateTime, window } from './params.js'

export interface RecordTouchedRow {
  database: string
  table: string
  record_id: string
  columns: string[]
  first_access: string
  last_access: string
  access_count: number
}

const Params = z.object({ principal: principalId, ...window }).strict()

/**
 * Reads one principal's key range of access_by_principal (ordered by
 * principal_id, occurred_at) and expands record ids only for that range, so
 * the cost follows what the principal read, not the size of the log.
 */
export const recordsTouchedByPrincipal = defineQuery<typeof Params, RecordTouchedRow>({
  name: 'records-touched-by-principal',
  description: 'Every record a principal read in a window: per table and record id, the columns read, first and last access, and how often.',
  params: Params,
  columns: ['database', 'table', 'record_id', 'columns', 'first_access', 'last_access', 'access_count'],
  sql: (store) => `
    SELECT db_name AS database, table_name AS table, record_id,
           arraySort(groupUniqArrayArray(columns)) AS columns,
           min(occurred_at) AS first_access, max(occurred_at) AS last_access, count() AS access_count
    FROM (
      SELECT db_name, table_name, arrayJoin(record_ids) AS record_id, columns, occurred_at
      FROM ${store.table('access_by_principal')}
      WHERE principal_id = {principal:String}
        AND occurred_at >= {from:DateTime64(6, 'UTC')} AND occurred_at < {to:DateTime64(6, 'UTC')}
    )
    GROUP BY db_name, table_name, record_id
    ORDER BY db_name, table_name, record_id`,
  bind: (p) => ({ principal: p.principal, from: toChDateTime(p.from, 'min'), to: toChDateTime(p.to, 'max') }),
})
