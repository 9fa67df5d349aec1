import { z } from 'zod'
import { FIRST_PART_SQL } from '../store/ddl.js'
import { defineQuery } from './saved-query.js'
import { bindWindow, closedWindow, FROM_SQL, fromBeforeTo, IN_WINDOW, positive, TO_SQL, whole, windowSources } from './params.js'

export interface BulkExtractionRow {
  principal_id: string
  /** 'threshold', 'baseline' or 'threshold+baseline'. */
  reason: string
  peak_minute: string
  peak_rows_per_minute: number
  peak_hour_rows: number
  /** Mean rows per active hour over the baseline days; null for a principal with no history. */
  baseline_rows_per_hour: number | null
  /** peak_hour_rows / baseline_rows_per_hour; null without a baseline. */
  ratio: number | null
  reads: number
  rows_read: number
  first_access: string
  last_access: string
}

// Whole hours that overlap the window.
const IN_HOURS = `hour >= toStartOfHour(${FROM_SQL}) AND hour < ${TO_SQL}`

// Every hour step 1 reads: from the baseline's first to the hour holding the window's end.
const HOURS_FROM = `toStartOfHour(${FROM_SQL}) - toIntervalDay({baseline_days:UInt32})`
const HOURS_TO = `if(toStartOfHour(${TO_SQL}) = ${TO_SQL}, toStartOfHour(${TO_SQL}), toStartOfHour(${TO_SQL}) + toIntervalHour(1))`

const Params = z
  .object({
    ...closedWindow,
    threshold: whole(1, 1_000_000_000).default(300),
    factor: positive(1_000_000).default(10),
    baseline_days: whole(1, 366).default(7),
  })
  .strict()
  .superRefine(fromBeforeTo)

/**
 * Step 1, from access_log's p_hours projection (the per-hour shape, kept
 * inside access_log's own parts, so the figures are the chained rows' own),
 * read once: each principal's rows per hour over the baseline days and the
 * window, its baseline (mean rows per active hour before the window) and
 * the hours of the window over the threshold or over `factor` times that
 * baseline. A minute over the threshold implies its hour is over it, and
 * hours at the window's edges are whole: a superset of what step 2 keeps.
 * Grouped per principal and hour, coarser than the projection's key, so
 * ClickHouse combines its pre-aggregated rows instead of the events.
 */
const FLAGGED_HOURS = (log: string) => `
    SELECT principal_id, wh.1 AS hour_s, base
    FROM (
      SELECT principal_id,
             ifNull(sumIf(rows_read, hour < toStartOfHour(${FROM_SQL})) / nullIf(countIf(hour < toStartOfHour(${FROM_SQL})), 0), 0) AS base,
             groupArrayIf((toUnixTimestamp(hour), rows_read), ${IN_HOURS}) AS window_hours
      FROM (
        SELECT toStartOfHour(occurred_at, 'UTC') AS hour, principal_id, sumIf(row_count, ${FIRST_PART_SQL}) AS rows_read
        FROM ${log}
        WHERE toStartOfHour(occurred_at, 'UTC') >= ${HOURS_FROM} AND toStartOfHour(occurred_at, 'UTC') < ${HOURS_TO}
        GROUP BY hour, principal_id)
      GROUP BY principal_id)
    ARRAY JOIN window_hours AS wh
    WHERE wh.2 >= {threshold:UInt64} OR (base > 0 AND wh.2 >= {factor:Float64} * base)`

/**
 * The scraper pattern: a principal reading more rows in one minute than
 * `threshold`, or more in one hour than `factor` times its own mean active
 * hour over the `baseline_days` before the window.
 *
 * Step 2 reads the shortlisted principals' shortlisted hours minute by
 * minute from access_log (its p_principal projection), inside the exact window, and keeps each
 * principal's own hours that meet the threshold or its baseline bound there:
 * the peak minute and hour are those hours' (a minute over the threshold
 * always lies in one). Totals are the principal's reads in the window.
 */
