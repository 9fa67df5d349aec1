import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { bindWindow, closedWindow, fromBeforeTo, positive, whole, windowSources } from './params.js'

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

// Whole rollup hours that overlap the window.
const IN_HOURS = `hour >= toStartOfHour({from:DateTime64(6, 'UTC')}) AND hour < {to:DateTime64(6, 'UTC')}`

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
 * The scraper pattern: a principal reading more rows in one minute than
 * `threshold`, or more in one hour than `factor` times its own mean active
 * hour over the `baseline_days` before the window.
 *
 * Candidates come from the hourly rollup, keyed (hour, principal, chain):
 * a minute over the threshold implies its hour is over it, and an hour over
 * a bound implies one of its C chain rows holds at least bound / C, so only
 * those rows' hours are summed (grouping every principal-hour of a month
 * cost 1.4 s here, this 0.1 s). Rollup hours at the window's edges are
 * whole, so the candidates are a superset. Only candidates are then read
 * minute by minute from access_by_principal, inside the exact window, and
 * every figure shown is computed from those rows.
 */
export const bulkExtraction = defineQuery<typeof Params, BulkExtractionRow>({
  name: 'bulk-extraction',
  description: 'Principals reading rows faster than a person can: over a per-minute threshold, or many times their own hourly baseline of the previous days.',
  params: Params,
  paramHelp: {
    from: 'window start (ISO 8601, inclusive; required)',
    to: 'window end (exclusive; required)',
    threshold: 'rows read in one minute that no person reads (default 300)',
    factor: 'flag an hour with this many times the principal\'s baseline (default 10)',
    baseline_days: 'days before the window that make the baseline (default 7)',
  },
  columns: ['principal_id', 'reason', 'peak_minute', 'peak_rows_per_minute', 'peak_hour_rows', 'baseline_rows_per_hour', 'ratio', 'reads', 'rows_read', 'first_access', 'last_access'],
  sql: (store) => `
    WITH
      (SELECT greatest(uniqExact(chain_id), 1) FROM ${store.table('principal_hours')} WHERE ${IN_HOURS}) AS chains,
      baseline AS (
        SELECT principal_id, sum(rows_read) / uniqExact(hour) AS per_hour FROM ${store.table('principal_hours')}
        WHERE hour >= toStartOfHour({from:DateTime64(6, 'UTC')}) - toIntervalDay({baseline_days:UInt32}) AND hour < toStartOfHour({from:DateTime64(6, 'UTC')})
        GROUP BY principal_id),
      hot AS (
        SELECT DISTINCT r.principal_id AS principal_id, r.hour AS hour
        FROM (
          -- Per key first: unmerged parts (or a forged split) hold several rows for one key.
          SELECT hour, principal_id, chain_id, sum(rows_read) AS chain_rows FROM ${store.table('principal_hours')}
          WHERE ${IN_HOURS} GROUP BY hour, principal_id, chain_id) AS r
        LEFT JOIN baseline AS b ON b.principal_id = r.principal_id
        WHERE r.chain_rows * chains >= if(b.per_hour > 0, least(toFloat64({threshold:UInt64}), {factor:Float64} * b.per_hour), toFloat64({threshold:UInt64}))),
      window_hours AS (
        SELECT principal_id, hour, sum(rows_read) AS hour_rows FROM ${store.table('principal_hours')}
        WHERE ${IN_HOURS} AND (principal_id, hour) IN (SELECT principal_id, hour FROM hot)
        GROUP BY principal_id, hour),
      candidates AS (
        SELECT w.principal_id AS principal_id, any(b.per_hour) AS base
        FROM window_hours AS w LEFT JOIN baseline AS b ON b.principal_id = w.principal_id
        GROUP BY w.principal_id
        HAVING max(w.hour_rows) >= {threshold:UInt64} OR (base > 0 AND max(w.hour_rows) >= {factor:Float64} * base)),
      minutes AS (
        SELECT principal_id, toStartOfMinute(occurred_at) AS minute, sum(row_count) AS minute_rows, count() AS minute_reads,
               min(occurred_at) AS first_at, max(occurred_at) AS last_at
        FROM ${store.table('access_by_principal')}
        WHERE principal_id IN (SELECT principal_id FROM candidates)
          AND occurred_at >= {from:DateTime64(6, 'UTC')} AND occurred_at < {to:DateTime64(6, 'UTC')}
        GROUP BY principal_id, minute),
      per_principal AS (
        SELECT principal_id, argMax(minute, minute_rows) AS peak_at, max(minute_rows) AS peak_minute_rows,
               sum(minute_reads) AS n_reads, sum(minute_rows) AS n_rows, min(first_at) AS first_at, max(last_at) AS last_at,
               max(hour_rows) AS peak_hour
        FROM minutes
        -- the exact hour sums, inside the window, beside each minute
        INNER JOIN (SELECT principal_id, toStartOfHour(minute) AS h, sum(minute_rows) AS hour_rows FROM minutes GROUP BY principal_id, h) AS hs
          ON hs.principal_id = minutes.principal_id AND hs.h = toStartOfHour(minutes.minute)
        GROUP BY principal_id)
    SELECT p.principal_id AS principal_id,
           arrayStringConcat(arrayFilter(x -> x != '', [if(p.peak_minute_rows >= {threshold:UInt64}, 'threshold', ''),
             if(c.base > 0 AND p.peak_hour >= {factor:Float64} * c.base, 'baseline', '')]), '+') AS reason,
           p.peak_at AS peak_minute, p.peak_minute_rows AS peak_rows_per_minute, p.peak_hour AS peak_hour_rows,
           if(c.base > 0, round(c.base, 1), NULL) AS baseline_rows_per_hour,
           if(c.base > 0, round(p.peak_hour / c.base, 1), NULL) AS ratio,
           p.n_reads AS reads, p.n_rows AS rows_read, p.first_at AS first_access, p.last_at AS last_access
    FROM per_principal AS p
    INNER JOIN candidates AS c ON c.principal_id = p.principal_id
    WHERE reason != ''
    ORDER BY peak_rows_per_minute DESC, principal_id`,
  sourcesSql: (store) => windowSources(store.table('access_log')),
  bind: (p) => ({ ...bindWindow(p), threshold: p.threshold, factor: p.factor, baseline_days: p.baseline_days }),
})
