import type { KeyObject } from 'node:crypto'
import { LIMITS } from './access-event.js'
import { AlertEvent } from './alert-event.js'
import { batchDomain, SIGNATURE_BYTES, signBatch, verifyBatch } from './batch-signature.js'
import { createFrameDecoder, singleObjectHeader, type CodecOptions } from './codec.js'
import { DB_AUDIT_LIMITS, DbAuditEvent } from './db-audit-event.js'
import { UTF8_BYTES_PER_CHAR, type DecodeBound } from './decode-bounds.js'
import { SchemaError } from './errors.js'
import { loadSchemaRegistry, type SchemaFamily, type SchemaRegistry, type SchemaVersion } from './registry.js'
import type { z } from 'zod'

/**
 * The two side streams: a database's own audit log entries, and
 * extraction-guard alerts. Each has its topic (`<topic>.db-audit`,
 * `<topic>.alerts`), its signed batch format and its own hash chain in the
 * store; what they share is here.
 */
export const SIDE_KINDS = ['db-audit', 'alert'] as const
export type SideKind = (typeof SIDE_KINDS)[number]

/** The topic a side stream of the event topic `topic` travels on. */
export function sideTopic(topic: string, kind: SideKind): string {
  return kind === 'db-audit' ? `${topic}.db-audit` : `${topic}.alerts`
}

/** Who sent a side batch: said once per message, true of every event in it. */
export interface SideOrigin {
  /** keyId of the signing key (a side batch is never unsigned). */
  readonly keyId: string
  readonly producerId: string
  /** The name the key is trusted for in the trusted-producers file. */
  readonly service: string
}

export interface SideBatchCodec<E> {
  readonly kind: SideKind
  readonly current: SchemaVersion
  /** One signed message holding `events` in order. Throws SchemaError EVENT_INVALID if one does not fit the schema. */
  encode(topic: string, origin: SideOrigin, events: readonly E[], key: KeyObject): Buffer
  /**
   * The origin and events of a message, bounded before avsc reads a byte
   * (events still unvalidated: check each with `schema`). Throws SchemaError
   * (SCHEMA_FINGERPRINT_UNKNOWN, MESSAGE_MALFORMED). Does not check the signature.
   */
  decode(message: Buffer): { origin: SideOrigin; events: unknown[]; writer: SchemaVersion }
  /** True only if `publicKey` signed exactly this message, of this kind, for this topic. */
  verify(topic: string, message: Buffer, publicKey: KeyObject): boolean
  /** The validator of one event. */
  readonly schema: z.ZodType<E>
}

/** Most events one side batch may declare; the decoder refuses more before reading one. */
export const MAX_SIDE_EVENTS_PER_BATCH = 10_000

const chars = (n: number): DecodeBound => Object.freeze({ maxBytes: n * UTF8_BYTES_PER_CHAR })
const FIXED: DecodeBound = Object.freeze({})
const UUID = chars(36)

const ORIGIN_BOUNDS = { signature: FIXED, key_id: chars(LIMITS.name), producer_id: chars(LIMITS.name), service: chars(LIMITS.name) }

export const DB_AUDIT_EVENT_BOUNDS: Readonly<Record<string, DecodeBound>> = Object.freeze({
  event_id: UUID,
  source_kind: FIXED,
  logged_at: FIXED,
  db_name: chars(LIMITS.name),
  db_user: chars(LIMITS.name),
  client_addr: chars(LIMITS.name),
  application_name: chars(LIMITS.name),
  db_session: chars(20),
  command: chars(64),
  object_name: chars(LIMITS.name),
  statement: chars(DB_AUDIT_LIMITS.statement),
  statement_truncated: FIXED,
  statement_digest: chars(64),
  log_file: chars(DB_AUDIT_LIMITS.path),
  log_offset: FIXED,
  reader_seq: FIXED,
})

export const ALERT_EVENT_BOUNDS: Readonly<Record<string, DecodeBound>> = Object.freeze({
  alert_id: UUID,
  occurred_at: FIXED,
  environment: chars(LIMITS.name),
  principal_id: chars(LIMITS.name),
  principal_type: FIXED,
  db_name: chars(LIMITS.name),
  table_name: chars(LIMITS.name),
  budget: chars(LIMITS.name),
  window_seconds: FIXED,
  limit: FIXED,
  observed: FIXED,
  action: FIXED,
  read_id: UUID,
  records_in_read: FIXED,
  detail: chars(LIMITS.text),
  producer_seq: FIXED,
})

const FAMILY: Record<SideKind, SchemaFamily> = { 'db-audit': 'db-audit-batch', alert: 'alert-batch' }

interface RawSideBatch {
  key_id: string
  producer_id: string
  service: string
  events: unknown[]
}

function createSideBatchCodec<E>(kind: SideKind, schema: z.ZodType<E>, eventBounds: Readonly<Record<string, DecodeBound>>, registry: SchemaRegistry, options: CodecOptions): SideBatchCodec<E> {
  const current = registry.current
  const header = singleObjectHeader(current.fingerprint)
  const domain = batchDomain(FAMILY[kind])
  const bounds = Object.freeze({ ...ORIGIN_BOUNDS, events: Object.freeze({ maxItems: MAX_SIDE_EVENTS_PER_BATCH, items: Object.freeze({ fields: eventBounds }) }) })
  const decoder = createFrameDecoder(registry, bounds, `${kind} batch`, options)
  return Object.freeze({
    kind,
    current,
    schema,
    encode(topic: string, origin: SideOrigin, events: readonly E[], key: KeyObject): Buffer {
      if (events.length > MAX_SIDE_EVENTS_PER_BATCH) throw new SchemaError('EVENT_INVALID', `a ${kind} batch holds at most ${MAX_SIDE_EVENTS_PER_BATCH} events (got ${events.length})`)
      let body: Buffer
      try {
        body = current.type.toBuffer({ signature: Buffer.alloc(SIGNATURE_BYTES), key_id: origin.keyId, producer_id: origin.producerId, service: origin.service, events })
      } catch (cause) {
        throw new SchemaError('EVENT_INVALID', `event does not fit ${FAMILY[kind]} v${current.version}: ${(cause as Error).message}`, { cause })
      }
      const message = Buffer.concat([header, body])
      signBatch(topic, message, key, domain)
      return message
    },
    decode(message: Buffer) {
      const { value, writer } = decoder.decode(message)
      const raw = value as RawSideBatch
      return { origin: { keyId: raw.key_id, producerId: raw.producer_id, service: raw.service }, events: raw.events, writer }
    },
    verify: (topic: string, message: Buffer, publicKey: KeyObject) => verifyBatch(topic, message, publicKey, domain),
  })
}

export function createDbAuditBatchCodec(options: CodecOptions & { registry?: SchemaRegistry } = {}): SideBatchCodec<DbAuditEvent> {
  return createSideBatchCodec('db-audit', DbAuditEvent, DB_AUDIT_EVENT_BOUNDS, options.registry ?? loadSchemaRegistry(undefined, 'db-audit-batch'), options)
}

export function createAlertBatchCodec(options: CodecOptions & { registry?: SchemaRegistry } = {}): SideBatchCodec<AlertEvent> {
  return createSideBatchCodec('alert', AlertEvent, ALERT_EVENT_BOUNDS, options.registry ?? loadSchemaRegistry(undefined, 'alert-batch'), options)
}
