import { randomUUID } from 'node:crypto'
import { afterAll } from 'vitest'
import type { Kafka } from 'kafkajs'
import { createKafka, defaultBrokers, KafkaConnection } from '../../common/kafka.js'
import { createLogger } from '../../common/logger.js'
import { deadLetterTopicOf, ensureTopics } from '../../consumers/topics.js'

/** The broker scripts/kafka.sh started (scripts/test.sh starts it before integration tests). */
export const TEST_BROKERS = process.env['READTRAIL_KAFKA_BROKERS']?.split(',') ?? defaultBrokers()

export const testLogger = createLogger({ level: process.env['READTRAIL_LOG_LEVEL'] ?? 'warn' })

export function testKafkaConnection(): KafkaConnection {
  return KafkaConnection.parse({ brokers: TEST_BROKERS, clientId: `readtrail-test-${process.pid}` })
}

export function testKafka(): Kafka {
  return createKafka(testKafkaConnection(), testLogger)
}

/** A fresh topic (and its dead-letter topic), deleted when the file's tests end. */
export async function freshTopic(kafka: Kafka, partitions = 3): Promise<string> {
  const topic = `rt-test-${randomUUID().slice(0, 8)}`
  await ensureTopics(kafka, { topic, partitions })
  afterAll(async () => {
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [topic, deadLetterTopicOf({ topic })] }).catch(() => {})
    await admin.disconnect()
  })
  return topic
}

/** One dead letter as read back from `<topic>.dlq`: the refused message's bytes and the writer's headers (code, reason, source, signature). */
export interface ReadDeadLetter {
  value: Buffer | null
  headers: Record<string, string>
}

/** The first `count` dead letters of `topic` (its dead-letter topic read from the beginning); fails after 60 s with fewer. */
export async function readDeadLetters(kafka: Kafka, topic: string, count: number): Promise<ReadDeadLetter[]> {
  const dlq = deadLetterTopicOf({ topic })
  const consumer = kafka.consumer({ groupId: `${dlq}-reader-${randomUUID().slice(0, 8)}` })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [dlq], fromBeginning: true })
    const got: ReadDeadLetter[] = []
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} dead letters in ${dlq}`)), 60_000)
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push({ value: message.value, headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])) })
          if (got.length === count) {
            clearTimeout(timer)
            resolve()
          }
        },
      })
    })
    return got
  } finally {
    await consumer.disconnect()
  }
}
