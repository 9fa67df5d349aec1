import type avro from 'avsc'
import { MAX_MESSAGE_BYTES, type AccessEvent } from './access-event.js'
import { createFrameDecoder, singleObjectHeader, type CodecOptions } from './codec.js'
import { ACCESS_BATCH_BOUNDS } from './decode-bounds.js'
import { SIGNATURE_BYTES } from './batch-signature.js'
import { SchemaError } from './errors.js'
import { createEventWriter } from './event-writer.js'
import type { SchemaRegistry, SchemaVersion } from './registry.js'

/** Who sent a batch: said once per message, true of every event in it. */
export interface BatchOrigin {
  /** keyId of the producer's signing key; '' when the batch is unsigned. */
  readonly keyId: string
  readonly producerId: string
  readonly service: string
  readonly environment: string
}

/** A batch as the writer reads it: its origin, and its events in the access-event shape (unvalidated). */
export interface DecodedBatch {
  readonly origin: BatchOrigin
  readonly events: unknown[]
  readonly writer: SchemaVersion
}

/** Builds one producer's messages: its origin is encoded once, each event once, on the caller's thread. */
export interface BatchFramer {
  /**
   * The Avro body of one event as a batch item, the caller's to keep. Throws
   * EVENT_INVALID if it does not fit the schema, or (current version) if it
   * is too large for any message the codec's decoder reads.
   */
  encodeEvent(event: AccessEvent): Buffer
  /** Bytes a message adds around its events' bodies, whatever their number (up to MAX_EVENTS_PER_BATCH). */
  readonly overhead: number
  /** One message holding these bodies in order, its signature bytes zero (schemas/batch-signature.ts signs it). */
  frame(bodies: readonly Buffer[], bodyBytes: number): Buffer
}

export interface BatchCodec {
  readonly current: SchemaVersion
  /**
   * A framer writing batch version `version` (default: the current one).
   * An older version is for producers upgraded before their chain writers:
   * a writer refuses a fingerprint it was not released with, and the fields
   * the older version lacks are not written. Throws for a version that is
   * not a released batch version.
   */
  framer(origin: BatchOrigin, version?: number): BatchFramer
  /** Throws SchemaError (SCHEMA_FINGERPRINT_UNKNOWN or MESSAGE_MALFORMED). Does not check the signature. */
  decode(message: Buffer): DecodedBatch
  /** Whether a released batch version wrote this fingerprint. */
  knows(fingerprint: bigint): boolean
}

/** The most bytes a zigzag varint of a count up to 2^31 takes. */
const MAX_COUNT_BYTES = 5

interface RawBatch {
  key_id: string
  producer_id: string
  service: string
  environment: string
  events: Omit<AccessEvent, 'producer_id' | 'service' | 'environment'>[]
}

export function createBatchCodec(registry: SchemaRegistry, options: CodecOptions = {}): BatchCodec {
  const current = registry.current
  const decoder = createFrameDecoder(registry, ACCESS_BATCH_BOUNDS, 'access batch', options)
  const maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES
  return Object.freeze({
    current,
    knows: decoder.knows,
    framer(origin: BatchOrigin, version: number = current.version): BatchFramer {
      const written = registry.versions.find((v) => v.version === version)
      if (!written) throw new Error(`access-batch v${version} is not a released batch version (${registry.versions.map((v) => `v${v.version}`).join(', ')})`)
      const type = written.type as avro.types.RecordType
      const eventsField = type.fields.find((f) => f.name === 'events')
      if (!eventsField) throw new Error(`access-batch v${written.version} has no events field`)
      const eventType = (eventsField.type as avro.types.ArrayType).itemsType
      const header = singleObjectHeader(written.fingerprint)
      // The record with no events, less its signature and the empty array's
      // 0: the origin's bytes, the same in every message of this producer.
      const empty = type.toBuffer({ signature: Buffer.alloc(SIGNATURE_BYTES), key_id: origin.keyId, producer_id: origin.producerId, service: origin.service, environment: origin.environment, events: [] })
      const originBytes = empty.subarray(SIGNATURE_BYTES, empty.length - 1)
      const overhead = header.length + SIGNATURE_BYTES + originBytes.length + MAX_COUNT_BYTES + 1
      // The current version, written on the caller's thread for every read,
      // has a writer of its own (schemas/event-writer.ts: avsc's bytes, in a
      // fraction of avsc's time), bounded by what one event may take in a
      // message the decoder reads. An older version, for producers upgraded
      // before their chain writers, keeps avsc. Either writes the item's own
      // fields and ignores the three the batch carries (and, for an older
      // version, the ones it lacks).
      const encode =
        written.version === current.version ? createEventWriter(eventType, { maxBytes: maxMessageBytes - overhead }).encode : (event: AccessEvent): Buffer => eventType.toBuffer(event)
      return Object.freeze({
        overhead,
        encodeEvent(event: AccessEvent): Buffer {
          try {
            return encode(event)
          } catch (cause) {
            throw new SchemaError('EVENT_INVALID', `event does not fit access-batch v${written.version}: ${(cause as Error).message}`, { cause })
          }
        },
        frame(bodies: readonly Buffer[], bodyBytes: number): Buffer {
          const out = Buffer.allocUnsafe(overhead + bodyBytes)
          let at = header.copy(out, 0)
          out.fill(0, at, at + SIGNATURE_BYTES)
          at += SIGNATURE_BYTES
          at += originBytes.copy(out, at)
          // One Avro array block: its count (zigzag varint), the items, then a 0 count.
          if (bodies.length > 0) {
            let zz = bodies.length * 2
            while (zz >= 0x80) {
              out[at++] = (zz & 0x7f) | 0x80
              zz = Math.floor(zz / 128)
            }
            out[at++] = zz
            for (const b of bodies) at += b.copy(out, at)
          }
          out[at++] = 0
          return out.subarray(0, at)
        },
      })
    },
    decode(message: Buffer): DecodedBatch {
      const { value, writer } = decoder.decode(message)
      const raw = value as RawBatch
      const origin: BatchOrigin = { keyId: raw.key_id, producerId: raw.producer_id, service: raw.service, environment: raw.environment }
      // Each event gets back the fields the batch said once, in the access
      // event's field order: the writer validates and stores events of
      // either wire version through the same code.
      const events = raw.events.map((e) => ({
        event_id: e.event_id, read_id: e.read_id, part_index: e.part_index, part_count: e.part_count, occurred_at: e.occurred_at,
        principal_id: e.principal_id, principal_type: e.principal_type, on_behalf_of: e.on_behalf_of, session_hash: e.session_hash,
        client_ip: e.client_ip, service: raw.service, environment: raw.environment, action: e.action, db_name: e.db_name, table_name: e.table_name,
        columns: e.columns, record_ids: e.record_ids, record_ids_complete: e.record_ids_complete, row_count: e.row_count,
        query_fingerprint: e.query_fingerprint, db_session: e.db_session, statement_digest: e.statement_digest, purpose: e.purpose, trace_id: e.trace_id, outcome: e.outcome, producer_id: raw.producer_id,
        producer_seq: e.producer_seq,
      }))
      return { origin, events, writer }
    },
  })
}
