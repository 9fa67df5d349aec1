import type { Store } from '../store/store.js'
import { PRINCIPAL_DAYS_COLUMNS } from '../store/ddl.js'

type DayColumn = (typeof PRINCIPAL_DAYS_COLUMNS)[number]['name']

/** How each aggregate of the daily shape combines across days and edges. */
const COMBINE: Partial<Record<DayColumn, 'sum' | 'min' | 'max'>> = {}
for (const c of PRINCIPAL_DAYS_COLUMNS) {
  const fn = /^SimpleAggregateFunction\((sum|min|max),/.exec(c.type)?.[1] as 'sum' | 'min' | 'max' | undefined
  if (fn) COMBINE[c.name] = fn
}

function expr(name: DayColumn): string {
  return PRINCIPAL_DAYS_COLUMNS.find((c) => c.name === name)!.expr
}

/**
 * `aggregates` of access_log's events over [from, to), grouped by `keys`
 * (columns of the daily shape: principal_id, db_name, table_name, chain_id).
 * Whole UTC days are filtered on the day expression itself and aggregated
 * with the daily shape's own expressions, so ClickHouse answers them from
 * access_log's p_days projection (store/ddl.ts), pre-aggregated inside
 * access_log's own parts; the partial days at either edge are aggregated
 * from the events (the min/max index on occurred_at reads only those
 * granules). Exact for any window, a month costs ~1M pre-aggregated rows,
 * not 10M events, and every figure comes from the hash-chained table
 * itself: nothing derived to re-check at query time.
 *
 * `from`/`to` are SQL expressions of bound parameters; `where` filters on
 * db_name/table_name/principal_id.
 */
function span(store: Store, from: string, to: string, where: string, keys: readonly DayColumn[], aggregates: readonly DayColumn[]): string {
  const { firstFullDay, lastDayStart } = wholeDays(from, to)
  const key = keys.join(', ')
  const part = (range: string) =>
    `SELECT ${key}, ${aggregates.map((a) => `${expr(a)} AS ${a}`).join(', ')} FROM ${store.table('access_log')} WHERE ${range} AND ${where} GROUP BY ${key}`
  const day = "toDate(occurred_at, 'UTC')"
  return `
    SELECT ${key}, ${aggregates.map((a) => `${COMBINE[a]}(${a}) AS ${a}`).join(', ')}
    FROM (
      ${part(`${day} >= toDate(${firstFullDay}) AND ${day} < toDate(${lastDayStart}) AND ${firstFullDay} < ${lastDayStart}`)}
      UNION ALL ${part(`occurred_at >= ${from} AND occurred_at < least(${to}, ${firstFullDay})`)}
      UNION ALL ${part(`occurred_at >= greatest(${from}, ${lastDayStart}) AND occurred_at < ${to} AND ${lastDayStart} >= ${firstFullDay}`)})
    GROUP BY ${key}`
}

/** The whole UTC days of [from, to), read through the projection: [firstFullDay, lastDayStart) when not empty. */
function wholeDays(from: string, to: string): { firstFullDay: string; lastDayStart: string } {
  return {
    firstFullDay: `if(${from} = toStartOfDay(${from}, 'UTC'), toStartOfDay(${from}, 'UTC'), toStartOfDay(${from}, 'UTC') + toIntervalDay(1))`,
    lastDayStart: `toStartOfDay(${to}, 'UTC')`,
  }
}

/**
 * Per (principal, database, table) over [from, to): reads and rows_read (a
 * read split into parts counts once, on part 0), unpurposed_reads,
 * unpurposed_rows, first_at, last_at.
 */
export function principalTableTotals(store: Store, from: string, to: string, where = '1'): string {
  return span(store, from, to, where, ['principal_id', 'db_name', 'table_name'], ['reads', 'rows_read', 'unpurposed_reads', 'unpurposed_rows', 'first_at', 'last_at'])
}

/** Sources of a span answer: per chain, the seq range and number of the events counted. */
export function spanSources(store: Store, from: string, to: string, where = '1'): string {
  return `SELECT chain_id, first_seq, last_seq, events FROM (${span(store, from, to, where, ['chain_id'], ['first_seq', 'last_seq', 'events'])})`
}
