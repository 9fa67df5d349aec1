import type { Kafka, KafkaMessage } from 'kafkajs'
import { readMessages, readWatermarks, withAdmin } from '../common/kafka-read.js'
import { deadLetterSource, headerText, isClaimAbout, verifyDeadLetter, DEAD_LETTER_HEADERS } from './dead-letter-signature.js'

/** A message of the access topic the writer wants its own dead letter for. */
export interface DeadLetterWanted {
  topic: string
  partition: number
  message: KafkaMessage
}

export interface DeadLetterLookupBounds {
  /** @default 30000 */
  timeoutMs: number
  /** Most dead letters read. @default 1000000 */
  maxMessages: number
}

const LOOKUP_BOUNDS: Readonly<DeadLetterLookupBounds> = Object.freeze({ timeoutMs: 30_000, maxMessages: 1_000_000 })

/**
 * A dead letter is sent after its source was read, by the writer's clock;
 * the source's timestamp is its producer's. An hour covers the two clocks
 * disagreeing; the newest 100,000 dead letters are read as well, so a
 * producer clock far ahead narrows nothing.
 */
const CLOCK_SLACK_MS = 3_600_000
const NEWEST_ALWAYS_READ = 100_000n

/**
 * Which of `wanted` have a dead letter signed by `key` for exactly that
 * message (source, key and value) in `database`: the writer's proof, made
 * before it stored anything after them, that it did not store them. Returns
 * their sources (`<topic>/<partition>@<offset>`) and whether the read was
 * complete. Reads only the part of the dead-letter topic that can hold them:
 * from an hour before the oldest wanted message's timestamp (and at least
 * the newest 100,000 letters), bounded in time and in messages.
 */
export async function findOwnDeadLetters(
  kafka: Kafka,
  deadLetterTopic: string,
  wanted: readonly DeadLetterWanted[],
  trust: { keyId: string; database: string },
  bounds: DeadLetterLookupBounds = LOOKUP_BOUNDS,
): Promise<{ found: Set<string>; complete: boolean }> {
  const found = new Set<string>()
  if (wanted.length === 0) return { found, complete: true }
  const bySource = new Map(wanted.map((w) => [deadLetterSource(w.topic, w.partition, w.message.offset), w.message]))
  const marks = await readWatermarks(kafka, deadLetterTopic, bounds.timeoutMs)
  if (marks === null) return { found, complete: true }
  const oldest = Math.min(...wanted.map((w) => Number(w.message.timestamp)))
  const since = Number.isFinite(oldest) ? await offsetsSince(kafka, deadLetterTopic, oldest - CLOCK_SLACK_MS, bounds.timeoutMs) : new Map<number, bigint>()
  const ranges = marks.map((m) => {
    const byTime = since.get(m.partition) ?? m.high
    const byCount = m.high - NEWEST_ALWAYS_READ
    let from = byTime < byCount ? byTime : byCount
    if (from < m.low) from = m.low
    return { partition: m.partition, from, to: m.high - 1n }
  })
  const complete = await readMessages(kafka, deadLetterTopic, ranges, bounds, (_, letter) => {
    const source = headerText(letter.headers, DEAD_LETTER_HEADERS.source)
    const message = source === undefined ? undefined : bySource.get(source)
    if (!message || found.has(source!)) return
    const verdict = verifyDeadLetter(letter, trust.keyId, trust.database)
    if (verdict.ok && isClaimAbout(verdict.claim, message)) found.add(source!)
  })
  return { found, complete }
}

/** Per partition, the first offset whose timestamp is at or after `timestampMs` (the high watermark when none is). */
async function offsetsSince(kafka: Kafka, topic: string, timestampMs: number, timeoutMs: number): Promise<Map<number, bigint>> {
  const at = Math.max(0, Math.floor(timestampMs))
  const offsets = await withAdmin(kafka, Date.now() + timeoutMs, `finding offsets of ${topic} by time`, (admin) => admin.fetchTopicOffsetsByTimestamp(topic, at))
  return new Map(offsets.filter((o) => BigInt(o.offset) >= 0n).map((o) => [o.partition, BigInt(o.offset)]))
}
