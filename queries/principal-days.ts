import type { Store } from '../store/store.js'
import { FIRST_PART_SQL, NO_PURPOSE_SQL } from '../store/ddl.js'

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
  const firstFullDay = `if(${from} = toStartOfDay(${from}, 'UTC'), toStartOfDay(${from}, 'UTC'), toStartOfDay(${from}, 'UTC') + toIntervalDay(1))`
  const lastDayStart = `toStartOfDay(${to}, 'UTC')`
  const raw = (lo: string, hi: string, extra: string) => `
      SELECT principal_id, db_name, table_name, chain_id, count() AS events, countIf(${FIRST_PART_SQL}) AS reads, sumIf(row_count, ${FIRST_PART_SQL}) AS rows_read,
             countIf(${FIRST_PART_SQL} AND ${NO_PURPOSE_SQL}) AS unpurposed_reads, sumIf(row_count, ${FIRST_PART_SQL} AND ${NO_PURPOSE_SQL}) AS unpurposed_rows,
             min(occurred_at) AS first_at, max(occurred_at) AS last_at, min(seq) AS first_seq, max(seq) AS last_seq
      FROM ${store.table('access_log')}
      WHERE occurred_at >= ${lo} AND occurred_at < ${hi} AND ${extra} AND ${where}
      GROUP BY principal_id, db_name, table_name, chain_id`
  return `
    SELECT principal_id, db_name, table_name, chain_id, events, reads, rows_read, unpurposed_reads, unpurposed_rows, first_at, last_at, first_seq, last_seq
    FROM ${store.table('principal_days')}
    WHERE day >= toDate(${firstFullDay}) AND day < toDate(${lastDayStart}) AND ${firstFullDay} < ${lastDayStart} AND ${where}
    UNION ALL ${raw(from, `least(${to}, ${firstFullDay})`, '1')}
    UNION ALL ${raw(`greatest(${from}, ${lastDayStart})`, to, `${lastDayStart} >= ${firstFullDay}`)}`
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
