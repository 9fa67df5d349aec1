import { DEAD_LETTER_HEADERS, deadLetterClaimOf, deadLetterSource, sha256Hex, signDeadLetter, type DeadLetterProducer, type DeadLetterSigningKey } from './dead-letter-signature.js'

/**
 * Longest key copied into a dead letter; a longer one is replaced by its
 * SHA-256. Keys are chosen by whoever produced the message, and a hostile
 * one costs every reader of the dead-letter topic its size again.
 * @default 1024
 */
export const DEAD_LETTER_KEY_MAX = 1024

/**
 * What a record costs on the wire beyond its key, value and headers: the
 * record batch's header (61 bytes) and the record's own varints, rounded
 * up, plus slack for whatever the broker counts that this estimate does not.
 */
const BATCH_OVERHEAD = 61 + 64
const HEADER_OVERHEAD = 10
const SLACK = 1024

/** Where dead letters go and how large one may be: read from the broker when the writer starts. */
export interface DeadLetterTopicLimits {
  partitions: number
  /** The dead-letter topic's max.message.bytes (the largest record batch it accepts). */
  maxMessageBytes: number
}

/** A message the writer could not store, and why. */
export interface DeadLetterInput {
  topic: string
  partition: number
  message: { key: Buffer | null; value: Buffer | null; offset: string }
  code: string
  /** Free text for people. */
  error: string
  /** The producer id and seq the message named, where the writer could decode them. */
  producer: DeadLetterProducer | null
}

/** A dead letter ready to send: always to an explicit partition, so no client hashes its key. */
export interface DeadLetterRecord {
  partition: number
  key: Buffer | null
  value: Buffer | null
  headers: Record<string, string>
  /** Estimated size on the wire as the broker checks it against max.message.bytes. */
  bytes: number
  /** Whether the value was left out (too large for the dead-letter topic). */
  truncated: boolean
}

/**
 * The dead letter for one message. The key is copied only up to
 * DEAD_LETTER_KEY_MAX bytes, and the value only if the whole letter fits the
 * dead-letter topic's max.message.bytes; what is left out is replaced by its
 * SHA-256 in a header (and the value's size). The signature is over the
 * source message's hashes either way, so a shortened letter verifies, and
 * matches its source, exactly as a full copy would: the writer's word that
 * it did not store that message stays whole, only the copy is shorter.
 * The partition is the source's modulo the dead-letter topic's partitions:
 * an explicit partition spares the client's partitioner (kafkajs's murmur2
 * takes minutes over a megabyte key) and keeps a partition's letters in order.
 */
export function buildDeadLetter(input: DeadLetterInput, database: string, key: DeadLetterSigningKey | undefined, limits: DeadLetterTopicLimits): DeadLetterRecord {
  const { message } = input
  const source = deadLetterSource(input.topic, input.partition, message.offset)
  const headers: Record<string, string> = {
    [DEAD_LETTER_HEADERS.code]: input.code,
    [DEAD_LETTER_HEADERS.error]: input.error.slice(0, 4000),
    [DEAD_LETTER_HEADERS.source]: source,
    ...(key ? signDeadLetter(deadLetterClaimOf(database, source, message, input.code, input.producer), key) : {}),
  }
  let letterKey = message.key
  if (letterKey !== null && letterKey.length > DEAD_LETTER_KEY_MAX) {
    headers[DEAD_LETTER_HEADERS.keySha256] = sha256Hex(letterKey)!
    letterKey = null
  }
  const partition = input.partition % Math.max(1, limits.partitions)
  const full = { partition, key: letterKey, value: message.value, headers, truncated: false }
  const bytes = recordBytes(full)
  if (bytes <= limits.maxMessageBytes) return { ...full, bytes }
  const cut = {
    partition,
    key: letterKey,
    value: null,
    headers: { ...headers, [DEAD_LETTER_HEADERS.valueSha256]: sha256Hex(message.value)!, [DEAD_LETTER_HEADERS.valueSize]: String(message.value?.length ?? 0) },
    truncated: true,
  }
  return { ...cut, bytes: recordBytes(cut) }
}

/** The bytes a record batch holding only this record takes, over-estimated. */
export function recordBytes(record: { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }): number {
  let n = BATCH_OVERHEAD + SLACK + (record.key?.length ?? 0) + (record.value?.length ?? 0)
  for (const [k, v] of Object.entries(record.headers)) n += HEADER_OVERHEAD + Buffer.byteLength(k) + Buffer.byteLength(v)
  return n
}

/**
 * Letters in sends whose batches each fit max.message.bytes: kafkajs puts
 * every message of one send to one partition into a single record batch,
 * which the broker checks as a whole.
 */
export function batchDeadLetters(records: readonly DeadLetterRecord[], maxMessageBytes: number): DeadLetterRecord[][] {
  const out: DeadLetterRecord[][] = []
  let current: DeadLetterRecord[] = []
  let size = 0
  for (const r of records) {
    const extra = r.bytes - BATCH_OVERHEAD
    if (current.length > 0 && size + extra > maxMessageBytes) {
      out.push(current)
      current = []
      size = 0
    }
    current.push(r)
    size += current.length === 1 ? r.bytes : extra
  }
  if (current.length > 0) out.push(current)
  return out
}
