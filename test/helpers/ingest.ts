import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kafka } from 'kafkajs'
import { afterAll } from 'vitest'
import { checkpointTopicOf } from '../../checkpoints/checkpoint-topic.js'
import { generateKeyFiles, loadSigningKey, type SigningKey } from '../../checkpoints/keys.js'
import { createIngest, type Ingest } from '../../consumers/ingest.js'
import type { Store } from '../../store/store.js'
import { testKafkaConnection, testLogger } from './kafka.js'
import { TRUSTED_WRITER } from './producer-trust.js'

/** One deployment's signing material: a key, a checkpoint file and a checkpoint topic, shared by every ingest of a test. */
export interface TestDeployment {
  key: SigningKey
  publicKeyPath: string
  logPath: string
  checkpointTopic: string
  /**
   * Starts ingest (writer and signer, as `readtrail consume` does) on `topic`
   * under `groupId`, trusting every test service's producer key; with
   * `allowUnsigned` it also stores wire-1 messages, as a migrating deployment does.
   */
  ingest(options: { store: Store; topic: string; groupId: string; intervalMs?: number; sessionTimeoutMs?: number; allowUnsigned?: boolean; sideStreams?: boolean }): Promise<Ingest>
}

/**
 * A deployment for a test: a fresh key pair and checkpoint file in a temp
 * directory, the checkpoint topic of `topic`; everything is removed, and every
 * ingest started here stopped, when the file's tests end.
 */
export function testDeployment(kafka: Kafka, topic: string): TestDeployment {
  const dir = mkdtempSync(join(tmpdir(), 'readtrail-ingest-'))
  const keyPath = join(dir, 'keys', 'checkpoint.key')
  generateKeyFiles(keyPath)
  const key = loadSigningKey(keyPath)
  const checkpointTopic = checkpointTopicOf(topic)
  const started: Ingest[] = []
  afterAll(async () => {
    for (const i of started.reverse()) await i.stop().catch(() => {})
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [checkpointTopic] }).catch(() => {})
    await admin.disconnect()
    rmSync(dir, { recursive: true, force: true })
  })
  const logPath = join(dir, 'checkpoints.jsonl')
  return {
    key,
    publicKeyPath: `${keyPath}.pub`,
    logPath,
    checkpointTopic,
    async ingest({ store, topic: t, groupId, intervalMs, sessionTimeoutMs, allowUnsigned, sideStreams }) {
      const ingest = createIngest({
        kafka,
        store,
        logger: testLogger,
        writer: { kafka: testKafkaConnection(), topic: t, groupId, ...TRUSTED_WRITER, ...(allowUnsigned ? { allowUnsigned } : {}), ...(sessionTimeoutMs ? { sessionTimeoutMs } : {}) },
        checkpoints: { key, logPath, topic: checkpointTopic, intervalMs: intervalMs ?? 3_600_000 },
        ...(sideStreams ? { sideStreams } : {}),
      })
      started.push(ingest)
      await ingest.start()
      return ingest
    },
  }
}
