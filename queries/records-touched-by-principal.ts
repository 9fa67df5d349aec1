import { z } from 'zod'
import type { Store } from '../store/store.js'
import { defineQuery } from './saved-query.js'
import { bindWindow, eventSources, fromBeforeTo, IN_WINDOW, limit, principalId, tableName, window } from './params.js'
import { TABLE_FILTER } from './table-names.js'

export interface RecordTouchedRow {
  database: string
  table: string
  record_id: string
  columns: string[]
  first_access: string
  last_access: string
  access_count: number
}

const Params = z.object({ principal: principalId, table: tableName.optional(), ...window, limit: limit(10_000) }).strict().superRefine(fromBeforeTo)

const WHERE = `principal_id = {principal:String} AND ${TABLE_FILTER} AND ${IN_WINDOW}`

const principalRange = (store: Store, columns: string) => `SELECT ${columns} FROM ${store.table('access_log')} WHERE ${WHERE}`

/**
 * Reads one principal's key range of access_log's p_principal projection
 * (ordered by principal_id, occurred_at) and expands record ids only for that
 * range, so the cost follows what the principal read, not the size of the
 * log. The record ids are expanded by ARRAY JOIN outside the subquery:
 * ClickHouse does not use a projection for a SELECT that calls arrayJoin.
 */
export const recordsTouchedByPrincipal = defineQuery<typeof Params, RecordTouchedRow>({
  name: 'records-touched-by-principal',
  description: 'Every record a principal read in a window: per table and record id, the columns read, first and last access, and how often.',
  params: Params,
  paramHelp: {
    principal: 'principal id, e.g. clerk.marta',
    table: 'only this table: patients, public.patients or db.public.patients',
    from: 'window start (ISO 8601, inclusive)',
    to: 'window end (exclusive)',
    limit: 'rows to return (default 10000, 0 = all)',
  },
  tables: { table: 'table' },
  columns: ['database', 'table', 'record_id', 'columns', 'first_access', 'last_access', 'access_count'],
  // With a limit, the first record ids are picked on the ids alone, then only
  // their reads are aggregated: a scraper's 705,000 records are not all
  // aggregated to show the first 10,000.
  sql: (store, p) => `
    SELECT db_name AS database, table_name AS table, record_id,
           arraySort(groupUniqArrayArray(columns)) AS columns,
           min(occurred_at) AS first_access, max(occurred_at) AS last_access, count() AS access_count
    FROM (${principalRange(store, 'db_name, table_name, record_ids, columns, occurred_at')}) ARRAY JOIN record_ids AS record_id
    ${p.limit > 0 ? `WHERE (db_name, table_name, record_id) IN (
      SELECT db_name, table_name, record_id
      FROM (${principalRange(store, 'db_name, table_name, record_ids')}) ARRAY JOIN record_ids AS record_id
      ORDER BY db_name, table_name, record_id
      LIMIT 1 BY db_name, table_name, record_id
      LIMIT {limit_plus_one:UInt64})` : ''}
    GROUP BY db_name, table_name, record_id
    ORDER BY db_name, table_name, record_id`,
  sourcesSql: (store) => eventSources(store.table('access_log'), WHERE),
  // Answered from access_log itself: nothing derived to re-check.
  checks: () => [],
  bind: (p) => ({ principal: p.principal, ...bindWindow(p) }),
})
