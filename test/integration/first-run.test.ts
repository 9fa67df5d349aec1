import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkpointTopicOf } from '../../checkpoints/checkpoint-topic.js'
import { generateKeyFiles, loadSigningKey } from '../../checkpoints/keys.js'
import { createKafka, KafkaConnection } from '../../common/kafka.js'
import { createIngest } from '../../consumers/ingest.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { ensureTopics } from '../../consumers/topics.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { testLogger } from '../helpers/kafka.js'
import { startPrivateBroker } from '../helpers/private-broker.js'
import { openTestStore } from '../helpers/store.js'
import { thrown } from '../helpers/thrown.js'

/** Not the shared broker's port (19092) nor outbox-delivery's private one (19192); the controller takes the next port. */
const FIRST_RUN_PORT = 19392

describe('a first run on a freshly formatted broker', () => {
  it('sets up topics as consume does right after the broker is up, with no CHECKPOINT_TOPIC_UNAVAILABLE ("does not host this topic-partition")', async () => {
    const broker = await startPrivateBroker(FIRST_RUN_PORT)
    const connection = KafkaConnection.parse({ brokers: broker.brokers, clientId: 'readtrail-first-run' })
    const kafka = createKafka(connection, testLogger)
    const topic = 'readtrail.access'

    // An application started before consume ever ran: the topic is named, with the command that creates it.
    const early = await thrown(createAuditProducer({ kafka: connection, topic, service: 'first-run-app', deliveryThread: 'worker' }))
    expect(early).toMatchObject({ code: 'KAFKA_TOPIC_MISSING', retriable: true })
    expect((early as Error).message).toContain('readtrail consume')
    expect((early as Error).message).toContain(`kafka-topics.sh --bootstrap-server ${broker.brokers[0]} --create --topic ${topic}`)

    // readtrail consume: the event topics, then ingest (the signer creates and reads the checkpoint topic).
    await ensureTopics(kafka, { topic, partitions: 3 })
    const dir = mkdtempSync(join(tmpdir(), 'readtrail-first-run-'))
    deferCleanup(() => rmSync(dir, { recursive: true, force: true }))
    const keyPath = join(dir, 'keys', 'checkpoint.key')
    generateKeyFiles(keyPath)
    const store = await openTestStore()
    const groupId = 'readtrail-first-run'
    const ingest = createIngest({
      kafka,
      store,
      logger: testLogger,
      writer: { kafka: connection, topic, groupId },
      checkpoints: { key: loadSigningKey(keyPath), logPath: join(dir, 'checkpoints.jsonl'), topic: checkpointTopicOf(topic), intervalMs: 3_600_000 },
    })
    deferCleanup(() => ingest.stop())
    await ingest.start()

    const producer = await createAuditProducer({ kafka: connection, topic, service: 'first-run-app', deliveryThread: 'main' })
    deferCleanup(() => producer.close())
    const recorded = await producer.recordRead({ principal: { id: 'clerk.first' }, resource: { database: 'admissions', table: 'applicants' }, columns: ['id'], recordIds: ['1'] })
    expect(recorded.durability).toBe('acked')
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 60_000 })
    const signed = await ingest.signer.signNow()
    expect(signed.length).toBe(1)
    expect(ingest.stats().signer).toMatchObject({ pendingPublish: 0 })
  }, 240_000)
})
