import { describeError } from '../common/errors.js'
import type { ClickHouseSettings } from '@clickhouse/client'
import { HASH_SQL } from '../store/access-log-columns.js'
import { PRINCIPAL_VIEW_COLUMNS, RECORD_VIEW_COLUMNS } from '../store/ddl.js'
import type { Store } from '../store/store.js'
import { VerificationError } from './errors.js'
import type { ChainSummary, Finding, FindingKind, VerificationReport } from './report.js'

export interface VerifyOptions {
  /** Most findings listed in the report. @default 1000 */
  maxFindings?: number
  /**
   * Also prove the query views hold exactly what access_log implies. The
   * saved queries read the views, so skipping this leaves their answers
   * unverified; it costs ~10x the chain checks. @default true
   */
  views?: boolean
}

interface Context {
  store: Store
  maxFindings: number
  views: boolean
  chains: ChainSummary[]
  findings: Finding[]
  truncated: boolean
}

/**
 * The verifier recomputes everything on every run. ClickHouse's query
 * condition cache remembers granules where a filter was false and skips them
 * next time: an attacker who edits data in place would inherit a clean
 * verdict. No caches.
 */
const NO_CACHES: ClickHouseSettings = { use_query_condition_cache: 0, use_query_cache: 0 }

/** Rows a check flags, in chain order, at most one more than can be listed. */
async function suspectRows<T>(ctx: Context, select: string): Promise<T[]> {
  const rows = await ctx.store.queryRows<T>(`${select}\nORDER BY chain_id, seq\nLIMIT {limit:UInt32}`, { limit: ctx.maxFindings + 1 }, NO_CACHES)
  ctx.truncated ||= rows.length > ctx.maxFindings
  return rows
}

/**
 * The saved queries read two materialised-view tables, not access_log. Their
 * rows carry no hash of their own, so an attacker who deletes or edits a view
 * row hides a principal from those queries while the chain stays intact: each
 * view row must be proved to be exactly what access_log implies.
 *
 * The column lists mirror store/ddl.ts (which does not export them); a test
 * compares them with the columns of freshly created view tables.
 */
export const VIEW_CHECKS = Object.freeze([
  {
    table: 'access_by_principal',
    /** How access_log rows become view rows: one each. */
    expand: '',
    columns: PRINCIPAL_VIEW_COLUMNS,
  },
  {
    table: 'record_access',
    /** One row per element of record_ids, repeats included, as the view's arrayJoin makes them. */
    expand: 'ARRAY JOIN record_ids AS record_id',
    columns: RECORD_VIEW_COLUMNS,
  },
] as const)

type ViewCheck = (typeof VIEW_CHECKS)[number]

/**
 * (chain_id, seq) keys where the view's rows are not the multiset access_log
 * implies, with `missing` (expected rows the view lacks) and `extra` (view
 * rows nothing in access_log implies) counted per distinct row.
 *
 * Each row, on both sides, is reduced to SHA-256 of its RowBinary encoding,
 * as the chain hash is: NULL stays apart from '' and array elements from
 * their concatenation (test/integration/verify-views.test.ts). Not
 * `cityHash64(col, ...)`: it returns NULL when any argument is NULL, so every
 * row with a NULL column would digest alike, and view rows are
 * attacker-controlled while cityHash64 has known seed-independent
 * collisions. (A keyed sipHash128 over a tuple measured 3x slower here.) Counting per (chain_id, seq,
 * digest) compares multisets exactly: a deleted, duplicated, forged or edited
 * row (an edit is one missing plus one extra) never cancels out, and a record
 * id an event names twice must appear twice. A UNION ALL and GROUP BY does
 * what a FULL OUTER JOIN would, with absent sides counting 0 instead of
 * join default values.
 *
 * Cost: linear in view rows. Each view row is hashed twice (once expected
 * from access_log, once as stored); the inner GROUP BY holds one key
 * (chain_id, seq, 16-byte digest) per distinct view row, and only mismatching
 * keys reach the outer one. See bench/README.md for figures.
 */
function viewCheckSql(store: Store, view: ViewCheck): string {
  const digest = `SHA256(formatRowNoNewline('RowBinary', ${view.columns.join(', ')}))`
  return `SELECT chain_id, seq, countIf(expected > found) AS missing, countIf(found > expected) AS extra
FROM (
  SELECT chain_id, seq, row_digest, countIf(from_log) AS expected, countIf(NOT from_log) AS found
  FROM (
    SELECT chain_id, seq, ${digest} AS row_digest, toUInt8(1) AS from_log FROM ${store.table('access_log')} ${view.expand}
    UNION ALL
    SELECT chain_id, seq, ${digest} AS row_digest, toUInt8(0) AS from_log FROM ${store.table(view.table)}
  )
  GROUP BY chain_id, seq, row_digest
  HAVING expected != found
)
GROUP BY chain_id, seq`
}

interface Step {
  name: string
  run(ctx: Context): Promise<void>
}

/**
 * Re-hashes every row inside ClickHouse and checks every link and sequence
 * number, chain by chain. Everything read here is attacker-controlled: a
 * finding is reported for what the rows say, never repaired.
 */
