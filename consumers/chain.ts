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
    // Fields are copied one by one on purpose: an object spread of a decoded
    // event made V8 build slow objects and tripled the cost of encoding them
    // (bench/README.md). `satisfies` keeps the list complete at compile time.
    const e = entry.event
    const row = {
      event_id: e.event_id, read_id: e.read_id, part_index: e.part_index, part_count: e.part_count, occurred_at: e.occurred_at,
      principal_id: e.principal_id, principal_type: e.principal_type, on_behalf_of: e.on_behalf_of, session_hash: e.session_hash,
      client_ip: e.client_ip, service: e.service, environment: e.environment, action: e.action, db_name: e.db_name, table_name: e.table_name,
      columns: e.columns, record_ids: e.record_ids, record_ids_complete: e.record_ids_complete, row_count: e.row_count,
      query_fingerprint: e.query_fingerprint, purpose: e.purpose, trace_id: e.trace_id, outcome: e.outcome, producer_id: e.producer_id,
      producer_seq: e.producer_seq,
      chain_id: head.chainId,
      seq,
      prev_hash: prev,
      kafka_offset: entry.offset,
      ingested_at: ingestedAt,
      schema_version: entry.schemaVersion,
    } satisfies ChainedRow
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