export const bulkExtraction = defineQuery<typeof Params, BulkExtractionRow>({
  name: 'bulk-extraction',
  description: 'Principals reading rows faster than a person can: over a per-minute threshold, or many times their own hourly baseline of the previous days.',
  params: Params,
  paramHelp: {
    from: 'window start (ISO 8601, inclusive; required)',
    to: 'window end (exclusive; required)',
    threshold: 'rows read in one minute that no person reads (default 300)',
    factor: "flag an hour with this many times the principal's baseline (default 10)",
    baseline_days: 'days before the window that make the baseline (default 7)',
  },
  columns: ['principal_id', 'reason', 'peak_minute', 'peak_rows_per_minute', 'peak_hour_rows', 'baseline_rows_per_hour', 'ratio', 'reads', 'rows_read', 'first_access', 'last_access'],
  prepare: {
    sql: (store) => FLAGGED_HOURS(store.table('access_log')),
    // Distinct principals and hours, not pairs: a loose threshold can flag
    // every principal-hour, and 170k bound pairs cost ClickHouse a minute to
    // take in. Their cross product is a superset that only adds hours to look at.
    bind: (rows) => {
      const bases = new Map<string, number>()
      for (const r of rows) bases.set(String(r['principal_id']), Number(r['base'] ?? 0))
      return {
        flagged_principals: [...bases.keys()],
        flagged_bases: [...bases.values()],
        flagged_hours: [...new Set(rows.map((r) => Number(r['hour_s'])))],
      }
    },
  },
  sql: (store) => `
    WITH
      bases AS (
        SELECT t.1 AS principal_id, t.2 AS base
        FROM (SELECT arrayJoin(arrayZip({flagged_principals:Array(String)}, {flagged_bases:Array(Float64)})) AS t)),
      minutes AS (
        SELECT principal_id, toStartOfMinute(occurred_at) AS minute, sumIf(row_count, part_index = 0) AS minute_rows
        FROM ${store.table('access_log')}
        WHERE principal_id IN {flagged_principals:Array(String)} AND ${IN_WINDOW}
          AND toUnixTimestamp(toStartOfHour(occurred_at)) IN {flagged_hours:Array(UInt32)}
        GROUP BY principal_id, minute),
      -- Each principal's own flagged hours, judged on its rows inside the
      -- window (step 1's whole hours only shortlisted them).
      kept AS (
        SELECT hs.principal_id AS principal_id, hs.h AS h, hs.hour_rows AS hour_rows
        FROM (SELECT principal_id, toStartOfHour(minute) AS h, sum(minute_rows) AS hour_rows FROM minutes GROUP BY principal_id, h) AS hs
        INNER JOIN bases AS b ON b.principal_id = hs.principal_id
        WHERE hs.hour_rows >= {threshold:UInt64} OR (b.base > 0 AND hs.hour_rows >= {factor:Float64} * b.base)),
      peaks AS (
        SELECT m.principal_id AS principal_id, argMax(m.minute, m.minute_rows) AS peak_at, max(m.minute_rows) AS peak_minute_rows,
               max(k.hour_rows) AS peak_hour
        FROM minutes AS m
        INNER JOIN kept AS k ON k.principal_id = m.principal_id AND k.h = toStartOfHour(m.minute)
        GROUP BY m.principal_id),
      totals AS (
        SELECT principal_id, countIf(part_index = 0) AS n_reads, sumIf(row_count, part_index = 0) AS n_rows, min(occurred_at) AS first_at, max(occurred_at) AS last_at
        FROM ${store.table('access_log')}
        WHERE principal_id IN {flagged_principals:Array(String)} AND ${IN_WINDOW}
        GROUP BY principal_id)
    SELECT p.principal_id AS principal_id,
           arrayStringConcat(arrayFilter(x -> x != '', [if(p.peak_minute_rows >= {threshold:UInt64}, 'threshold', ''),
             if(b.base > 0 AND p.peak_hour >= {factor:Float64} * b.base, 'baseline', '')]), '+') AS reason,
           p.peak_at AS peak_minute, p.peak_minute_rows AS peak_rows_per_minute, p.peak_hour AS peak_hour_rows,
           if(b.base > 0, round(b.base, 1), NULL) AS baseline_rows_per_hour,
           if(b.base > 0, round(p.peak_hour / b.base, 1), NULL) AS ratio,
           t.n_reads AS reads, t.n_rows AS rows_read, t.first_at AS first_access, t.last_at AS last_access
    FROM peaks AS p
    INNER JOIN bases AS b ON b.principal_id = p.principal_id
    INNER JOIN totals AS t ON t.principal_id = p.principal_id
    WHERE reason != ''
    ORDER BY peak_rows_per_minute DESC, principal_id`,
  sourcesSql: (store) => windowSources(store.table('access_log')),
  // Both steps read access_log itself (its projections): nothing derived to re-check.
  checks: () => [],
  bind: (p) => ({ ...bindWindow(p), threshold: p.threshold, factor: p.factor, baseline_days: p.baseline_days }),
})
