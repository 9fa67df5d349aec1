import { HASH_SQL } from '../store/access-log-columns.js'
import type { Store } from '../store/store.js'
import { emptyChain, type ChainHead } from './chain.js'
import { IngestError } from './errors.js'

/** A chain's newest signed checkpoint, as the writer resumes from it. */
export interface ChainCheckpoint {
  seq: number
  /** SHA-256 of the row at `seq` (32 bytes). */
  hash: Buffer
  /** Kafka offset of the row at `seq`: its message is stored whole (the signer signs only heads at a message's end). */
  lastOffset: bigint
}

/** Where the chain writer learns a chain's newest signed checkpoint. */
export interface ChainTrust {
  /** null: the chain was never signed (every stored row is re-derived from Kafka). */
  checkpointOf(chainId: string): Promise<ChainCheckpoint | null>
}

/**
 * For writers that run without a signer (tests of the writer alone): no
 * chain is ever signed, so every stored row is re-derived from Kafka on
 * start and after every rebalance.
 */
export const UNSIGNED_CHAINS: ChainTrust = Object.freeze({ checkpointOf: async () => null })

/** A stored row after the newest checkpoint: what Kafka has to vouch for before the writer continues past it. */
export interface UnsignedRow {
  seq: number
  offset: bigint
  /** The row's event in its message, and the message's event count. */
  index: number
  events: number
  hash: Buffer
  /** SHA-256 of the row's stored columns, recomputed by ClickHouse: differs from `hash` when a column was edited. */
  contentHash: Buffer
  /** Microseconds; the one column the writer sets that Kafka cannot reproduce. */
  ingestedAt: number
}

/** Where a chain resumes: its signed head, and the stored rows after it still to be re-derived from Kafka. */
export interface ResumePoint {
  head: ChainHead
  unsigned: UnsignedRow[]
  /** Set when the row a checkpoint vouches for is missing or differs in the store: reported, not repaired. */
  checkpointedRowProblem: string | null
}

/** The partition's high watermark, asked for after the stored rows were read. */
export type PartitionEnd = () => Promise<bigint>

export interface ResumeLimits {
  /**
   * Most unsigned rows held in memory for re-derivation; more means either a
   * signer that stopped signing long ago or rows an attacker added. @default 2000000
   */
  maxUnsignedRows?: number
}

// Aliases differ from the column names: ClickHouse would otherwise compare the
// String alias, not the column, in WHERE and ORDER BY.
interface TailRow {
  row_seq: string
  row_offset: string
  row_index: number
  row_events: number
  row_hash: string
  content_hash: string
  ingested_micros: string
}

function untrusted(chainId: string, seq: number, problem: string, details: Record<string, unknown> = {}): IngestError {
  return new IngestError('CHAIN_UNTRUSTED', `chain ${chainId} seq ${seq}: ${problem}`, { details: { chain_id: chainId, seq, ...details } })
}

/**
 * Reads where a chain resumes. The head is the newest signed checkpoint,
 * never the newest row in ClickHouse, which an attacker with write access
 * may have forged. The rows stored after it are returned for re-derivation
 * from Kafka; their shape is checked here, before any message is read:
 * seqs contiguous and unique, offsets rising past the checkpoint's and below
 * the partition's end, every column still hashing to the stored hash.
 */
export async function readResumePoint(
  store: Store,
  chainId: string,
  checkpoint: ChainCheckpoint | null,
  partitionEnd: PartitionEnd,
  limits: ResumeLimits = {},
): Promise<ResumePoint> {
  const head: ChainHead = checkpoint ? { chainId, seq: checkpoint.seq, hash: checkpoint.hash, lastOffset: checkpoint.lastOffset } : emptyChain(chainId)
  const checkpointedRowProblem = checkpoint ? await checkCheckpointedRow(store, chainId, checkpoint) : null
  return { head, unsigned: await readRowsAfter(store, head, partitionEnd, limits), checkpointedRowProblem }
}

/**
 * The stored rows after a trusted head (a checkpoint, or a head the writer
 * itself derived from one and Kafka), shape-checked; see readResumePoint.
 */
