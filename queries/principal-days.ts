import type { Store } from '../store/store.js'
import { PRINCIPAL_DAYS_COLUMNS, principalDaysSelect } from '../store/ddl.js'
import { rollupRowsCheck, type AnswerCheck } from './answer-check.js'

/** The rollup's columns in its order: UNION ALL matches its branches by position. */
const COLUMNS = PRINCIPAL_DAYS_COLUMNS.map((c) => c.name).join(', ')

/**
 * Per (principal, database, table) over [from, to): reads and rows_read
 * (a read split into parts counts once, on part 0), events,
 * unpurposed_reads, unpurposed_rows, first_at, last_at — and, per chain, the
 * seq range they came from. Whole UTC days come from the principal_days
 * rollup, the partial days at either edge from access_log (its min/max
 * index on occurred_at reads only those granules), so the answer is exact
 * for any window and a month costs ~1M rollup rows, not 10M events.
 *
 * `from`/`to` are SQL expressions of bound parameters; `where` filters on
 * db_name/table_name/principal_id, which both sources have.
 */
export function principalTableSpan(store: Store, from: string, to: string, where = '1'): string {
  const { firstFullDay, lastDayStart } = wholeDays(from, to)
  // The edge days are aggregated by the rollup's own SELECT, so the two
  // sources cannot disagree on what a read, a row or a missing purpose is.
  const raw = (lo: string, hi: string, extra: string) =>
    principalDaysSelect(store.table('access_log'), `WHERE occurred_at >= ${lo} AND occurred_at < ${hi} AND ${extra} AND ${where}`)
  return `
    SELECT ${COLUMNS}
    FROM ${store.table('principal_days')}
    WHERE day >= toDate(${firstFullDay}) AND day < toDate(${lastDayStart}) AND ${firstFullDay} < ${lastDayStart} AND ${where}
    UNION ALL ${raw(from, `least(${to}, ${firstFullDay})`, '1')}
    UNION ALL ${raw(`greatest(${from}, ${lastDayStart})`, to, `${lastDayStart} >= ${firstFullDay}`)}`
}

/** The whole UTC days of [from, to), which a span reads from the rollup: [firstFullDay, lastDayStart) when not empty. */
function wholeDays(from: string, to: string): { firstFullDay: string; lastDayStart: string } {
  return {
    firstFullDay: `if(${from} = toStartOfDay(${from}, 'UTC'), toStartOfDay(${from}, 'UTC'), toStartOfDay(${from}, 'UTC') + toIntervalDay(1))`,
    lastDayStart: `toStartOfDay(${to}, 'UTC')`,
  }
}

/**
 * The rollup rows a span reads, against the rollup's SELECT over
 * access_log's events of the same whole days (the edge days come from
 * access_log already). Cost: the span's events in access_log, aggregated.
 */
export function spanCheck(store: Store, from: string, to: string, where = '1'): AnswerCheck {
  const { firstFullDay, lastDayStart } = wholeDays(from, to)
  return rollupRowsCheck(store, 'principal_days', {
    rollupWhere: `day >= toDate(${firstFullDay}) AND day < toDate(${lastDayStart}) AND ${firstFullDay} < ${lastDayStart} AND ${where}`,
    logWhere: `occurred_at >= ${firstFullDay} AND occurred_at < ${lastDayStart} AND ${where}`,
    what: 'the whole days of the window',
  })
}

/** The same span reduced to (principal, database, table); re-aggregates unmerged rollup rows too. */
export function principalTableTotals(store: Store, from: string, to: string, where = '1'): string {
  return `
    SELECT principal_id, db_name, table_name, sum(reads) AS reads, sum(rows_read) AS rows_read,
           sum(unpurposed_reads) AS unpurposed_reads, sum(unpurposed_rows) AS unpurposed_rows,
           min(first_at) AS first_at, max(last_at) AS last_at
    FROM (${principalTableSpan(store, from, to, where)})
    GROUP BY principal_id, db_name, table_name`
}

/** Sources of a span answer: per chain, the seq range of the events counted. */
export function spanSources(store: Store, from: string, to: string, where = '1'): string {
  return `SELECT chain_id, min(first_seq) AS first_seq, max(last_seq) AS last_seq, sum(events) AS events
    FROM (${principalTableSpan(store, from, to, where)}) GROUP BY chain_id`
}
