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

export interface Codec {
  encode(event: unknown): Buffer
  /** Throws SchemaError (SCHEMA_FINGERPRINT_UNKNOWN or MESSAGE_MALFORMED). */
  decode(message: Buffer): DecodedMessage
}

export function createCodec(registry: SchemaRegistry): Codec {
  const header = Buffer.concat([Buffer.from([MARKER_0, MARKER_1]), fingerprintBytes(registry.current.fingerprint)])
  const type = registry.current.type
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
      if (message.length < HEADER_LENGTH || message[0] !== MARKER_0 || message[1] !== MARKER_1) {
        throw new SchemaError('MESSAGE_MALFORMED', 'not Avro single-object encoding (missing C3 01 marker)')
      }
      const fp = message.readBigUInt64LE(2)
      const writer = registry.byFingerprint(fp)
      if (!writer) {
        throw new SchemaError(
          'SCHEMA_FINGERPRINT_UNKNOWN',
          `writer schema fingerprint ${fp.toString(16).padStart(16, '0')} is not a released access-event version`,
          { details: { fingerprint: fp.toString(16) } },
        )
      }
      try {
        const event: unknown = type.fromBuffer(message.subarray(HEADER_LENGTH), registry.resolverFor(writer))
        return { event, writer }
      } catch (cause) {
        throw new SchemaError('MESSAGE_MALFORMED', `body does not decode with schema v${writer.version}: ${(cause as Error).message}`, { cause })
      }
    },
  })
}
