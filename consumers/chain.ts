import { createHash } from 'node:crypto'
import type { AccessEvent } from '../schemas/access-event.js'
import { toIngestJson, writeCanonical, type ChainedRow } from '../store/access-log-columns.js'
import { RowBinaryWriter } from '../store/row-binary.js'

/** The newest stored row of a chain, as read back from ClickHouse. */
export interface ChainHead {
  readonly chainId: string
  /** 0 for an empty chain. */
  readonly seq: number
  readonly hash: Buffer
  /** Kafka offset of the newest stored row; null for an empty chain. */
  readonly lastOffset: bigint | null
}

/** prev_hash of a chain's first row. */
export const GENESIS_HASH: Buffer = Buffer.alloc(32)

export function emptyChain(chainId: string): ChainHead {
  return { chainId, seq: 0, hash: GENESIS_HASH, lastOffset: null }
}

export interface ChainEntry {
  event: AccessEvent
  offset: bigint
  schemaVersion: number
}

export interface ChainedBatch {
  /** JSONCompactEachRow lines for access_log_ingest, in chain order. */
  lines: string[]
  head: ChainHead
}

/**
 * Links entries onto a head: each row's hash is SHA-256 over the RowBinary
 * encoding of every stored column, starting with the previous row's hash. The
 * head is returned rather than mutated, so a failed insert leaves the caller's
 * head untouched.
 */
export function linkEntries(head: ChainHead, entries: readonly ChainEntry[], ingestedAt: number, writer = new RowBinaryWriter()): ChainedBatch {
  const lines: string[] = []
  let seq = head.seq
  let prev = head.hash
  let lastOffset = head.lastOffset
  for (const entry of entries) {
    seq += 1
    const row: ChainedRow = {
      ...entry.event,
      chain_id: head.chainId,
      seq,
      prev_hash: prev,
      kafka_offset: entry.offset,
      ingested_at: ingestedAt,
      schema_version: entry.schemaVersion,
    }
    writer.reset()
    writeCanonical(writer, row)
    const hash = createHash('sha256').update(writer.view(0)).digest()
    lines.push(toIngestJson(row, hash))
    prev = hash
    lastOffset = entry.offset
  }
  return { lines, head: { chainId: head.chainId, seq, hash: prev, lastOffset } }
}

/** Chain ids name their source: `<topic>/<partition>`. */
export function chainIdOf(topic: string, partition: number): string {
  return `${topic}/${partition}`
}
