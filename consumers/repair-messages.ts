import type { Kafka, KafkaMessage } from 'kafkajs'
import { readMessages, readWatermarks, type MessageRange } from '../integrity/kafka-log-facts.js'
import { REPLAY_HEADER } from '../schemas/message-headers.js'
import { createMessageTrust, type MessageTrustOptions } from './message-trust.js'
import type { ChainEntry } from './chain.js'
import { assertAccessEvent } from './validate-event.js'

/** The header the chain writer names a dead letter's source message with: `<topic>/<partition>@<offset>`. */
const DEAD_LETTER_SOURCE_HEADER = 'readtrail-source'

export interface MessageBounds {
  /** Give up (KAFKA_UNAVAILABLE, retriable) after this long. @default 30000 */
  timeoutMs: number
  /** Most messages read for one gap or one dead-letter topic. @default 100000 */
  maxMessages: number
}

export const MESSAGE_BOUNDS: Readonly<MessageBounds> = Object.freeze({ timeoutMs: 30_000, maxMessages: 100_000 })

/** A valid event read back from Kafka, as the chain writer would have chained it. */
export interface KafkaEvent {
  entry: ChainEntry
  /** Sent again from a producer's outbox: the writer stores it only if its chain lacks the event id. */
  replayed: boolean
  /** The message's Kafka timestamp (ms). */
  timestampMs: number
}

/** Authenticates, decodes and validates messages exactly as the chain writer does before it chains them. */
export interface EventDecoder {
  /**
   * The entries of the message at `offset` of `topic`, one per event in
   * message order. Throws (MESSAGE_MALFORMED, SCHEMA_FINGERPRINT_UNKNOWN,
   * EVENT_INVALID, MESSAGE_UNSIGNED, SIGNATURE_INVALID…) for what the writer
   * would dead-letter.
   */
  decode(topic: string, message: KafkaMessage, offset: bigint): ChainEntry[]
}

/**
 * The writer's own rules: repair rebuilds rows only from messages a trusted
 * key vouches for (or unsigned ones where the writer allows them), so a
 * forger's message can never fill a gap.
 */
export function createEventDecoder(options: MessageTrustOptions): EventDecoder {
  const trust = createMessageTrust(options)
  return {
    decode(topic, message, offset) {
      if (!message.value) throw new Error('message has no value')
      const read = trust.read(topic, message.value)
      if (read.events.length === 0) throw new Error('a batch holding no events')
      return read.events.map((event, index) => {
        assertAccessEvent(event)
        return { event, offset, index, events: read.events.length, keyId: read.keyId, schemaVersion: read.schemaVersion }
      })
    },
  }
}

/** What Kafka holds of one partition between two offsets. */
export interface PartitionSlice {
  /** Valid events not named by a dead letter, in (offset, index) order. */
  events: KafkaEvent[]
  /** Why part of the slice could not be read (deleted from Kafka, beyond the partition's end, the read bound); null when all of it was. */
  unavailable: string | null
  /** Messages skipped, with why (dead-lettered, invalid). */
  skipped: { offset: bigint; why: string }[]
}

/**
 * Reads offsets from..to (inclusive) of one partition. Messages a dead
 * letter names, and messages that do not decode or validate, are skipped as
 * the writer skipped them. A forged dead letter can only make a rebuild fail
 * to prove, never make one pass.
 */
export async function readPartitionSlice(
  kafka: Kafka,
  topic: string,
  partition: number,
  range: { from: bigint; to: bigint },
  deadLettered: ReadonlySet<string>,
  decoder: EventDecoder,
  bounds: MessageBounds = MESSAGE_BOUNDS,
): Promise<PartitionSlice> {
  const slice: PartitionSlice = { events: [], unavailable: null, skipped: [] }
  if (range.to < range.from) return slice
  const marks = (await readWatermarks(kafka, topic, bounds.timeoutMs))?.find((m) => m.partition === partition)
  const low = marks?.low ?? 0n
  const high = marks?.high ?? 0n
  const from = range.from < low ? low : range.from
  const to = range.to >= high ? high - 1n : range.to
  const problems: string[] = []
  if (range.from < low) problems.push(`offsets from ${range.from} lie below the partition's log start ${low} (deleted from Kafka)`)
  if (range.to >= high) problems.push(`offsets up to ${range.to} lie beyond the partition's end ${high}`)
  const messages: KafkaMessage[] = []
  if (to >= from) {
    const complete = await readMessages(kafka, topic, [{ partition, from, to }], bounds, (_, m) => messages.push(m))
    if (!complete) problems.push(`the read stopped after ${bounds.maxMessages} messages`)
  }
  slice.unavailable = problems.length > 0 ? problems.join('; ') : null
  for (const message of messages) {
    const offset = BigInt(message.offset)
    if (deadLettered.has(`${topic}/${partition}@${offset}`)) {
      slice.skipped.push({ offset, why: 'dead-lettered' })
      continue
    }
    try {
      const replayed = message.headers?.[REPLAY_HEADER] !== undefined
      for (const entry of decoder.decode(topic, message, offset)) slice.events.push({ entry, replayed, timestampMs: Number(message.timestamp) })
    } catch (err) {
      slice.skipped.push({ offset, why: `not a valid event (${(err as Error).message.slice(0, 200)})` })
    }
  }
  return slice
}

/** The messages at exactly these offsets of one partition (absent offsets are missing from the map). */
export async function readMessagesAt(kafka: Kafka, topic: string, partition: number, offsets: readonly bigint[], bounds: MessageBounds = MESSAGE_BOUNDS): Promise<Map<bigint, KafkaMessage>> {
  const found = new Map<bigint, KafkaMessage>()
  if (offsets.length === 0) return found
  const marks = (await readWatermarks(kafka, topic, bounds.timeoutMs))?.find((m) => m.partition === partition)
  if (!marks) return found
  const wanted = new Set(offsets.filter((o) => o >= marks.low && o < marks.high))
  const ranges: MessageRange[] = []
  for (const o of [...wanted].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const last = ranges.at(-1)
    if (last && o === last.to + 1n) last.to = o
    else ranges.push({ partition, from: o, to: o })
  }
  await readMessages(kafka, topic, ranges, { ...bounds, maxMessages: Math.max(bounds.maxMessages, wanted.size) }, (_, m) => {
    const offset = BigInt(m.offset)
    if (wanted.has(offset)) found.set(offset, m)
  })
  return found
}

/** Every `<topic>/<partition>@<offset>` the dead-letter topic names for `sourceTopic`; complete false when the bound cut the read short. */
export async function readDeadLetteredSources(kafka: Kafka, deadLetterTopic: string, sourceTopic: string, bounds: MessageBounds): Promise<{ sources: Set<string>; complete: boolean }> {
  const marks = await readWatermarks(kafka, deadLetterTopic, bounds.timeoutMs)
  const sources = new Set<string>()
  if (marks === null) return { sources, complete: true }
  const prefix = `${sourceTopic}/`
  const complete = await readMessages(kafka, deadLetterTopic, marks.map((m) => ({ partition: m.partition, from: m.low, to: m.high - 1n })), bounds, (_, message) => {
    const raw = message.headers?.[DEAD_LETTER_SOURCE_HEADER]
    const value = Array.isArray(raw) ? raw[0] : raw
    const text = value === undefined ? '' : value.toString()
    if (text.startsWith(prefix) && text.length < 1024) sources.add(text)
  })
  return { sources, complete }
}
