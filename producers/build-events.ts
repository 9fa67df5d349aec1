import { createHmac } from 'node:crypto'
import { LIMITS, MAX_LONG, type AccessEvent } from '../schemas/access-event.js'
import { InputError } from '../schemas/errors.js'
import type { ParsedReadInput } from '../schemas/read-input.js'
import { nowMicros } from '../common/time.js'
import { uuidv7 } from '../common/uuid.js'
import { fingerprintQuery, type SqlDialect } from './query-fingerprint.js'
import { ProducerError } from './errors.js'

export interface EventContext {
  service: string
  environment: string
  producerId: string
  sessionHashKey: string | Buffer | undefined
  sqlDialect: SqlDialect
  /**
   * Bytes left for record ids in one message, given the read's event with no
   * record ids (its encoded size depends on the columns, fingerprint, …).
   */
  recordIdBudget: (withoutIds: AccessEvent) => number
  /** The message size the budget is computed against. */
  maxMessageBytes: number
  /** Session id → its hash under sessionHashKey, kept by the producer (bounded here). */
  sessionHashes?: Map<string, Buffer>
}

/**
 * Turns one validated read into its events, numbered from `firstSeq`. A read
 * whose record ids would not fit one Kafka message is split into parts
 * sharing a read id; the parts together name every record exactly once.
 */
export function buildEvents(input: ParsedReadInput, ctx: EventContext, firstSeq = 1): AccessEvent[] {
  const recordIds = input.recordIds.map(String)
  const occurredAt = input.occurredAt === undefined ? nowMicros() : input.occurredAt instanceof Date ? dateMicros(input.occurredAt) : input.occurredAt
  // A fingerprint has no literals left, so cutting a very long one loses
  // shape, never data; the cut is marked.
  let fingerprint = input.query !== undefined ? fingerprintQuery(input.query, ctx.sqlDialect) : (input.queryFingerprint ?? '')
  if (fingerprint.length > LIMITS.fingerprint) fingerprint = `${fingerprint.slice(0, LIMITS.fingerprint - 1)}…`
  const read: ReadFields = {
    readId: uuidv7(),
    occurredAt,
    sessionHash: input.sessionId === undefined ? null : sessionHashOf(input.sessionId, ctx),
    fingerprint,
    rowCount: input.rowCount ?? recordIds.length,
  }
  // Measuring the encoded event costs an Avro encode; skip it when a
  // generous upper bound (3 UTF-8 bytes per UTF-16 unit) already fits, as
  // nearly every read does: then the read is one event, built once.
  let idsUpperBound = 0
  for (const id of recordIds) idsUpperBound += id.length * 3 + 3
  if (upperBoundBytes(input, ctx, fingerprint) + idsUpperBound <= ctx.maxMessageBytes) return [eventOf(input, ctx, read, recordIds, 0, 1, firstSeq)]
  const budget = ctx.recordIdBudget(eventOf(input, ctx, read, [], 0, 1, firstSeq))
  if (budget < 64) {
    throw new ProducerError('READ_TOO_LARGE', `the read's other fields leave ${budget} bytes of a message for record ids`)
  }
  const parts = splitRecordIds(recordIds, budget)
  return parts.map((ids, index) => eventOf(input, ctx, read, ids, index, parts.length, firstSeq))
}

/** What every part of one read shares, computed once per read. */
interface ReadFields {
  readId: string
  occurredAt: number
  sessionHash: Buffer | null
  fingerprint: string
  rowCount: number
}

/**
 * One part's event. A module function with one object literal, not a
 * closure or a spread of a shared base: built on the caller's thread for
 * every read, it stays cheap for V8 to allocate and for Avro to encode.
 */
function eventOf(input: ParsedReadInput, ctx: EventContext, read: ReadFields, ids: string[], index: number, count: number, firstSeq: number): AccessEvent {
  return {
    event_id: uuidv7(),
    read_id: read.readId,
    part_index: index,
    part_count: count,
    occurred_at: read.occurredAt,
    principal_id: input.principal.id,
    principal_type: input.principal.type,
    on_behalf_of: input.principal.onBehalfOf ?? null,
    session_hash: read.sessionHash,
    client_ip: input.clientIp ?? null,
    service: ctx.service,
    environment: ctx.environment,
    action: input.action,
    db_name: input.resource.database,
    table_name: input.resource.table,
    columns: input.columns,
    record_ids: ids,
    record_ids_complete: input.recordIdsComplete,
    row_count: read.rowCount,
    query_fingerprint: read.fingerprint,
    // '' when unknown, as the wire and the store hold it: a read not seen by a
    // hook has no server connection to be matched on.
    db_session: input.dbSession ?? '',
    statement_digest: input.statementDigest ?? '',
    purpose: input.purpose ?? null,
    trace_id: input.traceId ?? null,
    outcome: input.outcome,
    producer_id: ctx.producerId,
    producer_seq: firstSeq + index,
  }
}

