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
