import type { Kafka } from 'kafkajs'
import { readMessages, readWatermarks, withAdmin, type ReadBounds } from '../common/kafka-read.js'
import { DEAD_LETTER_HEADERS, headerText, parseDeadLetterSource, verifyDeadLetter, type DeadLetterVerdict } from '../consumers/dead-letter-signature.js'

// Re-exported: what verify reads from Kafka is one module's business.
export { readMessages, readWatermarks }
export type { MessageRange, ReadBounds } from '../common/kafka-read.js'

/** The access topic and the chain writer's consumer group: what the chains must agree with. */
export interface KafkaLog {
  kafka: Kafka
  topic: string
  groupId: string
}

/** One partition of the access topic as the broker reports it. */
export interface PartitionState {
  partition: number
  /** Log-start offset: messages below it are gone from Kafka. */
  low: bigint
  /** High watermark: the next offset the partition will give out. */
  high: bigint
  /** The group's committed offset (the next message the writer would read); null when none. */
  committed: bigint | null
}

/** Partitions of `topic` with their watermarks and the group's committed offsets; null when the topic does not exist. */
export async function readPartitionStates(log: KafkaLog, timeoutMs: number): Promise<PartitionState[] | null> {
  const deadline = Date.now() + timeoutMs
  return withAdmin(log.kafka, deadline, `reading partitions of ${log.topic}`, async (admin) => {
    if (!(await admin.listTopics()).includes(log.topic)) return null
    const ends = await admin.fetchTopicOffsets(log.topic)
    const committed = await admin.fetchOffsets({ groupId: log.groupId, topics: [log.topic] })
    const byPartition = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, p.offset]))
    return ends
      .map((e) => {
        const c = byPartition.get(e.partition)
        return { partition: e.partition, low: BigInt(e.low), high: BigInt(e.high), committed: c === undefined || BigInt(c) < 0n ? null : BigInt(c) }
      })
      .sort((a, b) => a.partition - b.partition)
  })
}

/** kafkajs ConfigResourceTypes.TOPIC (not a named export under ESM). */
const TOPIC_RESOURCE = 2

/** The named configs of a topic as the broker reports them (synonyms resolved by the broker). */
export async function readTopicConfig(kafka: Kafka, topic: string, names: readonly string[], timeoutMs: number): Promise<Map<string, string | null>> {
  return withAdmin(kafka, Date.now() + timeoutMs, `reading the configuration of ${topic}`, async (admin) => {
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: [...names] }] })
    return new Map((described.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]))
  })
}

/** One dead letter naming a source in the access topic, its signature checked. */
export interface DeadLetterRead {
  /** Where the dead letter itself is: `<dead-letter partition>@<offset>`. */
  at: string
  partition: number
  offset: bigint
  verdict: DeadLetterVerdict
}

/**
 * Every dead letter of `deadLetterTopic` whose `readtrail-source` names
 * `sourceTopic`, handed to `onLetter` one at a time with its signature
 * checked against the trusted checkpoint key id (the caller keeps only what
 * it needs: memory stays bounded by what it keeps, not by the topic).
 * `complete` is false when the topic held more than maxMessages, and
 * `missing` true when it does not exist.
 */
export async function readDeadLetters(
  kafka: Kafka,
  deadLetterTopic: string,
  sourceTopic: string,
  trust: { keyId: string; database: string },
  bounds: ReadBounds,
  onLetter: (letter: DeadLetterRead) => void,
): Promise<{ complete: boolean; missing: boolean }> {
  const marks = await readWatermarks(kafka, deadLetterTopic, bounds.timeoutMs)
  if (marks === null) return { complete: true, missing: true }
  const complete = await readMessages(
    kafka,
    deadLetterTopic,
    marks.map((m) => ({ partition: m.partition, from: m.low, to: m.high - 1n })),
    bounds,
    (partition, message) => {
      const text = headerText(message.headers, DEAD_LETTER_HEADERS.source)
      const source = text === undefined ? null : parseDeadLetterSource(text)
      if (source === null || source.topic !== sourceTopic) return
      onLetter({ at: `${partition}@${message.offset}`, partition: source.partition, offset: source.offset, verdict: verifyDeadLetter(message, trust.keyId, trust.database) })
    },
  )
  return { complete, missing: false }
}
