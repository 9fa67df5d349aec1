import { HASH_SQL } from '../store/access-log-columns.js'
import { PRINCIPAL_VIEW_COLUMNS } from '../store/ddl.js'
import type { Store } from '../store/store.js'
import { chainOffsetsInDb, findStoredEventsByChain, type ChainOffsets } from './chain-offsets.js'
import type { FactWindow } from './classify-window.js'
import { assembleFacts, foundEventsFacts, mergeRanges, suspectRange, type Facts, type FactsRequest } from './facts.js'
import { NO_CACHES } from './no-caches.js'
import { completeThrough } from './producer-gaps.js'
import { producerBreaksSince, type ProducerFacts } from './producer-since.js'
import type { Finding } from './report.js'
import type { ChainScan, CheckpointRow, ProducerBreak, RowFacts } from './row-facts.js'


const ZERO_HASH_SQL = `toFixedString(unhex(repeat('00', 32)), 32)`

/**
 * The breach queries read a materialised-view table, not access_log. Its
 * rows carry no hash of their own, so an attacker who deletes or edits a view
 * row hides a principal from those queries while the chain stays intact: each
 * view row must be proved to be exactly what access_log implies.
 */
export const VIEW_CHECKS = Object.freeze([
  {
    /** One row per access_log row, the same columns. */
    table: 'access_by_principal',
    columns: PRINCIPAL_VIEW_COLUMNS,
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
 * `cityHash64(col, ...)`: it returns NULL when any argument is NULL, and view
 * rows are attacker-controlled while cityHash64 has known seed-independent
 * collisions (a keyed sipHash128 over a tuple measured 3x slower here).
 * Counting per (chain_id, seq, digest) compares multisets exactly: a deleted,
 * duplicated, forged or edited row never cancels out. Cost: linear in view
 * rows (bench/README.md).
 */
function viewCheckSql(store: Store, view: ViewCheck): string {
  const digest = `SHA256(formatRow('RowBinary', ${view.columns.join(', ')}))`
  return `SELECT chain_id, seq, countIf(expected > found) AS missing, countIf(found > expected) AS extra
FROM (
  SELECT chain_id, seq, row_digest, countIf(from_log) AS expected, countIf(NOT from_log) AS found
  FROM (
    SELECT chain_id, seq, ${digest} AS row_digest, toUInt8(1) AS from_log FROM ${store.table('access_log')}
    UNION ALL
    SELECT chain_id, seq, ${digest} AS row_digest, toUInt8(0) AS from_log FROM ${store.table(view.table)}
  )
  GROUP BY chain_id, seq, row_digest
  HAVING expected != found
)
GROUP BY chain_id, seq
ORDER BY chain_id, seq
LIMIT {limit:UInt32}`
}

/**
 * Collects verification facts with ClickHouse doing the hashing: fast, and
 * as trustworthy as the engine that answers (see collect-independent.ts for
 * the mode that trusts nothing it computes). Per chain, one query re-hashes
 * every row and compares it with its predecessor in (seq, hash) order; only
 * the rows that fail, and the few around them, come back.
 */
export async function collectInDb(store: Store, request: FactsRequest): Promise<Facts> {
  if (request.find_events) return foundEventsFacts(await findStoredEventsByChain(store, 'in-db', request.find_events))
  const log = store.table('access_log')
  const from = (chainId: string) => request.from_seq?.[chainId] ?? 0
  const listed = await store.queryRows<{ chain_id: string }>(`SELECT DISTINCT chain_id FROM ${log} ORDER BY chain_id`, {}, NO_CACHES)
  const chainIds = listed.map((r) => r.chain_id)

  const chains: ChainScan[] = []
  const windows: FactWindow[] = []
  const checkpointRows: CheckpointRow[] = []
  const chainOffsets: ChainOffsets[] = []
  let suspectsTruncated = false
  for (const chainId of chainIds) {
    const params = { chain_id: chainId, from: from(chainId) }
    if (request.offsets) {
      const offsets = await chainOffsetsInDb(store, chainId, from(chainId), request.maxSuspects)
      if (offsets) chainOffsets.push(offsets)
    }
    const [summary] = await store.queryRows<{ rows: number; first_seq: number; last_seq: number; head_hash: string }>(
      `SELECT count() AS rows, min(seq) AS first_seq, max(seq) AS last_seq, lower(hex(argMax(hash, seq))) AS head_hash
       FROM ${log} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64}`,
      params,
      NO_CACHES,
    )
    if (summary && Number(summary.rows) > 0) {
      chains.push({ chain_id: chainId, rows: Number(summary.rows), first_seq: Number(summary.first_seq), last_seq: Number(summary.last_seq), head_hash: summary.head_hash })
    }
    // The first row of an incremental range is the anchor: it is compared
    // with its signed checkpoint, not with a predecessor this run does not read.
    const suspects = await store.queryRows<{ seq: number; prev_seq: number }>(
      `SELECT seq, prev_seq FROM (
         SELECT seq, hash != ${HASH_SQL} AS bad_hash,
                prev_hash = lagInFrame(hash, 1, ${ZERO_HASH_SQL}) OVER w AS link_ok,
                lagInFrame(seq, 1, toUInt64(0)) OVER w AS prev_seq,
                row_number() OVER w AS position
         FROM ${log} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64}
         WINDOW w AS (ORDER BY seq ASC, hash ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
       )
       WHERE bad_hash OR ((NOT link_ok OR seq != prev_seq + 1) AND ({from:UInt64} = 0 OR position > 1))
       ORDER BY seq LIMIT {limit:UInt32}`,
      { ...params, limit: request.maxSuspects + 1 },
      NO_CACHES,
    )
    suspectsTruncated ||= suspects.length > request.maxSuspects
    const ranges = mergeRanges(suspects.slice(0, request.maxSuspects).map((s) => suspectRange(Number(s.seq), Number(s.prev_seq), from(chainId))))
    for (const range of ranges) windows.push({ chain_id: chainId, ...range, rows: await windowRows(store, chainId, range) })

    const seqs = request.checkpoint_seqs[chainId] ?? []
    if (seqs.length > 0) {
      const rows = await store.queryRows<{ seq: number; hash_hex: string; self_ok: number }>(
        `SELECT seq, lower(hex(hash)) AS hash_hex, hash = ${HASH_SQL} AS self_ok FROM ${log}
         WHERE chain_id = {chain_id:String} AND seq IN {seqs:Array(UInt64)} ORDER BY seq, hash`,
        { chain_id: chainId, seqs },
        NO_CACHES,
      )
      for (const r of rows) checkpointRows.push({ chain_id: chainId, seq: Number(r.seq), hash: r.hash_hex, self_ok: Boolean(Number(r.self_ok)) })
    }
  }

  const producers = request.producer_through
    ? await producerBreaksSince(store, request, await producersOfNewRows(store, chainIds, from))
    : await producerBreaksAll(store, request.maxSuspects)
  const viewFindings = request.views && !request.from_seq ? await checkViews(store, request.maxSuspects) : []
  const warnings: string[] = []
  if (request.views && request.from_seq) warnings.push('query views are checked by full runs only (run verify without --since-checkpoint)')
  return assembleFacts({
    chains,
    windows,
    suspectsTruncated,
    checkpointRows,
    producers,
    viewFindings,
    viewsChecked: request.views && !request.from_seq,
    warnings,
    ...(request.offsets ? { chainOffsets } : {}),
  })
}

async function windowRows(store: Store, chainId: string, range: { lo: number; hi: number }): Promise<RowFacts[]> {
  // Aliases must not shadow the columns HASH_SQL reads: ClickHouse resolves
  // an alias anywhere in the SELECT, and the hash would cover the hex text.
  const rows = await store.queryRows<{ seq: number; prev_hex: string; hash_hex: string; self_ok: number; event: string }>(
    `SELECT seq, lower(hex(prev_hash)) AS prev_hex, lower(hex(hash)) AS hash_hex, hash = ${HASH_SQL} AS self_ok, toString(event_id) AS event
     FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq BETWEEN {lo:UInt64} AND {hi:UInt64}
     ORDER BY seq, hash`,
    { chain_id: chainId, lo: range.lo, hi: range.hi },
    NO_CACHES,
  )
  return rows.map((r) => ({ seq: Number(r.seq), prev_hash: r.prev_hex, hash: r.hash_hex, self_ok: Boolean(Number(r.self_ok)), event_id: r.event }))
}

/** Every producer's whole sequence, ordered by ClickHouse, each break found by a window function. */
async function producerBreaksAll(store: Store, limit: number): Promise<ProducerFacts> {
  const log = store.table('access_log')
  const rows = await store.queryRows<ProducerBreak>(
    `SELECT producer_id, producer_seq, prev_producer_seq, chain_id, seq, ingested_at_us FROM (
       SELECT producer_id, producer_seq, lagInFrame(producer_seq, 1, toUInt64(0)) OVER w AS prev_producer_seq,
              chain_id, seq, toUnixTimestamp64Micro(ingested_at) AS ingested_at_us
       FROM ${log}
       WINDOW w AS (PARTITION BY producer_id ORDER BY producer_seq ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
     )
     WHERE producer_seq != prev_producer_seq + 1
     ORDER BY producer_id, producer_seq LIMIT {limit:UInt32}`,
    { limit: limit + 1 },
    NO_CACHES,
  )
  const maxima = await store.queryRows<{ producer_id: string; max_seq: number }>(
    `SELECT producer_id, max(producer_seq) AS max_seq FROM ${log} GROUP BY producer_id`,
    {},
    NO_CACHES,
  )
  const breaks = rows.slice(0, limit).map(numericBreak)
  const last = Object.fromEntries(maxima.map((m) => [m.producer_id, Number(m.max_seq)]))
  return { breaks, truncated: rows.length > limit, checked: maxima.length, through: completeThrough(breaks, last) }
}

/** Producers with events in the rows an incremental run checks. */
async function producersOfNewRows(store: Store, chainIds: readonly string[], from: (chainId: string) => number): Promise<string[]> {
  const producers = new Set<string>()
  for (const chainId of chainIds) {
    const rows = await store.queryRows<{ producer_id: string }>(
      `SELECT DISTINCT producer_id FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64}`,
      { chain_id: chainId, from: from(chainId) },
      NO_CACHES,
    )
    for (const r of rows) producers.add(r.producer_id)
  }
  return [...producers]
}

function numericBreak(b: ProducerBreak): ProducerBreak {
  return {
    producer_id: b.producer_id,
    producer_seq: Number(b.producer_seq),
    prev_producer_seq: Number(b.prev_producer_seq),
    chain_id: b.chain_id,
    seq: Number(b.seq),
    ingested_at_us: Number(b.ingested_at_us),
  }
}

/** One more than `limit` per view, so the report can say when its list was cut. */
async function checkViews(store: Store, limit: number): Promise<Finding[]> {
  const findings: Finding[] = []
  for (const view of VIEW_CHECKS) {
    const rows = await store.queryRows<{ chain_id: string; seq: number; missing: number; extra: number }>(viewCheckSql(store, view), { limit: limit + 1 }, NO_CACHES)
    for (const r of rows) {
      const missing = Number(r.missing) > 0
      const extra = Number(r.extra) > 0
      const what = missing && extra ? 'differs from access_log' : missing ? 'missing row' : 'extra row'
      findings.push({ chain_id: r.chain_id, seq: Number(r.seq), kind: 'view_mismatch', detail: `${view.table}: ${what}` })
    }
  }
  return findings
}
