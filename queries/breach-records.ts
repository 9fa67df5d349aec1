import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { bindBreachFilter, breachChecks, breachFilter, breachFilterHelp, breachReadsSql, breachSources, checkBreachFilter } from './breach-filter.js'
import { limit } from './params.js'
import { bindSubjectKeys, subjectIdSql } from './subject-keys.js'

export interface BreachRecordRow {
  database: string
  table: string
  record_id: string
  /** Null when the table has no subject key (READTRAIL_SUBJECT_KEYS). */
  subject_id: string | null
  columns: string[]
  reads: number
  principals: string[]
  first_access: string
  last_access: string
}

const Params = z.object({ ...breachFilter, limit: limit(10_000) }).strict().superRefine(checkBreachFilter)

/** The notification list: one row per exposed record, with its subject and what was read of it. */
export const breachRecords = defineQuery<typeof Params, BreachRecordRow>({
  name: 'breach-records',
  description: 'The notification list of a breach: every record the compromised principals, IPs or sessions read, with its data subject, the columns exposed and when.',
  params: Params,
  paramHelp: { ...breachFilterHelp, limit: 'rows to return (default 10000, 0 = all: use with --format csv)' },
  columns: ['database', 'table', 'record_id', 'subject_id', 'columns', 'reads', 'principals', 'first_access', 'last_access'],
  // With a limit, the first keys are picked on the ids alone (ORDER BY …
  // LIMIT 1 BY … LIMIT n sorts only the top rows: 17 ms for 705,000 ids where
  // SELECT DISTINCT hashed them all in 150–220 ms), then only their reads
  // are aggregated.
  sql: (store, p) => {
    const reads = (columns: string) => breachReadsSql(store.table('access_by_principal'), p, columns)
    const firstKeys = `(db_name, table_name, record_id) IN (
        SELECT db_name, table_name, record_id
        FROM (SELECT db_name, table_name, arrayJoin(record_ids) AS record_id FROM (${reads('db_name, table_name, record_ids')}))
        ORDER BY db_name, table_name, record_id
        LIMIT 1 BY db_name, table_name, record_id
        LIMIT {limit_plus_one:UInt64})`
    return `
    SELECT db_name AS database, table_name AS table, record_id, any(subject) AS subject_id,
           arraySort(groupUniqArrayArray(columns)) AS columns, count() AS reads,
           arraySort(groupUniqArray(principal_id)) AS principals, min(occurred_at) AS first_access, max(occurred_at) AS last_access
    FROM (
      SELECT db_name, table_name, arrayJoin(arrayDistinct(record_ids)) AS record_id, ${subjectIdSql()} AS subject, columns, principal_id, occurred_at
      FROM (${reads('db_name, table_name, record_ids, columns, principal_id, occurred_at')})
    )
    ${p.limit > 0 ? `WHERE ${firstKeys}` : ''}
    GROUP BY db_name, table_name, record_id
    ORDER BY db_name, table_name, record_id`
  },
  sourcesSql: (store, p) => breachSources(store.table('access_by_principal'), p),
  checks: (store, p) => breachChecks(store, p),
  bind: (p, context) => ({ ...bindBreachFilter(p), ...bindSubjectKeys(context.subjectKeys) }),
})
