import { hash } from 'node:crypto'
import type { AccessEvent } from '../schemas/access-event.js'
import { ACCESS_LOG_COLUMNS, writeCanonical, type ChainedRow } from '../store/access-log-columns.js'
import { RowBinaryWriter } from '../store/row-binary.js'

/** The newest stored row of a chain, as read back from ClickHouse. */
export interface ChainHead {
  readonly chainId: string
  /** 0 for an empty chain. */
  readonly seq: number
  readonly hash: Buffer
  /** Kafka offset of the newest stored row; null for an empty chain. */
  readonly lastOffset: bigint | null
  /**
   * Set when the newest row is not its message's last event (a wire-2 batch
   * stored in part before a crash): the message's events from `nextIndex`
   * on are still to be stored. Absent, the message at lastOffset is done.
   */
  readonly open?: { readonly nextIndex: number; readonly events: number }
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
  /** The event's place in its message. @default 0 */
  index?: number
  /** Events in its message. @default 1 */
  events?: number
  /** The key that vouched for it. @default '' (unsigned) */
  keyId?: string
}

/** Where the chain continues after a head: the next event of its open message, or the next message. */
export function headEndsMessage(head: ChainHead): boolean {
  return head.open === undefined
}

export interface ChainedBatch {
  /**
   * The RowBinary rows for access_log, in chain order: each row's canonical
   * encoding, then its 32-byte hash (STORED_COLUMN_NAMES). The insert
   * stores the very bytes that were hashed.
   */
  rows: Buffer
  /** Rows in `rows`. */
  count: number
  head: ChainHead
}

/**
 * Links entries onto a head: each row's hash is SHA-256 over the RowBinary
 * encoding of every stored column, starting with the previous row's hash. The
 * head is returned rather than mutated, so a failed insert leaves the caller's
 * head untouched.
 */
export function linkEntries(head: ChainHead, entries: readonly ChainEntry[], ingestedAt: number, writer = new RowBinaryWriter()): ChainedBatch {
  writer.reset()
  let seq = head.seq
  let prev = head.hash
  let lastOffset = head.lastOffset
  let open = head.open
  for (const entry of entries) {
    seq += 1
    const start = writer.length
    writeCanonical(writer, chainedRow(head.chainId, seq, prev, entry, ingestedAt))
    // One-shot, as a hash object per row cost more than the hashing. The view
    // is read before the next write can move the buffer.
    const rowHash = hash('sha256', writer.view(start), 'buffer')
    writer.bytes(rowHash)
    prev = rowHash
    lastOffset = entry.offset
    const next = (entry.index ?? 0) + 1
    open = next < (entry.events ?? 1) ? { nextIndex: next, events: entry.events ?? 1 } : undefined
  }
  // A copy: the writer may be the caller's, reused for the next batch.
  return { rows: writer.slice(0), count: entries.length, head: { chainId: head.chainId, seq, hash: prev, lastOffset, ...(open ? { open } : {}) } }
}

/** The hash of one entry's row at a fixed seq, for any prev_hash and ingested_at. */
export type RowRehash = (prev: Buffer, ingestedAt: number) => Buffer

/** The columns a rehash rewrites: fixed width, so the rest of the encoding never moves. */
const REHASHED_COLUMNS: ReadonlySet<string> = new Set(['prev_hash', 'ingested_at'])

/**
 * For callers that only compare hashes of one entry tried under many
 * prev_hash and ingested_at values (repair's search for the ingested_at of a
 * deleted insert): the row is encoded once, and those two columns are
 * rewritten in place by their own column writers, so the bytes hashed are
 * the ones linkEntries hashes, at a fraction of the cost of encoding the row
 * for every try.
 */
export function rowRehasher(chainId: string, seq: number, entry: ChainEntry): RowRehash {
  const row = chainedRow(chainId, seq, GENESIS_HASH, entry, 0)
  const writer = new RowBinaryWriter(1024)
  const patches: { column: (typeof ACCESS_LOG_COLUMNS)[number]; start: number; end: number }[] = []
  // writeCanonical's loop, noting where each rewritten column lies.
  for (const column of ACCESS_LOG_COLUMNS) {
    const start = writer.length
    column.write(writer, row)
    if (REHASHED_COLUMNS.has(column.name)) patches.push({ column, start, end: writer.length })
  }
  const bytes = writer.slice(0)
  const scratch = new RowBinaryWriter(64)
  return (prev, ingestedAt) => {
    row.prev_hash = prev
    row.ingested_at = ingestedAt
    for (const { column, start, end } of patches) {
      scratch.reset()
      column.write(scratch, row)
      // A width change would shift every later column: hashing then would prove nothing.
      if (scratch.length !== end - start) throw new Error(`column ${column.name} changed width (${end - start} -> ${scratch.length} bytes): it cannot be rewritten in place`)
      scratch.view(0).copy(bytes, start)
    }
    return hash('sha256', bytes, 'buffer')
  }
}

/** The stored row of `entry` at `seq` after the row hashing to `prev`. */
function chainedRow(chainId: string, seq: number, prev: Buffer, entry: ChainEntry, ingestedAt: number): ChainedRow {
  // Fields are copied one by one on purpose: an object spread of a decoded
  // event made V8 build slow objects and tripled the cost of encoding them
  // (bench/README.md). `satisfies` keeps the list complete at compile time.
  const e = entry.event
  return {
    event_id: e.event_id, read_id: e.read_id, part_index: e.part_index, part_count: e.part_count, occurred_at: e.occurred_at,
    principal_id: e.principal_id, principal_type: e.principal_type, on_behalf_of: e.on_behalf_of, session_hash: e.session_hash,
    client_ip: e.client_ip, service: e.service, environment: e.environment, action: e.action, db_name: e.db_name, table_name: e.table_name,
    columns: e.columns, record_ids: e.record_ids, record_ids_complete: e.record_ids_complete, row_count: e.row_count,
    query_fingerprint: e.query_fingerprint, db_session: e.db_session, statement_digest: e.statement_digest, purpose: e.purpose, trace_id: e.trace_id, outcome: e.outcome, producer_id: e.producer_id,
    producer_seq: e.producer_seq,
    chain_id: chainId,
    seq,
    prev_hash: prev,
    kafka_offset: entry.offset,
    message_index: entry.index ?? 0,
    message_events: entry.events ?? 1,
    ingested_at: ingestedAt,
    schema_version: entry.schemaVersion,
    key_id: entry.keyId ?? '',
  } satisfies ChainedRow
}

/** Chain ids name their source: `<topic>/<partition>`. */
export function chainIdOf(topic: string, partition: number): string {
  return `${topic}/${partition}`
}