const STEPS: readonly Step[] = [
  {
    name: 'summarise-chains',
    async run(ctx) {
      const rows = await ctx.store.queryRows<{ chain_id: string; rows: number; first_seq: number; last_seq: number; head_hash: string }>(
        `SELECT chain_id, count() AS rows, min(seq) AS first_seq, max(seq) AS last_seq, lower(hex(argMax(hash, seq))) AS head_hash
         FROM ${ctx.store.table('access_log')} GROUP BY chain_id ORDER BY chain_id`,
      )
      ctx.chains = rows.map((r) => ({ ...r, rows: Number(r.rows), first_seq: Number(r.first_seq), last_seq: Number(r.last_seq) }))
    },
  },
  {
    name: 'rehash-rows',
    async run(ctx) {
      // Every column is re-encoded and hashed by ClickHouse itself; a row
      // whose stored hash differs was edited after it was written.
      const rows = await suspectRows<{ chain_id: string; seq: number }>(
        ctx,
        `SELECT chain_id, seq FROM ${ctx.store.table('access_log')} WHERE hash != ${HASH_SQL}`,
      )
      for (const r of rows) {
        ctx.findings.push({ chain_id: r.chain_id, seq: Number(r.seq), kind: 'hash_mismatch', detail: 'stored columns do not hash to the stored hash' })
      }
    },
  },
  {
    name: 'check-links',
    async run(ctx) {
      // Each row against its predecessor in seq order: prev_hash must equal
      // the previous hash and seq must be the previous seq + 1. The first
      // row links to the genesis hash and seq 0. Only the four link columns
      // are read, so this stays cheap next to re-hashing.
      const rows = await suspectRows<{ chain_id: string; seq: number; prev_seq: number; link_ok: number }>(
        ctx,
        `SELECT chain_id, seq, prev_seq, link_ok FROM (
           SELECT chain_id, seq,
                  prev_hash = lagInFrame(hash, 1, toFixedString(unhex(repeat('00', 32)), 32)) OVER w AS link_ok,
                  lagInFrame(seq, 1, toUInt64(0)) OVER w AS prev_seq
           FROM ${ctx.store.table('access_log')}
           WINDOW w AS (PARTITION BY chain_id ORDER BY seq ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
         )
         WHERE NOT link_ok OR seq != prev_seq + 1`,
      )
      for (const r of rows) {
        const seq = Number(r.seq)
        const prev = Number(r.prev_seq)
        if (seq === prev) ctx.findings.push({ chain_id: r.chain_id, seq, kind: 'duplicate_seq', detail: `seq ${seq} appears more than once` })
        else {
          if (seq !== prev + 1) {
            const detail = seq - prev === 2 ? `seq ${prev + 1} is missing` : `seqs ${prev + 1}..${seq - 1} are missing`
            ctx.findings.push({ chain_id: r.chain_id, seq, kind: 'sequence_gap', detail })
          }
          if (!Number(r.link_ok)) ctx.findings.push({ chain_id: r.chain_id, seq, kind: 'broken_link', detail: `prev_hash does not match the hash of seq ${prev}` })
        }
      }
    },
  },
  {
    name: 'check-views',
    async run(ctx) {
      if (!ctx.views) return
      for (const view of VIEW_CHECKS) {
        const rows = await suspectRows<{ chain_id: string; seq: number; missing: number; extra: number }>(ctx, viewCheckSql(ctx.store, view))
        for (const r of rows) {
          const missing = Number(r.missing) > 0
          const extra = Number(r.extra) > 0
          const what = missing && extra ? 'differs from access_log' : missing ? 'missing row' : 'extra row'
          ctx.findings.push({ chain_id: r.chain_id, seq: Number(r.seq), kind: 'view_mismatch', detail: `${view.table}: ${what}` })
        }
      }
    },
  },
  {
    name: 'order-findings',
    async run(ctx) {
      const rank: Record<FindingKind, number> = { duplicate_seq: 0, sequence_gap: 1, hash_mismatch: 2, broken_link: 3, view_mismatch: 4 }
      ctx.findings.sort((a, b) => (a.chain_id < b.chain_id ? -1 : a.chain_id > b.chain_id ? 1 : a.seq - b.seq || rank[a.kind] - rank[b.kind]))
      ctx.truncated ||= ctx.findings.length > ctx.maxFindings
      ctx.findings = ctx.findings.slice(0, ctx.maxFindings)
    },
  },
]

export async function verifyInDb(store: Store, options: VerifyOptions = {}): Promise<VerificationReport> {
  const started = new Date()
  const t0 = performance.now()
  const ctx: Context = { store, maxFindings: options.maxFindings ?? 1000, views: options.views ?? true, chains: [], findings: [], truncated: false }
  for (const step of STEPS) {
    try {
      await step.run(ctx)
    } catch (cause) {
      throw new VerificationError('VERIFY_FAILED', `verification step ${step.name} failed: ${describeError(cause)}`, {
        cause,
        retriable: true,
        details: { step: step.name },
      })
    }
  }
  return {
    mode: 'in-db',
    ok: ctx.findings.length === 0,
    database: store.database,
    rows_verified: ctx.chains.reduce((n, c) => n + c.rows, 0),
    views_checked: ctx.views,
    chains: ctx.chains,
    findings: ctx.findings,
    findings_truncated: ctx.truncated,
    started_at: started.toISOString(),
    duration_ms: Math.round(performance.now() - t0),
  }
}
