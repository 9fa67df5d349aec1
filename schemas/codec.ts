import { MAX_MESSAGE_BYTES } from './access-event.js'
import { createBodyScanner, type BodyScanner } from './body-scanner.js'
import { ACCESS_EVENT_BOUNDS } from './decode-bounds.js'
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
  const header = Buffer.concat([Buffer.from([MARKER_0, MARKER_1]), fingerprintBytes(registry.current.fingerprint)])
  const type = registry.current.type
  const maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES
  // Every writer schema's scan is compiled here, once: a schema the scan
  // cannot bound fails at start-up, not on the first message written with it.
  const scanners = new Map<bigint, BodyScanner>(registry.versions.map((v) => [v.fingerprint, createBodyScanner(v.type, ACCESS_EVENT_BOUNDS)]))
  return Object.freeze({
    encode(event: unknown): Buffer {
      try {
        return Buffer.concat([header, type.toBuffer(event)])
      } catch (cause) {
        throw new SchemaError('EVENT_INVALID', `event does not fit access-event v${registry.current.version}: ${(cause as Error).message}`, { cause })
      }
    },
    decode(message: Buffer): DecodedMessage {
      // The message is attacker-controlled: check framing before trusting any byte.
      if (message.length > maxMessageBytes) {
        throw new SchemaError('MESSAGE_MALFORMED', `a message of ${message.length} bytes is larger than the ${maxMessageBytes} an access event may take`, {
          details: { bytes: message.length, limit: maxMessageBytes },
        })
      }
      if (message.length < HEADER_LENGTH || message[0] !== MARKER_0 || message[1] !== MARKER_1) {
        throw new SchemaError('MESSAGE_MALFORMED', 'not Avro single-object encoding (missing C3 01 marker)')
      }
      const fp = message.readBigUInt64LE(2)
      const writer = registry.byFingerprint(fp)
      const scanner = scanners.get(fp)
      if (!writer || !scanner) {
        throw new SchemaError(
          'SCHEMA_FINGERPRINT_UNKNOWN',
          `writer schema fingerprint ${fp.toString(16).padStart(16, '0')} is not a released access-event version`,
          { details: { fingerprint: fp.toString(16) } },
        )
      }
      const body = message.subarray(HEADER_LENGTH)
      // avsc trusts declared counts (it allocates and loops over them before
      // noticing the body ended): nothing reaches it until every count and
      // length has been checked against the bytes left and the field's bound.
      try {
        scanner.scan(body)
        const event: unknown = type.fromBuffer(body, registry.resolverFor(writer))
        return { event, writer }
      } catch (cause) {
        const details = cause instanceof SchemaError ? cause.details : undefined
        throw new SchemaError('MESSAGE_MALFORMED', `body does not decode with schema v${writer.version}: ${(cause as Error).message}`, { cause, details })
      }
    },
  })
}