/**
 * The Date's own time value, read from its internal slot: a Date subclass
 * (or an object whose prototype was swapped) can override getTime to pass
 * validation with one value and hand the event another, or throw. Checked
 * again here for the same reason.
 */
function dateMicros(date: Date): number {
  let ms: number
  try {
    ms = Date.prototype.getTime.call(date)
  } catch (cause) {
    throw new InputError([{ field: 'occurredAt', problem: 'is not a real Date' }], { cause })
  }
  if (!Number.isSafeInteger(ms) || ms < 0 || ms * 1000 > MAX_LONG) throw new InputError([{ field: 'occurredAt', problem: 'must be a valid date after 1970' }])
  return ms * 1000
}

/** More than the Avro encoding of the read's event without its record ids can take, without building or encoding it. */
function upperBoundBytes(input: ParsedReadInput, ctx: EventContext, fingerprint: string): number {
  let chars = input.principal.id.length + ctx.service.length + ctx.environment.length + input.resource.database.length + input.resource.table.length
  chars += fingerprint.length + (input.dbSession?.length ?? 0) + (input.statementDigest?.length ?? 0) + ctx.producerId.length
  chars += (input.principal.onBehalfOf?.length ?? 0) + (input.clientIp?.length ?? 0) + (input.purpose?.length ?? 0) + (input.traceId?.length ?? 0)
  for (const c of input.columns) chars += c.length + 1
  return 512 + chars * 3
}

/**
 * The session id's keyed hash, from the producer's bounded cache when it
 * has one: a session makes many reads, and an HMAC costs ~2 µs (two
 * SHA-256 key blocks and a digest) where a Map lookup costs ~0.1. The cache
 * holds only ids the application handed this process anyway; past its
 * bound the oldest entry goes (insertion order), and very long ids are not
 * kept at all. The cached Buffer is shared by the reads of that session:
 * nothing downstream writes to an event's session_hash.
 */
function sessionHashOf(sessionId: string, ctx: EventContext): Buffer {
  const cache = ctx.sessionHashes
  if (cache === undefined || sessionId.length > SESSION_CACHE_MAX_ID_CHARS) return hashSession(sessionId, ctx.sessionHashKey)
  let hash = cache.get(sessionId)
  if (hash === undefined) {
    hash = hashSession(sessionId, ctx.sessionHashKey)
    if (cache.size >= SESSION_CACHE_ENTRIES) cache.delete(cache.keys().next().value!)
    cache.set(sessionId, hash)
  }
  return hash
}

const SESSION_CACHE_ENTRIES = 4096
const SESSION_CACHE_MAX_ID_CHARS = 256

function hashSession(sessionId: string, key: string | Buffer | undefined): Buffer {
  if (key === undefined) {
    throw new ProducerError('CONFIG_INVALID', 'sessionId was given but the producer has no sessionHashKey: raw session ids are never sent')
  }
  return createHmac('sha256', key).update(sessionId).digest()
}

/** Avro writes each string as a varint length (≤ 3 bytes here) plus its UTF-8 bytes. */
function splitRecordIds(ids: string[], maxBytes: number): string[][] {
  const parts: string[][] = []
  let current: string[] = []
  let size = 0
  for (const id of ids) {
    const bytes = Buffer.byteLength(id, 'utf8') + 3
    if (bytes > maxBytes) {
      throw new ProducerError('READ_TOO_LARGE', `a record id of ${bytes} bytes cannot fit in a message (${maxBytes} bytes for record ids)`)
    }
    if (size + bytes > maxBytes && current.length > 0) {
      parts.push(current)
      current = []
      size = 0
    }
    current.push(id)
    size += bytes
  }
  parts.push(current)
  return parts
}
