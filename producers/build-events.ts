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
}

/**
 * Turns one validated read into its events, numbered from `firstSeq`. A read
 * whose record ids would not fit one Kafka message is split into parts
 * sharing a read id; the parts together name every record exactly once.
 */
export function buildEvents(input: ParsedReadInput, ctx: EventContext, firstSeq = 1): AccessEvent[] {
  const recordIds = input.recordIds.map(String)
  const occurredAt = input.occurredAt === undefined ? nowMicros() : input.occurredAt instanceof Date ? dateMicros(input.occurredAt) : input.occurredAt
  const readId = uuidv7()
  const sessionHash = input.sessionId === undefined ? null : hashSession(input.sessionId, ctx.sessionHashKey)
  // A fingerprint has no literals left, so cutting a very long one loses
  // shape, never data; the cut is marked.
  let fingerprint = input.query !== undefined ? fingerprintQuery(input.query, ctx.sqlDialect) : (input.queryFingerprint ?? '')
  if (fingerprint.length > LIMITS.fingerprint) fingerprint = `${fingerprint.slice(0, LIMITS.fingerprint - 1)}…`
  // '' when unknown, as the wire and the store hold it: a read not seen by a
  // hook has no server connection to be matched on.
  const dbSession = input.dbSession ?? ''
  const statementDigest = input.statementDigest ?? ''
  // One literal per part, no spread of a shared base: the events stay cheap
  // for V8 to encode on the caller's thread.
  const event = (ids: string[], index: number, count: number): AccessEvent => ({
    event_id: uuidv7(),
    read_id: readId,
    part_index: index,
    part_count: count,
    occurred_at: occurredAt,
    principal_id: input.principal.id,
    principal_type: input.principal.type,
    on_behalf_of: input.principal.onBehalfOf ?? null,
    session_hash: sessionHash,
    client_ip: input.clientIp ?? null,
    service: ctx.service,
    environment: ctx.environment,
    action: input.action,
    db_name: input.resource.database,
    table_name: input.resource.table,
    columns: input.columns,
    record_ids: ids,
    record_ids_complete: input.recordIdsComplete,
    row_count: input.rowCount ?? recordIds.length,
    query_fingerprint: fingerprint,
    db_session: dbSession,
    statement_digest: statementDigest,
    purpose: input.purpose ?? null,
    trace_id: input.traceId ?? null,
    outcome: input.outcome,
    producer_id: ctx.producerId,
    producer_seq: firstSeq + index,
  })
  // Measuring the encoded event costs an Avro encode; skip it when a
  // generous upper bound (3 UTF-8 bytes per UTF-16 unit) already fits.
  const base = event([], 0, 1)
  const idsUpperBound = recordIds.reduce((n, id) => n + id.length * 3 + 3, 0)
  const budget = upperBoundBytes(base) + idsUpperBound <= ctx.maxMessageBytes ? Infinity : ctx.recordIdBudget(base)
  if (budget < 64) {
    throw new ProducerError('READ_TOO_LARGE', `the read's other fields leave ${budget} bytes of a message for record ids`)
  }
  const parts = splitRecordIds(recordIds, budget)
  return parts.map((ids, index) => event(ids, index, parts.length))
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

/** More than the Avro encoding of the event can take, without encoding it. */
function upperBoundBytes(e: AccessEvent): number {
  let chars = e.principal_id.length + e.service.length + e.environment.length + e.db_name.length + e.table_name.length
  chars += e.query_fingerprint.length + e.db_session.length + e.statement_digest.length + e.producer_id.length + (e.on_behalf_of?.length ?? 0) + (e.client_ip?.length ?? 0)
  chars += (e.purpose?.length ?? 0) + (e.trace_id?.length ?? 0)
  for (const c of e.columns) chars += c.length + 1
  return 512 + chars * 3
}

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
