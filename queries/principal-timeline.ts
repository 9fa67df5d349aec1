import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { bucket, BUCKET_START_SQL, BUCKETS, TIMELINE_COLUMNS, type TimelineRow } from './buckets.js'
import { bindWindow, eventSources, fromBeforeTo, IN_WINDOW, principalId, window } from './params.js'

const Params = z.object({ principal: principalId, ...window, bucket }).strict().superRefine(fromBeforeTo)

const WHERE = `principal_id = {principal:String} AND ${IN_WINDOW}`

/** One principal's key range of access_log (its p_principal projection), bucketed: answered from the chained table itself. */
export const principalTimeline = defineQuery<typeof Params, TimelineRow>({
  name: 'principal-timeline',
  description: "A principal's reads over time: per time bucket and table, how many reads and rows.",
  params: Params,
  paramHelp: {
    principal: 'principal id',
    from: 'window start (ISO 8601, inclusive)',
    to: 'window end (exclusive)',
    bucket: `bucket size: ${Object.keys(BUCKETS).join(', ')} (default 1h)`,
  },
  columns: [...TIMELINE_COLUMNS],
  sql: (store) => `
    SELECT ${BUCKET_START_SQL} AS bucket_start, db_name AS database, table_name AS table, countIf(part_index = 0) AS reads, sumIf(row_count, part_index = 0) AS rows_read
    FROM ${store.table('access_log')}
    WHERE ${WHERE}
    GROUP BY bucket_start, db_name, table_name
    ORDER BY bucket_start, database, table`,
  sourcesSql: (store) => eventSources(store.table('access_log'), WHERE),
  checks: () => [],
  bind: (p) => ({ principal: p.principal, ...bindWindow(p), bucket_seconds: BUCKETS[p.bucket] }),
})
