import { DB_AUDIT_TABLE } from '../store/side-tables.js'
import type { Store } from '../store/store.js'
import { whole } from './params.js'

/**
 * When a database server's own audit entry (db_audit_log) counts as a read
 * readtrail also recorded through a hook (access_log). One rule, used by the
 * saved queries `unaudited-reads` / `unaudited-read-entries` and by verify's
 * completeness line, so they can never disagree about what is unmatched.
 *
 * An entry `e` is MATCHED iff some access_log row `r` has
 *   r.part_index = 0 AND r.db_name = e.db_name AND r.db_session = e.db_session
 *   AND r.statement_digest = e.statement_digest
 *   AND e.logged_at BETWEEN r.occurred_at - maxQuerySeconds AND r.occurred_at + skewSeconds
 *
 * The server logs a statement when it starts and the hook records the read
 * when its result arrives, so the entry comes up to a whole query's run
 * before the read (maxQuerySeconds), or a little after it when the two
 * clocks differ (skewSeconds). A connection runs one statement at a time:
 * the connection id and the statement digest pin the read, and the window
 * only tells apart a connection id the server reused later (after a restart
 * pg backend pids and MariaDB connection ids start again).
 *
 * A hooked read that could not learn its connection id or digest ('')
 * matches nothing: an empty key must never vouch for a server-side read.
 */
export interface DbAuditMatchWindow {
  /** @default 300 */
  readonly maxQuerySeconds: number
  /** @default 5 */
  readonly skewSeconds: number
}

export const DB_AUDIT_MATCH_DEFAULTS: DbAuditMatchWindow = Object.freeze({ maxQuerySeconds: 300, skewSeconds: 5 })

/** The window as saved-query parameters (`--param max_query_seconds=600`). */
export const matchWindowParams = {
  max_query_seconds: whole(0, 86_400).default(DB_AUDIT_MATCH_DEFAULTS.maxQuerySeconds),
  skew_seconds: whole(0, 3_600).default(DB_AUDIT_MATCH_DEFAULTS.skewSeconds),
}

export const matchWindowHelp = {
  max_query_seconds: `longest a statement runs before its result reaches the hook (default ${DB_AUDIT_MATCH_DEFAULTS.maxQuerySeconds})`,
  skew_seconds: `how far the database's clock may run ahead of the application's (default ${DB_AUDIT_MATCH_DEFAULTS.skewSeconds})`,
} as const

/** The bound values of the window's placeholders. */
export function bindMatchWindow(w: DbAuditMatchWindow): { match_max_query_seconds: number; match_skew_seconds: number } {
  return { match_max_query_seconds: w.maxQuerySeconds, match_skew_seconds: w.skewSeconds }
}

const MAX_QUERY = '{match_max_query_seconds:UInt32}'
const SKEW = '{match_skew_seconds:UInt32}'

/** The columns the rule joins on; always selected from the entries. */
const KEYS = ['db_name', 'db_session', 'statement_digest', 'logged_at'] as const

/**
 * The db_audit_log entries `where` selects (a condition on db_audit_log's
 * own columns, bound placeholders only), each with `columns` and
 * `matched` (1 or 0), per the rule above; bound with bindMatchWindow's
 * values besides `where`'s own.
 *
 * ASOF LEFT JOIN, not a join on the keys and a time condition: a
 * connection that runs the same statement a thousand times would make a
 * plain join a million pairs. For each entry the ASOF join takes the one
 * hooked read with the same keys and the earliest result time at or after
 * `logged_at - skew`; a read in the window exists iff that one arrived no
 * later than `logged_at + maxQuery`. `hit` tells a found read from the
 * defaults an ASOF LEFT JOIN fills in when there is none (occurred_at
 * 1970, which would pass the upper bound).
 *
 * access_log is read for the entries' keys and time span only: the
 * scalar bounds are constants before index analysis, so its minmax index
 * on occurred_at skips every granule outside them.
 */
