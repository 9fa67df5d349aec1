import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { checkpointTopicOf, ensureCheckpointTopic, readCheckpointTopic } from '../../checkpoints/checkpoint-topic.js'
import { generateKeyFiles, loadSigningKey } from '../../checkpoints/keys.js'
import { createKafka, KafkaConnection } from '../../common/kafka.js'
import { createIngest } from '../../consumers/ingest.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { ensureTopics } from '../../consumers/topics.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { createLogger } from '../../common/logger.js'
import { freshTopic, TEST_BROKERS, testKafka, testLogger } from '../helpers/kafka.js'
import { startPrivateBroker } from '../helpers/private-broker.js'
import { openTestStore } from '../helpers/store.js'
import { thrown } from '../helpers/thrown.js'
import { testSigningKey, testSigningKeyFile, TRUSTED_WRITER } from '../helpers/producer-trust.js'

/** Not the shared broker's port (19092) nor outbox-delivery's private one (19192); the controller takes the next port. */
const FIRST_RUN_PORT = 19392

describe('a first run on a freshly formatted broker', () => {
  it('sets up topics as consume does right after the broker is up, with no CHECKPOINT_TOPIC_UNAVAILABLE ("does not host this topic-partition")', async () => {
    const broker = await startPrivateBroker(FIRST_RUN_PORT)
    const connection = KafkaConnection.parse({ brokers: broker.brokers, clientId: 'readtrail-first-run' })
    const kafka = createKafka(connection, testLogger)
    const topic = 'readtrail.access'

    // The first thing on the fresh broker: the event topics and the checkpoint topic created at once (two
    // readtrail processes starting together, or consume beside the demo). Before the fix this failed, in two
    // runs of two, with CHECKPOINT_TOPIC_UNAVAILABLE "cannot create it: This server does not host this topic-partition".
    const checkpointTopic = checkpointTopicOf(topic)
    await Promise.all([ensureTopics(kafka, { topic, partitions: 3 }), ensureCheckpointTopic(kafka, checkpointTopic)])
    expect(await readCheckpointTopic(kafka, checkpointTopic)).toMatchObject({ missing: false, entries: [] })

    // An application started before consume ever ran: the topic is named, with the command that creates it, in one log line.
    const notYet = 'readtrail.not-yet-created'
    const logged: string[] = []
    const appLogger = createLogger({ level: 'info' }, { write: (line: string) => void logged.push(line) })
    const early = await thrown(createAuditProducer({ kafka: connection, topic: notYet, service: 'first-run-app', signingKey: testSigningKey('first-run-app'), deliveryThread: 'worker' }, { logger: appLogger }))
    expect(early).toMatchObject({ code: 'KAFKA_TOPIC_MISSING', retriable: true })
    expect(logged.filter((l) => l.includes('KAFKA_TOPIC_MISSING'))).toHaveLength(1)
    expect((early as Error).message).toContain('readtrail consume')
    expect((early as Error).message).toContain(`kafka-topics.sh --bootstrap-server ${broker.brokers[0]} --create --topic ${notYet}`)

    // readtrail consume on it: ingest (the signer reads the checkpoint topic), a read, a checkpoint published.
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
      writer: { kafka: connection, topic, groupId, ...TRUSTED_WRITER },
      checkpoints: { key: loadSigningKey(keyPath), logPath: join(dir, 'checkpoints.jsonl'), topic: checkpointTopic, intervalMs: 3_600_000 },
    })
    deferCleanup(() => ingest.stop())
    await ingest.start()

    const producer = await createAuditProducer({ kafka: connection, topic, service: 'first-run-app', signingKey: testSigningKey('first-run-app'), deliveryThread: 'main' })
    deferCleanup(() => producer.close())
    const recorded = await producer.recordRead({ principal: { id: 'clerk.first' }, resource: { database: 'admissions', table: 'applicants' }, columns: ['id'], recordIds: ['1'] })
    expect(recorded.durability).toBe('acked')
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 60_000 })
    const signed = await ingest.signer.signNow()
    expect(signed.length).toBe(1)
    expect(ingest.stats().signer).toMatchObject({ pendingPublish: 0 })
  }, 240_000)
})

describe('an SDK embedded in an application', () => {
  it('writes nothing to the application\'s stdout or stderr when given no logger, even when its reads go to the outbox', async () => {
    const topic = await freshTopic(testKafka())
    const outboxDir = mkdtempSync(join(tmpdir(), 'readtrail-quiet-'))
    deferCleanup(() => rmSync(outboxDir, { recursive: true, force: true }))
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/quiet-sdk-app.ts', import.meta.url)), TEST_BROKERS[0]!, topic, outboxDir, testSigningKeyFile('quiet-app')], {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: 'done\n', stderr: '' })
  }, 120_000)
})
