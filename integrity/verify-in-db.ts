import { describeError } from '../common/errors.js'
import type { ClickHouseSettings } from '@clickhouse/client'
import { HASH_SQL } from '../store/access-log-columns.js'
import type { Store } from '../store/store.js'
import { VerificationError } from './errors.js'
import type { ChainSummary, Finding, FindingKind, VerificationReport } from './report.js'

export interface VerifyOptions {
  /** Most findings listed in the report. @default 1000 */
  maxFindings?: number
}

interface Context {
  store: Store
  maxFindings: number
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
    name: 'order-findings',
    async run(ctx) {
      const rank: Record<FindingKind, number> = { duplicate_seq: 0, sequence_gap: 1, hash_mismatch: 2, broken_link: 3 }
      ctx.findings.sort((a, b) => (a.chain_id < b.chain_id ? -1 : a.chain_id > b.chain_id ? 1 : a.seq - b.seq || rank[a.kind] - rank[b.kind]))
      ctx.truncated ||= ctx.findings.length > ctx.maxFindings
      ctx.findings = ctx.findings.slice(0, ctx.maxFindings)
    },
  },
]

export async function verifyInDb(store: Store, options: VerifyOptions = {}): Promise<VerificationReport> {
  const started = new Date()
  const t0 = performance.now()
  const ctx: Context = { store, maxFindings: options.maxFindings ?? 1000, chains: [], findings: [], truncated: false }
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
    chains: ctx.chains,
    findings: ctx.findings,
    findings_truncated: ctx.truncated,
    started_at: started.toISOString(),
    duration_ms: Math.round(performance.now() - t0),
  }
}