export function auditEntriesWithMatchSql(store: Store, where: string, columns: readonly string[]): string {
  const audit = store.table(DB_AUDIT_TABLE.table)
  const log = store.table('access_log')
  const inner = [...new Set([...columns, ...KEYS])].join(', ')
  const entries = `SELECT db_name, db_session, statement_digest FROM ${audit} WHERE ${where}`
  return `
    SELECT ${columns.map((c) => `e.${c} AS ${c}`).join(', ')},
           toUInt8(r.hit = 1 AND r.occurred_at <= e.logged_at + toIntervalSecond(${MAX_QUERY})) AS matched
    FROM (SELECT ${inner}, logged_at - toIntervalSecond(${SKEW}) AS match_from FROM ${audit} WHERE ${where}) AS e
    ASOF LEFT JOIN (
      SELECT db_name, db_session, statement_digest, occurred_at, toUInt8(1) AS hit
      FROM ${log}
      WHERE part_index = 0 AND db_session != '' AND statement_digest != ''
        AND occurred_at >= (SELECT min(logged_at) FROM ${audit} WHERE ${where}) - toIntervalSecond(${SKEW})
        AND occurred_at <= (SELECT max(logged_at) FROM ${audit} WHERE ${where}) + toIntervalSecond(${MAX_QUERY})
        AND (db_name, db_session, statement_digest) IN (${entries})
    ) AS r
    ON r.db_name = e.db_name AND r.db_session = e.db_session AND r.statement_digest = e.statement_digest AND e.match_from <= r.occurred_at`
}

/**
 * The access_log rows an unmatched-entries answer over `where` stands on
 * besides the entries themselves: every hooked read that could have matched
 * one. A forged one would hide a server-side read, a deleted one would
 * report a hooked read as unaudited: their chains' verification is part of
 * the answer's. A condition on access_log for auditEntriesWithMatchSql's
 * bound values.
 */
export function candidateReadsWhere(store: Store, where: string): string {
  const audit = store.table(DB_AUDIT_TABLE.table)
  return `part_index = 0 AND db_session != '' AND statement_digest != ''
        AND occurred_at >= (SELECT min(logged_at) FROM ${audit} WHERE ${where}) - toIntervalSecond(${SKEW})
        AND occurred_at <= (SELECT max(logged_at) FROM ${audit} WHERE ${where}) + toIntervalSecond(${MAX_QUERY})
        AND (db_name, db_session, statement_digest) IN (SELECT db_name, db_session, statement_digest FROM ${audit} WHERE ${where})`
}

/**
 * Per database: how many server-side entries db_audit_log holds and how many
 * of them no hooked read matches, overall and per audit source
 * (`sources`: [source_kind, entries, unmatched] triples).
 */
export function dbAuditCompletenessSql(store: Store): string {
  return `
    SELECT db_name, sum(n) AS entries, sum(u) AS unmatched, groupArray((source_kind, n, u)) AS sources
    FROM (
      SELECT toString(db_name) AS db_name, toString(source_kind) AS source_kind, count() AS n, countIf(matched = 0) AS u
      FROM (${auditEntriesWithMatchSql(store, '1', ['db_name', 'source_kind'])})
      GROUP BY db_name, source_kind
      ORDER BY source_kind)
    GROUP BY db_name
    ORDER BY db_name`
}

export interface DbAuditCompleteness {
  db_name: string
  entries: number
  unmatched: number
  sources: { source_kind: string; entries: number; unmatched: number }[]
}

/**
 * dbAuditCompletenessSql's answer, typed; [] when the store has no
 * db_audit_log yet (no database audit stream was ever consumed).
 */
export async function dbAuditCompleteness(store: Store, window: DbAuditMatchWindow = DB_AUDIT_MATCH_DEFAULTS): Promise<DbAuditCompleteness[]> {
  const present = await store.queryRows<{ n: number | string }>('SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {table:String}', {
    db: store.database,
    table: DB_AUDIT_TABLE.table,
  })
  if (Number(present[0]?.n ?? 0) === 0) return []
  const rows = await store.queryRows<{ db_name: string; entries: number | string; unmatched: number | string; sources: [string, number | string, number | string][] }>(
    dbAuditCompletenessSql(store),
    bindMatchWindow(window),
  )
  return rows.map((r) => ({
    db_name: r.db_name,
    entries: Number(r.entries),
    unmatched: Number(r.unmatched),
    sources: r.sources.map(([source_kind, entries, unmatched]) => ({ source_kind, entries: Number(entries), unmatched: Number(unmatched) })),
  }))
}
