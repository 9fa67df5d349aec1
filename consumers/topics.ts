import type { Kafka } from 'kafkajs'
import { ReadtrailError } from '../common/errors.js'

export interface TopicPlan {
  /** Replicas per partition; 1 on a single broker, 3 in production. @default 1 */
  replicationFactor?: number
  topic: string
  /** Every partition is one hash chain. @default 3 */
  partitions?: number
  /** Dead-letter topic; @default `<topic>.dlq` */
  deadLetterTopic?: string
}

export function deadLetterTopicOf(plan: TopicPlan): string {
  return plan.deadLetterTopic ?? `${plan.topic}.dlq`
}

/**
 * Creates the event topic and its dead-letter topic if missing (idempotent).
 * Partitions are the unit of ordering and of chaining, so they are explicit
 * rather than left to the broker's auto-create defaults.
 */
export async function ensureTopics(kafka: Kafka, plan: TopicPlan): Promise<void> {
  const admin = kafka.admin()
  try {
    await admin.connect()
    const existing = new Set(await admin.listTopics())
    const wanted = [
      { topic: plan.topic, numPartitions: plan.partitions ?? 3 },
      { topic: deadLetterTopicOf(plan), numPartitions: 1 },
    ].filter((t) => !existing.has(t.topic))
    if (wanted.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: wanted.map((t) => ({ ...t, replicationFactor: plan.replicationFactor ?? 1, configEntries: [{ name: 'max.message.bytes', value: String(4 * 1024 * 1024) }] })),
      })
    }
  } catch (cause) {
    throw new ReadtrailError('KAFKA_UNAVAILABLE', `could not create topics ${plan.topic}: ${(cause as Error).message}`, { cause, retriable: true })
  } finally {
    await admin.disconnect().catch(() => {})
  }
}
