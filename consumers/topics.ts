import type { Admin, Kafka } from 'kafkajs'
import { ReadtrailError } from '../common/errors.js'
import { createTopicsAndWait, EVENT_TOPIC_DEFAULTS, TOPIC_SETTLE_TIMEOUT_MS } from '../common/kafka.js'
import type { DeadLetterTopicLimits } from './dead-letter-record.js'
import { SIDE_KINDS, sideTopic } from '../schemas/side-batch.js'

export interface TopicPlan {
  /** Replicas per partition; 1 on a single broker, 3 in production. @default 1 */
  replicationFactor?: number
  topic: string
  /** Every partition is one hash chain. @default 3 */
  partitions?: number
  /** Dead-letter topic; @default `<topic>.dlq` */
  deadLetterTopic?: string
  /** Also the side streams' topics, `<topic>.db-audit` and `<topic>.alerts` (one partition each). @default false */
  sideStreams?: boolean
}

/** max.message.bytes of the event topic readtrail creates. @default 4 MiB */
export const EVENT_MAX_MESSAGE_BYTES = EVENT_TOPIC_DEFAULTS.maxMessageBytes

/**
 * How much larger the dead-letter topic's max.message.bytes is than the
 * event topic's: a message just under the event topic's limit must still
 * fit with the dead-letter headers (error text up to 4000 characters,
 * source, signature, hashes). @default 1 MiB
 */
export const DEAD_LETTER_HEADROOM_BYTES = 1024 * 1024

/** What the broker allows when a topic says nothing (message.max.bytes' default). */
const BROKER_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588

export function deadLetterTopicOf(plan: TopicPlan): string {
  return plan.deadLetterTopic ?? `${plan.topic}.dlq`
}

/** kafkajs ConfigResourceTypes.TOPIC (not a named export under ESM). */
const TOPIC_RESOURCE = 2

/** A topic's max.message.bytes as the broker reports it; null when it cannot say. */
export async function readMaxMessageBytes(admin: Admin, topic: string): Promise<number | null> {
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ['max.message.bytes'] }] })
  const value = Number(described.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue)
  return Number.isSafeInteger(value) && value > 0 ? value : null
}

/**
 * The dead-letter topic's partition count and max.message.bytes, as the
 * chain writer sizes and places its letters by them. A limit the broker
 * does not report is taken as the broker's default: letters that may not
 * fit it are shortened rather than refused.
 */
export async function readDeadLetterTopicLimits(admin: Admin, topic: string): Promise<DeadLetterTopicLimits> {
  const [meta, max] = await Promise.all([admin.fetchTopicMetadata({ topics: [topic] }), readMaxMessageBytes(admin, topic).catch(() => null)])
  const partitions = meta.topics[0]?.partitions.length ?? 1
  return { partitions: Math.max(1, partitions), maxMessageBytes: max ?? BROKER_DEFAULT_MAX_MESSAGE_BYTES }
}

/**
 * Creates the event topic and its dead-letter topic if missing (idempotent).
 * Partitions are the unit of ordering and of chaining, so they are explicit
 * rather than left to the broker's auto-create defaults. The dead-letter
 * topic accepts DEAD_LETTER_HEADROOM_BYTES more than the event topic (as it
 * is, when it exists already), so a copy of any message the event topic
 * took fits with its headers. An existing dead-letter topic is left as it
 * is (kafkajs can only replace a topic's whole configuration); the writer
 * reads its limit and shortens the letters that would not fit.
 */
export async function ensureTopics(kafka: Kafka, plan: TopicPlan, timeoutMs = TOPIC_SETTLE_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const admin = kafka.admin()
  try {
    await admin.connect()
    const existing = new Set(await admin.listTopics())
    const replicationFactor = plan.replicationFactor ?? 1
    const wanted: { topic: string; numPartitions: number; maxMessageBytes: number }[] = []
    if (!existing.has(plan.topic)) wanted.push({ topic: plan.topic, numPartitions: plan.partitions ?? EVENT_TOPIC_DEFAULTS.partitions, maxMessageBytes: EVENT_MAX_MESSAGE_BYTES })
    const dlq = deadLetterTopicOf(plan)
    if (!existing.has(dlq)) {
      const eventMax = existing.has(plan.topic) ? ((await readMaxMessageBytes(admin, plan.topic).catch(() => null)) ?? EVENT_MAX_MESSAGE_BYTES) : EVENT_MAX_MESSAGE_BYTES
      wanted.push({ topic: dlq, numPartitions: 1, maxMessageBytes: eventMax + DEAD_LETTER_HEADROOM_BYTES })
    }
    if (plan.sideStreams) {
      for (const kind of SIDE_KINDS) {
        const side = sideTopic(plan.topic, kind)
        if (!existing.has(side)) wanted.push({ topic: side, numPartitions: 1, maxMessageBytes: EVENT_MAX_MESSAGE_BYTES })
      }
    }
    // On a freshly formatted broker the new topics answer "does not host this topic-partition" for a moment: waited out, up to the deadline.
    await createTopicsAndWait(
      admin,
      wanted.map((t) => ({
        topic: t.topic,
        numPartitions: t.numPartitions,
        replicationFactor,
        configEntries: [{ name: 'max.message.bytes', value: String(t.maxMessageBytes) }],
      })),
      deadline,
    )
  } catch (cause) {
    throw new ReadtrailError('KAFKA_UNAVAILABLE', `could not create topics ${plan.topic}: ${(cause as Error).message}`, { cause })
  } finally {
    await admin.disconnect().catch(() => {})
  }
}
