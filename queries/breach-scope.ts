import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { bindBreachFilter, breachChecks, breachReadsSql, breachFilter, breachFilterHelp, breachSources, checkBreachFilter } from './breach-filter.js'
import { bindSubjectKeys, subjectPartSql } from './subject-keys.js'

const PART = subjectPartSql()

export interface BreachScopeRow {
  database: string
  table: string
  distinct_records: number
  /** Null when the table has no subject key (READTRAIL_SUBJECT_KEYS). */
  distinct_subjects: number | null
  columns: string[]
  reads: number
  rows_read: number
  principals: string[]
  first_access: string
  last_access: string
}

const Params = z.object(breachFilter).strict().superRefine(checkBreachFilter)

/**
 * Two passes over the same matching reads, joined per table: per read
 * (columns, reads, principals, first/last) and per record id (distinct
 * records and subjects), so neither multiplies the other.
 */
export const breachScope = defineQuery<typeof Params, BreachScopeRow>({
  name: 'breach-scope',
  description: 'What compromised principals, IPs or sessions read in a window: per table the distinct records and subjects, the columns exposed, first and last access.',
  params: Params,
  paramHelp: breachFilterHelp,
  columns: ['database', 'table', 'distinct_records', 'distinct_subjects', 'columns', 'reads', 'rows_read', 'principals', 'first_access', 'last_access'],
  sql: (store, p) => `
    SELECT r.db_name AS database, r.table_name AS table, e.distinct_records AS distinct_records,
           e.distinct_subjects AS distinct_subjects, r.exposed AS columns, r.n_reads AS reads, r.n_rows AS rows_read,
           r.who AS principals, r.first_at AS first_access, r.last_at AS last_access
    FROM (
      SELECT db_name, table_name, arraySort(groupUniqArrayArray(columns)) AS exposed, countIf(part_index = 0) AS n_reads, sumIf(row_count, part_index = 0) AS n_rows,
             arraySort(groupUniqArray(principal_id)) AS who, min(occurred_at) AS first_at, max(occurred_at) AS last_at
      FROM (${breachReadsSql(store.table('access_by_principal'), p, 'db_name, table_name, columns, row_count, part_index, principal_id, occurred_at')})
      GROUP BY db_name, table_name
    ) AS r
    INNER JOIN (
      -- A table keyed by the subject id itself (part 0) has as many subjects as
      -- records: only composite-key tables pay for a second distinct count.
      SELECT db_name, table_name, uniqExact(record_id) AS distinct_records,
             multiIf(${PART} = -1, NULL, ${PART} = 0, distinct_records, uniqExactIf(subject_id, subject_id IS NOT NULL)) AS distinct_subjects
      FROM (
        SELECT db_name, table_name, arrayJoin(record_ids) AS record_id,
               if(${PART} > 0, JSONExtractString(record_id, toInt64(${PART})), NULL) AS subject_id
        FROM (${breachReadsSql(store.table('access_by_principal'), p, 'db_name, table_name, record_ids')})
      )
      GROUP BY db_name, table_name
    ) AS e ON e.db_name = r.db_name AND e.table_name = r.table_name
    ORDER BY database, table`,
  sourcesSql: (store, p) => breachSources(store.table('access_by_principal'), p),
  checks: (store, p) => breachChecks(store, p),
  bind: (p, context) => ({ ...bindBreachFilter(p), ...bindSubjectKeys(context.subjectKeys) }),
})
