import { SIDE_TABLES, type SideTable } from '../store/side-tables.js'
import type { Store } from '../store/store.js'
import { NO_CACHES } from './no-caches.js'

/** One side chain (db_audit_log or alert_log) as the store holds it, checked in the store. */
export interface SideChainFacts {
  table: string
  chain_id: string
  rows: number
  first_seq: number
  last_seq: number
  distinct_seqs: number
  /** Seqs (the first few) whose stored hash is not the hash of the row's columns. */
  bad_hash: number[]
  /** Seqs (the first few) whose prev_hash is not the hash of the row before (genesis for seq 1). */
  bad_link: number[]
  /** Stored hash at each seq a signed checkpoint vouches for (hex, lowercase). */
  hash_at: Record<string, string[]>
  /**
   * Per producer (a database-audit reader, an application's alert
   * publisher), its own sequence (reader_seq, producer_seq) as stored: each
   * runs 1, 2, 3… so a hole is a lost entry and a repeat a replayed one.
   */
  producers: SideProducerFacts[]
}

export interface SideProducerFacts {
  producer_id: string
  /** The sequence column: reader_seq, producer_seq. */
  column: string
  rows: number
  distinct: number
  first: number
  last: number
  /** The chain seq of the producer's first row here, to place a finding. */
  at_seq: number
}

/** The side tables' facts, plus per database how many database-side reads no hooked read matches. */
export interface SideFacts {
  chains: SideChainFacts[]
  completeness: { db_name: string; entries: number; unmatched: number }[] | null
}

/** Most seqs listed per chain and kind: the rest are counted by the chain's findings. */
const MAX_LISTED = 20

/**
 * Re-hashes and re-links every row of each side table in the store, as the
 * in-db verifier does for access_log, and reads the rows signed checkpoints
 * vouch for. A table that does not exist yet (no side stream was ever
 * written) has no chains. `completeness` is the caller's matching query,
 * run when db_audit_log exists.
 */
export async function collectSideFacts(
  anyStore: Store,
  checkpointSeqs: Record<string, number[]>,
  completeness: (store: Store) => Promise<{ db_name: string; entries: number; unmatched: number }[]>,
): Promise<SideFacts> {
  // Every query verification sends bypasses ClickHouse's caches (no-caches.ts), the cross-check's too.
  const store: Store = { ...anyStore, queryRows: (query, params, settings) => anyStore.queryRows(query, params, { ...settings, ...NO_CACHES }) }
  const present = new Set(
    (await store.queryRows<{ name: string }>(`SELECT name FROM system.tables WHERE database = {db:String} AND name IN ('db_audit_log', 'alert_log')`, { db: store.database })).map((r) => r.name),
  )
  const chains: SideChainFacts[] = []
  for (const spec of Object.values(SIDE_TABLES) as SideTable<unknown>[]) {
    if (!present.has(spec.table)) continue
    chains.push(...(await chainFacts(store, spec, checkpointSeqs)))
  }
  return { chains, completeness: present.has('db_audit_log') ? await completeness(store) : null }
}

async function chainFacts(store: Store, spec: SideTable<unknown>, checkpointSeqs: Record<string, number[]>): Promise<SideChainFacts[]> {
  const t = store.table(spec.table)
  // Aliases unlike the columns: ClickHouse reads an alias in place of a column of its name.
  const rows = await store.queryRows<{ chain: string; n: string; lo: string; hi: string; d: string; bad_hash: string[]; bad_link: string[] }>(
    `SELECT chain_id AS chain, toString(count()) AS n, toString(min(seq)) AS lo, toString(max(seq)) AS hi, toString(uniqExact(seq)) AS d,
            arraySlice(arraySort(groupArrayIf(toString(seq), NOT hash_ok)), 1, ${MAX_LISTED}) AS bad_hash,
            arraySlice(arraySort(groupArrayIf(toString(seq), NOT link_ok)), 1, ${MAX_LISTED}) AS bad_link
     FROM (
       SELECT chain_id, seq, hash = ${spec.hashSql} AS hash_ok,
              prev_hash = if(seq = 1, toFixedString(repeat('\\0', 32), 32),
                             if(lagInFrame(seq) OVER w = seq - 1, lagInFrame(hash) OVER w, toFixedString('', 32))) AS link_ok_raw,
              link_ok_raw AND (seq = 1 OR lagInFrame(seq) OVER w = seq - 1) AS link_ok
       FROM ${t}
       WINDOW w AS (PARTITION BY chain_id ORDER BY seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
     )
     GROUP BY chain_id ORDER BY chain_id`,
  )
  const out: SideChainFacts[] = []
  for (const r of rows) {
    const seqs = checkpointSeqs[r.chain] ?? []
    const hashAt: Record<string, string[]> = {}
    if (seqs.length > 0) {
      const found = await store.queryRows<{ s: string; h: string }>(
        `SELECT toString(seq) AS s, lower(hex(hash)) AS h FROM ${t} WHERE chain_id = {chain:String} AND seq IN {seqs:Array(UInt64)}`,
        { chain: r.chain, seqs },
      )
      for (const f of found) (hashAt[f.s] ??= []).push(f.h)
    }
    const producers = await store.queryRows<{ p: string; n: string; d: string; lo: string; hi: string; at: string }>(
      `SELECT producer_id AS p, toString(count()) AS n, toString(uniqExact(${spec.producerSeqColumn})) AS d, toString(min(${spec.producerSeqColumn})) AS lo,
              toString(max(${spec.producerSeqColumn})) AS hi, toString(min(seq)) AS at
       FROM ${t} WHERE chain_id = {chain:String} GROUP BY producer_id ORDER BY producer_id`,
      { chain: r.chain },
    )
    out.push({
      producers: producers.map((x) => ({ producer_id: x.p, column: spec.producerSeqColumn, rows: Number(x.n), distinct: Number(x.d), first: Number(x.lo), last: Number(x.hi), at_seq: Number(x.at) })),
      table: spec.table,
      chain_id: r.chain,
      rows: Number(r.n),
      first_seq: Number(r.lo),
      last_seq: Number(r.hi),
      distinct_seqs: Number(r.d),
      bad_hash: r.bad_hash.map(Number),
      bad_link: r.bad_link.map(Number),
      hash_at: hashAt,
    })
  }
  return out
}
