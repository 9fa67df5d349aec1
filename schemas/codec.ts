import { MAX_MESSAGE_BYTES } from './access-event.js'
import { createBodyScanner, type BodyScanner } from './body-scanner.js'
import { ACCESS_EVENT_BOUNDS, type DecodeBound } from './decode-bounds.js'
import { SchemaError } from './errors.js'
import { fingerprintBytes } from './fingerprint.js'
import type { SchemaRegistry, SchemaVersion } from './registry.js'

/** Avro single-object encoding marker (spec: 0xC3 0x01). */
const MARKER_0 = 0xc3
const MARKER_1 = 0x01
export const HEADER_LENGTH = 10

export interface DecodedMessage {
  /** The event resolved to the current reader schema; still unvalidated. */
  readonly event: unknown
  readonly writer: SchemaVersion
}

export interface CodecOptions {
  /** Largest message decode reads; a larger one is MESSAGE_MALFORMED unread. @default MAX_MESSAGE_BYTES (16 MiB) */
  maxMessageBytes?: number
}

export interface Codec {
  encode(event: unknown): Buffer
  /**
   * Throws SchemaError (SCHEMA_FINGERPRINT_UNKNOWN or MESSAGE_MALFORMED).
   * Costs time and memory proportional to the message, whatever it declares.
   */
  decode(message: Buffer): DecodedMessage
}

export function createCodec(registry: SchemaRegistry, options: CodecOptions = {}): Codec {
  const header = singleObjectHeader(registry.current.fingerprint)
  const type = registry.current.type
  const decoder = createFrameDecoder(registry, ACCESS_EVENT_BOUNDS, 'access event', options)
  return Object.freeze({
    encode(event: unknown): Buffer {
      try {
        return Buffer.concat([header, type.toBuffer(event)])
      } catch (cause) {
        throw new SchemaError('EVENT_INVALID', `event does not fit access-event v${registry.current.version}: ${(cause as Error).message}`, { cause })
      }
    },
    decode(message: Buffer): DecodedMessage {
      const { value, writer } = decoder.decode(message)
      return { event: withoutConnectionKey(value), writer }
    },
  })
}

/**
 * Wire 1 predates the database-side cross-check: its events carry no server
 * connection id or statement digest. They get the '' a v3 batch's resolver
 * gives a v2 event, so the writer validates and stores events of every wire
 * version as one AccessEvent shape. A field the writer's schema does have is
 * left as decoded.
 */
function withoutConnectionKey(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  const event = value as Record<string, unknown>
  if (!('db_session' in event)) event['db_session'] = ''
  if (!('statement_digest' in event)) event['statement_digest'] = ''
  return event
}

/** The 10 bytes single-object encoding puts before a body written with the schema of `fingerprint`. */
export function singleObjectHeader(fingerprint: bigint): Buffer {
  return Buffer.concat([Buffer.from([MARKER_0, MARKER_1]), fingerprintBytes(fingerprint)])
}

/** The writer fingerprint of a single-object encoded message, or undefined when it is not one. */
export function writerFingerprintOf(message: Buffer): bigint | undefined {
  if (message.length < HEADER_LENGTH || message[0] !== MARKER_0 || message[1] !== MARKER_1) return undefined
  return message.readBigUInt64LE(2)
}

/** Decodes single-object encoded values of one schema family, resolved to its current version. */
export interface FrameDecoder {
  /** Whether a released version of this family wrote the message (by its fingerprint alone). */
  knows(fingerprint: bigint): boolean
  /** Throws SchemaError (SCHEMA_FINGERPRINT_UNKNOWN or MESSAGE_MALFORMED); unvalidated. */
  decode(message: Buffer): { value: unknown; writer: SchemaVersion }
}

/**
 * The checks every hostile message passes before avsc reads it: size,
 * marker, a released writer fingerprint, then a bounded scan of the body
 * (`bounds` names the top record's fields). `noun` names the family in errors.
 */
export function createFrameDecoder(registry: SchemaRegistry, bounds: Readonly<Record<string, DecodeBound>>, noun: string, options: CodecOptions = {}): FrameDecoder {
  const type = registry.current.type
  const maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES
  // Every writer schema's scan is compiled here, once: a schema the scan
  // cannot bound fails at start-up, not on the first message written with it.
  const scanners = new Map<bigint, BodyScanner>(registry.versions.map((v) => [v.fingerprint, createBodyScanner(v.type, bounds)]))
  return Object.freeze({
    knows: (fp: bigint) => scanners.has(fp),
    decode(message: Buffer): { value: unknown; writer: SchemaVersion } {
      // The message is attacker-controlled: check framing before trusting any byte.
      if (message.length > maxMessageBytes) {
        throw new SchemaError('MESSAGE_MALFORMED', `a message of ${message.length} bytes is larger than the ${maxMessageBytes} an ${noun} may take`, {
          details: { bytes: message.length, limit: maxMessageBytes },
        })
      }
      const fp = writerFingerprintOf(message)
      if (fp === undefined) throw new SchemaError('MESSAGE_MALFORMED', 'not Avro single-object encoding (missing C3 01 marker)')
      const writer = registry.byFingerprint(fp)
      const scanner = scanners.get(fp)
      if (!writer || !scanner) {
        throw new SchemaError('SCHEMA_FINGERPRINT_UNKNOWN', `writer schema fingerprint ${fp.toString(16).padStart(16, '0')} is not a released ${noun} version`, {
          details: { fingerprint: fp.toString(16) },
        })
      }
      const body = message.subarray(HEADER_LENGTH)
      // avsc trusts declared counts (it allocates and loops over them before
      // noticing the body ended): nothing reaches it until every count and
      // length has been checked against the bytes left and the field's bound.
      try {
        scanner.scan(body)
        return { value: type.fromBuffer(body, registry.resolverFor(writer)) as unknown, writer }
      } catch (cause) {
        const details = cause instanceof SchemaError ? cause.details : undefined
        throw new SchemaError('MESSAGE_MALFORMED', `body does not decode with schema v${writer.version}: ${(cause as Error).message}`, { cause, details })
      }
    },
  })
}
