import { z } from 'zod'
import { DB_AUDIT_TABLE } from '../store/side-tables.js'
import type { Store } from '../store/store.js'
import { bindMatchWindow, candidateReadsWhere, matchWindowHelp, matchWindowParams } from './db-audit-match.js'
import { bindWindow, closedWindow, databaseName, fromBeforeTo, FROM_SQL, principalId, TO_SQL } from './params.js'

/**
 * Which server-side audit entries an unaudited-reads question is about: a
 * [from, to) window on the server's own `logged_at`, optionally one
 * database and one database user, and the match window (db-audit-match.ts).
 * Shared by unaudited-reads (grouped) and unaudited-read-entries (one row
 * per entry), so both answer about the same entries.
 */
export const unauditedFilter = {
  ...closedWindow,
  database: databaseName.optional(),
  user: principalId.optional(),
  ...matchWindowParams,
}

export const unauditedFilterHelp = {
  from: 'window start on the database server\'s log time (ISO 8601, inclusive; required)',
  to: 'window end (exclusive; required)',
  database: 'only this database (as the server names it)',
  user: 'only this database user',
  ...matchWindowHelp,
} as const

export const UnauditedFilter = z.object(unauditedFilter).strict().superRefine(fromBeforeTo)
export type UnauditedFilter = z.output<typeof UnauditedFilter>

/**
 * The entries, as a condition on db_audit_log. Absent filters are bound as
 * '' and drop out: an empty database or user name is refused by the
 * parameters, so '' can only mean "not given".
 */
export const UNAUDITED_WHERE = `logged_at >= ${FROM_SQL} AND logged_at < ${TO_SQL}
      AND ({database:String} = '' OR db_name = {database:String})
      AND ({user:String} = '' OR db_user = {user:String})`

export function bindUnauditedFilter(p: UnauditedFilter): Record<string, unknown> {
  return {
    ...bindWindow(p),
    database: p.database ?? '',
    user: p.user ?? '',
    ...bindMatchWindow({ maxQuerySeconds: p.max_query_seconds, skewSeconds: p.skew_seconds }),
  }
}

/**
 * What an unaudited-reads answer stands on: every entry in scope (an entry
 * left out of the answer is one the answer says was matched), and every
 * hooked read that could have matched one (candidateReadsWhere). Side
 * chains and access_log chains have different ids (`<topic>.db-audit/N`
 * against `<topic>/N`), so provenance judges each on its own.
 */
export function unauditedSources(store: Store): string {
  const chains = (table: string, where: string) =>
    `SELECT chain_id, min(seq) AS first_seq, max(seq) AS last_seq, count() AS events FROM ${table} WHERE ${where} GROUP BY chain_id`
  return `${chains(store.table(DB_AUDIT_TABLE.table), UNAUDITED_WHERE)}
    UNION ALL
    ${chains(store.table('access_log'), candidateReadsWhere(store, UNAUDITED_WHERE))}`
}
