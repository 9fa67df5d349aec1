import { NO_CACHES } from '../integrity/no-caches.js'
import { SAVED_QUERY_SETTINGS } from './query-settings.js'
import { PRINCIPAL_VIEW_COLUMNS } from '../store/ddl.js'
import type { Store } from '../store/store.js'

/**
 * Whether the query-serving rows an answer was computed from are exactly
 * what access_log, the hash-chained table verify proves, implies for the
 * answer's key range. Only answers read from a materialised view need this
 * (breach leads by IP or session, from access_by_principal and its bloom
 * filters): answers read from access_log, its projections (store/ddl.ts
 * ACCESS_LOG_PROJECTIONS) and its record key indexes come from the chained
 * table itself. Plain JSON: it travels over the owner socket.
 */
export interface Consistency {
  ok: boolean
  /** One sentence per serving table that disagrees, naming it and where. */
  problems: string[]
}

/**
 * One re-check of an answer: SQL returning a single row `{ keys, missing,
 * extra, sample }`: keys (events of the view) that differ,
 * how many of them only access_log has, how many only the serving table has
 * (the rest are in both, with other contents), a few of them as text. Bound
 * with the query's own values plus `params`.
 */
export interface AnswerCheck {
  /** The serving table and key range, as the problem sentence names them. */
  readonly what: string
  readonly sql: string
  readonly params?: Readonly<Record<string, unknown>>
}

export type ServingView = 'access_by_principal'

/**
 * The rows of a key range: a SELECT of `columns` from `table` (a table or a
 * parenthesised subquery with the view's columns) restricted to the range.
 * The same function builds both sides, so they cannot select different
 * ranges.
 */
export type KeyRange = (table: string, columns: string) => string

const VIEW_COLUMNS: Record<ServingView, readonly string[]> = { access_by_principal: PRINCIPAL_VIEW_COLUMNS }

/**
 * The view rows of a key range against the rows access_log implies for it,
 * as multisets of (chain_id, seq, digest of the whole view row), the way a
 * full verify compares them (integrity/collect-in-db.ts): a deleted,
 * duplicated, edited or forged row shows as its own key and cannot cancel
 * another out, as it could in a sum of hashes. SHA-256 of the RowBinary row
 * keeps NULL apart from '' and array elements apart from their
 * concatenation. The view copies access_log's columns, one row per event,
 * so access_log itself is the other side.
 */
export function viewRowsCheck(store: Store, view: ServingView, range: KeyRange, what: string): AnswerCheck {
  const columns = `chain_id, seq, SHA256(formatRow('RowBinary', ${VIEW_COLUMNS[view].join(', ')})) AS row_digest`
  const log = store.table('access_log')
  return {
    what: `${view} rows of ${what}`,
    sql: `
    SELECT count() AS keys, countIf(n_extra = 0) AS missing, countIf(n_missing = 0) AS extra,
           arrayMap(k -> concat(k.1, ' seq ', toString(k.2)), arraySlice(arraySort(groupArray((chain_id, seq))), 1, 3)) AS sample
    FROM (
      SELECT chain_id, seq, sum(if(expected > found, expected - found, 0)) AS n_missing, sum(if(found > expected, found - expected, 0)) AS n_extra
      FROM (
        SELECT chain_id, seq, row_digest, countIf(from_log = 1) AS expected, countIf(from_log = 0) AS found
        FROM (
          SELECT chain_id, seq, row_digest, toUInt8(1) AS from_log FROM (${range(log, columns)})
          UNION ALL
          SELECT chain_id, seq, row_digest, toUInt8(0) AS from_log FROM (${range(store.table(view), columns)})
        )
        GROUP BY chain_id, seq, row_digest
        HAVING expected != found
      )
      GROUP BY chain_id, seq
    )`,
  }
}

interface CheckRow {
  keys: number | string
  missing: number | string
  extra: number | string
  sample: string[]
}

/** How long a mismatch is given to settle before it counts: see runAnswerChecks. */
export const RECHECK_DELAY_MS = 250

/**
 * Runs an answer's checks. The writer's insert reaches access_log before the
 * views it feeds, so a check racing an insert can see rows on one side only:
 * a disagreement is checked once more after RECHECK_DELAY_MS and reported
 * only if it persists. Caches are off, as in verify: a condition cache
 * would let a check inherit an earlier verdict on edited granules.
 */
export async function runAnswerChecks(store: Store, checks: readonly AnswerCheck[], bound: Record<string, unknown>): Promise<Consistency> {
  const run = (check: AnswerCheck) => store.queryRows<CheckRow>(check.sql, { ...bound, ...check.params }, { ...SAVED_QUERY_SETTINGS, ...NO_CACHES }).then((rows) => ({ check, row: rows[0] }))
  let failing = (await Promise.all(checks.map(run))).filter((r) => differs(r.row))
  if (failing.length > 0) {
    await new Promise((resolve) => setTimeout(resolve, RECHECK_DELAY_MS))
    failing = (await Promise.all(failing.map((f) => run(f.check)))).filter((r) => differs(r.row))
  }
  return { ok: failing.length === 0, problems: failing.map((f) => describeMismatch(f.check, f.row)) }
}

// No row at all is a disagreement too: the check's aggregate always returns one.
function differs(row: CheckRow | undefined): boolean {
  return !row || Number(row.keys) !== 0
}

function describeMismatch(check: AnswerCheck, row: CheckRow | undefined): string {
  if (!row) return `${check.what}: the check against access_log returned nothing`
  const parts = [Number(row.missing) > 0 ? `${row.missing} only in access_log` : '', Number(row.extra) > 0 ? `${row.extra} not in access_log` : ''].filter((p) => p !== '')
  const changed = Number(row.keys) - Number(row.missing) - Number(row.extra)
  if (changed > 0) parts.push(`${changed} differing`)
  // Sample keys may come from forged rows: quoted, so they cannot pass for more of the sentence.
  const sample = (row.sample ?? []).map((s) => JSON.stringify(s)).join(', ')
  return `${check.what}: ${parts.join(', ')} (e.g. ${sample})`
}

/** What answerOf assumes when the store side sent no verdict (an older or impostor owner): the answer was not checked. */
export const UNCHECKED: Consistency = Object.freeze({ ok: false, problems: ['the store side did not check this answer against access_log'] })

/** A Consistency as it arrives over the owner socket, validated; anything else counts as unchecked. */
export function consistencyOf(value: unknown): Consistency {
  if (typeof value !== 'object' || value === null) return UNCHECKED
  const { ok, problems } = value as { ok?: unknown; problems?: unknown }
  if (typeof ok !== 'boolean' || !Array.isArray(problems) || !problems.every((p) => typeof p === 'string')) return UNCHECKED
  if (ok && problems.length > 0) return { ok: false, problems: problems as string[] }
  if (!ok && problems.length === 0) return UNCHECKED
  return { ok, problems: [...(problems as string[])] }
}
