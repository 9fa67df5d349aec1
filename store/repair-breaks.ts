import { HASH_SQL } from './access-log-columns.js'
import type { Store } from './store.js'

/** A stored row where the chain below a checkpoint does not simply continue: what repair plans from. */
export interface StoredLink {
  seq: number
  hash: Buffer
  prevHash: Buffer
  offset: bigint
  /** µs */
  ingestedAt: number
  /** Its columns still hash to its stored hash. */
  intact: boolean
  /** The stored row before it in (seq, offset) order; null when it is the chain's lowest row. */
  before: { seq: number; hash: Buffer; offset: bigint; ingestedAt: number } | null
}

// Aliases differ from the column names: ClickHouse would otherwise compare the
// String alias, not the column, in WHERE and ORDER BY.
interface LinkRow {
  row_seq: string
  row_hash: string
  row_prev: string
  row_offset: string
  row_micros: string
  row_intact: number
  before_seq: string
  before_hash: string
  before_offset: string
  before_micros: string
}

function linkOf(r: LinkRow): StoredLink {
  const beforeSeq = Number(r.before_seq)
  return {
    seq: Number(r.row_seq),
    hash: Buffer.from(r.row_hash, 'hex'),
    prevHash: Buffer.from(r.row_prev, 'hex'),
    offset: BigInt(r.row_offset),
    ingestedAt: Number(r.row_micros),
    intact: Number(r.row_intact) === 1,
    before: beforeSeq === 0 ? null : { seq: beforeSeq, hash: Buffer.from(r.before_hash, 'hex'), offset: BigInt(r.before_offset), ingestedAt: Number(r.before_micros) },
  }
}

const LINK_COLUMNS = `toString(seq) AS row_seq, hex(hash) AS row_hash, hex(prev_hash) AS row_prev, toString(kafka_offset) AS row_offset,
       toString(toUnixTimestamp64Micro(ingested_at)) AS row_micros, ${HASH_SQL} = hash AS row_intact`

/**
 * The rows of a chain up to `throughSeq` whose link to the row before them
 * breaks: a gap before them, a second row at their seq, a prev_hash that is
 * not the previous row's hash, or columns that no longer hash to their hash.
 * ClickHouse finds them in one ordered pass; only these rows (with the row
 * before each) leave the database, highest seq first.
 */
export async function readChainBreaks(store: Store, chainId: string, throughSeq: number, limit: number): Promise<StoredLink[]> {
  const rows = await store.queryRows<LinkRow>(
    `SELECT row_seq, row_hash, row_prev, row_offset, row_micros, row_intact,
            toString(b_seq) AS before_seq, hex(b_hash) AS before_hash, toString(b_offset) AS before_offset, toString(b_micros) AS before_micros
     FROM (
       SELECT seq, kafka_offset, ${LINK_COLUMNS},
              lagInFrame(seq, 1, 0) OVER w AS b_seq, lagInFrame(hash) OVER w AS b_hash,
              lagInFrame(kafka_offset) OVER w AS b_offset, lagInFrame(toUnixTimestamp64Micro(ingested_at)) OVER w AS b_micros,
              prev_hash AS p_hash
       FROM ${store.table('access_log')}
       WHERE chain_id = {chain_id:String} AND seq <= {through:UInt64}
       WINDOW w AS (ORDER BY seq, kafka_offset ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
     )
     WHERE row_intact = 0 OR seq != b_seq + 1 OR p_hash != b_hash
     ORDER BY seq DESC, kafka_offset DESC
     LIMIT {limit:UInt64}`,
    { chain_id: chainId, through: throughSeq, limit },
  )
  return rows.map(linkOf)
}

/** The chain's highest stored row at or below `throughSeq` (the row before it is not read). */
export async function readHighestRow(store: Store, chainId: string, throughSeq: number): Promise<StoredLink | null> {
  const [row] = await store.queryRows<LinkRow>(
    `SELECT ${LINK_COLUMNS}, '0' AS before_seq, '' AS before_hash, '0' AS before_offset, '0' AS before_micros
     FROM ${store.table('access_log')}
     WHERE chain_id = {chain_id:String} AND seq <= {through:UInt64}
     ORDER BY seq DESC, kafka_offset DESC
     LIMIT 1`,
    { chain_id: chainId, through: throughSeq },
  )
  return row ? linkOf(row) : null
}

/** Event ids among `ids` the chain already stores. */
export async function readStoredEventIds(store: Store, chainId: string, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set()
  // The alias must not be `event_id`: ClickHouse would compare the String alias, not the UUID column.
  const rows = await store.queryRows<{ id: string }>(
    `SELECT toString(event_id) AS id FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND event_id IN {ids:Array(UUID)}`,
    { chain_id: chainId, ids },
  )
  return new Set(rows.map((r) => r.id))
}

/** The chain's rows with afterSeq < seq < beforeSeq, in (seq, offset) order. */
export async function readRowsBetween(store: Store, chainId: string, afterSeq: number, beforeSeq: number): Promise<{ seq: number; hash: Buffer; offset: bigint; ingestedAt: number }[]> {
  const rows = await store.queryRows<LinkRow>(
    `SELECT ${LINK_COLUMNS}, '0' AS before_seq, '' AS before_hash, '0' AS before_offset, '0' AS before_micros
     FROM ${store.table('access_log')}
     WHERE chain_id = {chain_id:String} AND seq > {after:UInt64} AND seq < {before:UInt64}
     ORDER BY seq, kafka_offset`,
    { chain_id: chainId, after: afterSeq, before: beforeSeq },
  )
  return rows.map(linkOf)
}
