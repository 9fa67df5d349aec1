import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { bindBreachFilter, breachChecks, breachFilter, breachFilterHelp, breachReadsSql, breachSources, checkBreachFilter } from './breach-filter.js'
import { bucket, BUCKET_START_SQL, BUCKETS, TIMELINE_COLUMNS, type TimelineRow } from './buckets.js'

const Params = z.object({ ...breachFilter, bucket }).strict().superRefine(checkBreachFilter)

export const breachTimeline = defineQuery<typeof Params, TimelineRow>({
  name: 'breach-timeline',
  description: 'The reads of a breach over time: per time bucket and table, how many reads and rows the compromised principals, IPs or sessions made.',
  params: Params,
  paramHelp: { ...breachFilterHelp, bucket: `bucket size: ${Object.keys(BUCKETS).join(', ')} (default 1h)` },
  columns: [...TIMELINE_COLUMNS],
  sql: (store, p) => `
    SELECT ${BUCKET_START_SQL} AS bucket_start, db_name AS database, table_name AS table, countIf(part_index = 0) AS reads, sumIf(row_count, part_index = 0) AS rows_read
    FROM (${breachReadsSql(store.table('access_by_principal'), p, 'occurred_at, db_name, table_name, row_count, part_index')})
    GROUP BY bucket_start, db_name, table_name
    ORDER BY bucket_start, database, table`,
  sourcesSql: (store, p) => breachSources(store.table('access_by_principal'), p),
  checks: (store, p) => breachChecks(store, p),
  bind: (p) => ({ ...bindBreachFilter(p), bucket_seconds: BUCKETS[p.bucket] }),
})
