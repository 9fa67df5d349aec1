import type { ChainedBatch } from '../../consumers/chain.js'
import { ACCESS_LOG_LAYOUT, COL, RowWalker } from '../../integrity/row-walker.js'

/** What a test reads back from one row of a linked batch. */
export interface LinkedRow {
  chain_id: string
  seq: number
  kafka_offset: number
  /** Hex, as the store's hex() would answer. */
  prev_hash: string
  hash: string
  /** The bytes before the hash: what the hash covers. */
  canonical: Buffer
}

const KAFKA_OFFSET = ACCESS_LOG_LAYOUT.indexOf('kafka_offset')

/**
 * The rows of a linked batch, in chain order. Read with the independent
 * verifier's walker, so a batch that does not parse as access_log's
 * RowBinary fails here, not later in the store.
 */
export function linkedRows(batch: ChainedBatch): LinkedRow[] {
  const rows: LinkedRow[] = []
  const walker = new RowWalker(
    ACCESS_LOG_LAYOUT,
    (r) => {
      const hashAt = r.offsets[COL.hash]!
      rows.push({
        chain_id: r.string(COL.chain_id),
        seq: r.uint64(COL.seq),
        kafka_offset: r.uint64(KAFKA_OFFSET),
        prev_hash: r.hex(COL.prev_hash, 32),
        hash: r.hex(COL.hash, 32),
        canonical: Buffer.from(r.buf.subarray(r.start, hashAt)),
      })
    },
    { rehash: false, describe: () => 'a linked batch' },
  )
  walker.push(batch.rows)
  walker.finish()
  if (rows.length !== batch.count) throw new Error(`a linked batch of ${batch.count} rows walks as ${rows.length}`)
  return rows
}

/** The stored hash of each row of a linked batch, in chain order. */
export function rowHashes(batch: ChainedBatch): Buffer[] {
  return linkedRows(batch).map((r) => Buffer.from(r.hash, 'hex'))
}