export async function readRowsAfter(store: Store, head: ChainHead, partitionEnd: PartitionEnd, limits: ResumeLimits = {}): Promise<UnsignedRow[]> {
  const chainId = head.chainId
  const maxRows = limits.maxUnsignedRows ?? 2_000_000
  const t = store.table('access_log')
  const rows = await store.queryRows<TailRow>(
    `SELECT toString(seq) AS row_seq, toString(kafka_offset) AS row_offset, message_index AS row_index, message_events AS row_events,
            hex(hash) AS row_hash, hex(${HASH_SQL}) AS content_hash,
            toString(toUnixTimestamp64Micro(ingested_at)) AS ingested_micros
     FROM ${t}
     WHERE chain_id = {chain_id:String} AND seq > {from_seq:UInt64}
     ORDER BY seq, kafka_offset, message_index
     LIMIT {limit:UInt64}`,
    { chain_id: chainId, from_seq: head.seq, limit: maxRows + 1 },
  )
  // Asked only now, after the rows were read: every row this writer's
  // partition legitimately holds was stored from a message below it.
  const end = rows.length === 0 ? 0n : await partitionEnd()
  if (rows.length > maxRows) {
    throw untrusted(chainId, head.seq + 1, `more than ${maxRows} stored rows after the newest checkpoint (seq ${head.seq}): no signer leaves that many unsigned`, { rows: rows.length })
  }
  const unsigned: UnsignedRow[] = []
  let expectedSeq = head.seq + 1
  let lastOffset = head.lastOffset ?? -1n
  // The event the next row must hold when the head stops inside a message; null: the next row starts a message.
  let open: { nextIndex: number; events: number } | null = head.open ?? null
  for (const r of rows) {
    const row: UnsignedRow = {
      seq: Number(r.row_seq),
      offset: BigInt(r.row_offset),
      index: Number(r.row_index),
      events: Number(r.row_events),
      hash: Buffer.from(r.row_hash, 'hex'),
      contentHash: Buffer.from(r.content_hash, 'hex'),
      ingestedAt: Number(r.ingested_micros),
    }
    if (row.seq !== expectedSeq) {
      const what = row.seq < expectedSeq ? `a second row at seq ${row.seq}` : `rows ${expectedSeq}..${row.seq - 1} are missing`
      throw untrusted(chainId, Math.min(row.seq, expectedSeq), `after the newest checkpoint (seq ${head.seq}) ${what}`)
    }
    if (open !== null) {
      // The writer stores a message's events in order and whole: the next row is the message's next event.
      if (row.offset !== lastOffset || row.index !== open.nextIndex || row.events !== open.events) {
        throw untrusted(chainId, row.seq, `it holds event ${row.index + 1} of ${row.events} at kafka_offset ${row.offset}, where event ${open.nextIndex + 1} of ${open.events} of the message at offset ${lastOffset} belongs`, { kafka_offset: row.offset.toString() })
      }
    } else if (row.offset <= lastOffset) {
      throw untrusted(chainId, row.seq, `its kafka_offset ${row.offset} does not rise above the row before it (${lastOffset})`, { kafka_offset: row.offset.toString() })
    } else if (row.index !== 0 || row.events < 1) {
      throw untrusted(chainId, row.seq, `it holds event ${row.index + 1} of ${row.events} of the message at kafka_offset ${row.offset}, whose earlier events have no row`, { kafka_offset: row.offset.toString() })
    }
    if (row.offset >= end) {
      throw untrusted(chainId, row.seq, `its kafka_offset ${row.offset} lies beyond the partition's end (${end}): no message can vouch for it`, {
        kafka_offset: row.offset.toString(),
        partition_end: end.toString(),
      })
    }
    if (!row.contentHash.equals(row.hash)) throw untrusted(chainId, row.seq, 'its stored columns no longer hash to its stored hash: the row was edited')
    unsigned.push(row)
    expectedSeq += 1
    lastOffset = row.offset
    open = row.index + 1 < row.events ? { nextIndex: row.index + 1, events: row.events } : null
  }
  return unsigned
}

/** The row a checkpoint vouches for must still be stored as signed; if not, say what is wrong. */
async function checkCheckpointedRow(store: Store, chainId: string, cp: ChainCheckpoint): Promise<string | null> {
  const rows = await store.queryRows<{ row_hash: string; row_offset: string }>(
    `SELECT hex(hash) AS row_hash, toString(kafka_offset) AS row_offset FROM ${store.table('access_log')}
     WHERE chain_id = {chain_id:String} AND seq = {seq:UInt64} LIMIT 3`,
    { chain_id: chainId, seq: cp.seq },
  )
  if (rows.length === 0) return `the row at seq ${cp.seq} that the newest checkpoint vouches for is missing from the store (stop consume and run readtrail repair, which restores it from Kafka if its messages prove it)`
  const signed = cp.hash.toString('hex').toUpperCase()
  if (!rows.some((r) => r.row_hash === signed && BigInt(r.row_offset) === cp.lastOffset)) {
    return `the row at seq ${cp.seq} differs from what the newest checkpoint vouches for (hash ${signed.slice(0, 16)}…, offset ${cp.lastOffset})`
  }
  if (rows.length > 1) return `seq ${cp.seq}, which the newest checkpoint vouches for, is stored ${rows.length} times`
  return null
}
