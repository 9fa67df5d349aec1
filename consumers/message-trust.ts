import { LIMITS } from '../schemas/access-event.js'
import { createBatchCodec, type BatchCodec } from '../schemas/batch-codec.js'
import { isUnsigned, SIGNATURE_BYTES, SIGNATURE_OFFSET, verifyBatch } from '../schemas/batch-signature.js'
import { createCodec, writerFingerprintOf, type Codec } from '../schemas/codec.js'
import { loadSchemaRegistry, type SchemaRegistry } from '../schemas/registry.js'
import { IngestError } from './errors.js'
import type { TrustedProducers } from './trusted-producers.js'

/** What one Kafka message holds once its producer is authenticated: events still to be validated. */
export interface MessageEvents {
  readonly events: unknown[]
  /** The key that vouched for the events; '' for an unsigned message a migration allowed. */
  readonly keyId: string
  /** 1: one event per message; 2 on: a batch. */
  readonly schemaVersion: number
  /** The producer the message claims (signed on wire 2), for dead letters and counts. */
  readonly producerId: string | null
}

export interface MessageTrustOptions {
  /** The services' public keys; null trusts none (only unsigned messages, if allowed, are stored). */
  trusted: TrustedProducers | null
  /** Store wire-1 messages and unsigned batches (migration from unsigned producers). @default false */
  allowUnsigned: boolean
  /** Access-event schemas (wire 1). */
  registry?: SchemaRegistry
  /** Access-batch schemas (wire 2). */
  batchRegistry?: SchemaRegistry
}

export interface MessageTrust {
  /**
   * Authenticates and decodes one message of `topic`. Throws IngestError
   * (MESSAGE_UNSIGNED, PRODUCER_KEY_UNKNOWN, SIGNATURE_INVALID,
   * PRODUCER_NOT_AUTHORIZED) or SchemaError (MESSAGE_MALFORMED,
   * SCHEMA_FINGERPRINT_UNKNOWN); the caller dead-letters the message with that code.
   */
  read(topic: string, value: Buffer): MessageEvents
  /**
   * The first event a message claims, decoded without any trust (bounded
   * like every decode), for the dead letter of a refused message: its
   * producer and seq are a claim nobody vouched for. null if it does not decode.
   */
  claimOf(value: Buffer): { first: unknown; events: number } | null
}

/** Where a batch's key id starts: after the header and the signature. */
const KEY_ID_OFFSET = SIGNATURE_OFFSET + SIGNATURE_BYTES

/**
 * Who may write the chain: anyone who can produce to the topic can frame
 * any principal with the public schema, so a batch is stored only if a key
 * the writer trusts signed exactly these bytes for this topic, and only as
 * events of the service that key belongs to. The signature is checked on the
 * raw bytes before the batch is decoded: a forger's message never reaches
 * avsc. Unsigned messages (wire 1, or a batch from a producer without a
 * key) are refused unless a migration explicitly allows them.
 */
export function createMessageTrust(options: MessageTrustOptions): MessageTrust {
  const events: Codec = createCodec(options.registry ?? loadSchemaRegistry())
  const batches: BatchCodec = createBatchCodec(options.batchRegistry ?? loadSchemaRegistry(undefined, 'access-batch'))
  const refuse = (code: 'MESSAGE_UNSIGNED' | 'PRODUCER_KEY_UNKNOWN' | 'SIGNATURE_INVALID' | 'PRODUCER_NOT_AUTHORIZED', message: string, details: Record<string, unknown> = {}) =>
    new IngestError(code, message, { details })
  return Object.freeze({
    read(topic: string, value: Buffer): MessageEvents {
      const fp = writerFingerprintOf(value)
      if (fp === undefined || !batches.knows(fp)) {
        // Not a batch: a wire-1 event, or something the event decoder names (malformed, unknown schema).
        const decoded = events.decode(value)
        if (!options.allowUnsigned) throw refuse('MESSAGE_UNSIGNED', 'a wire-1 message carries no signature: refused (the writer allows unsigned producers only with allowUnsigned, for migration)')
        return { events: [decoded.event], keyId: '', schemaVersion: decoded.writer.version, producerId: producerOf(decoded.event) }
      }
      const keyId = rawKeyId(value)
      let service: string | null = null
      if (keyId === '' && isUnsigned(value)) {
        if (!options.allowUnsigned) throw refuse('MESSAGE_UNSIGNED', 'an unsigned batch: refused (the producer has no signingKey; the writer allows unsigned producers only with allowUnsigned, for migration)')
      } else {
        const key = keyId === null ? undefined : options.trusted?.byKeyId(keyId)
        if (!key) {
          throw refuse('PRODUCER_KEY_UNKNOWN', `a batch signed with key ${printable(keyId)}, which is not in the trusted producers file`, { key_id: printable(keyId) })
        }
        if (!verifyBatch(topic, value, key.publicKey)) {
          throw refuse('SIGNATURE_INVALID', `a batch naming key ${key.keyId} (service ${key.service}) whose signature does not verify for topic ${topic}`, { key_id: key.keyId, service: key.service })
        }
        service = key.service
      }
      const batch = batches.decode(value)
      if (service !== null && batch.origin.service !== service) {
        throw refuse('PRODUCER_NOT_AUTHORIZED', `key ${keyId} belongs to service ${service}, but the batch claims service ${printable(batch.origin.service)}`, {
          key_id: keyId,
          service,
          claimed_service: printable(batch.origin.service),
        })
      }
      return { events: batch.events, keyId: keyId ?? '', schemaVersion: batch.writer.version, producerId: batch.origin.producerId }
    },
    claimOf(value: Buffer): { first: unknown; events: number } | null {
      try {
        const fp = writerFingerprintOf(value)
        if (fp === undefined || !batches.knows(fp)) return { first: events.decode(value).event, events: 1 }
        const batch = batches.decode(value)
        return batch.events.length === 0 ? null : { first: batch.events[0], events: batch.events.length }
      } catch {
        return null
      }
    },
  })
}

/**
 * The key id a batch names, read from its bytes without decoding it (its
 * second field, an Avro string after the fixed signature); null when the
 * bytes cannot hold one (the decoder will say why).
 */
function rawKeyId(value: Buffer): string | null {
  let at = KEY_ID_OFFSET
  let raw = 0
  let scale = 1
  for (let i = 0; i < 3; i++) {
    if (at >= value.length) return null
    const b = value[at++]!
    raw += (b & 0x7f) * scale
    if ((b & 0x80) === 0) {
      const length = raw % 2 === 0 ? raw / 2 : -1
      if (length < 0 || length > LIMITS.name * 3 || at + length > value.length) return null
      return value.toString('utf8', at, at + length)
    }
    scale *= 128
  }
  return null
}

/** A claimed value, cut and stripped of control characters before it goes into an error or a log line. */
function printable(value: string | null): string {
  if (value === null) return '(unreadable)'
  // eslint-disable-next-line no-control-regex
  return JSON.stringify(value.slice(0, 80).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?'))
}

function producerOf(event: unknown): string | null {
  const id = (event as { producer_id?: unknown } | null)?.producer_id
  return typeof id === 'string' ? id : null
}
