import { existsSync } from 'node:fs'
import { createKafka } from '../common/kafka.js'
import type { Logger } from '../common/logger.js'
import { createIngest } from '../consumers/ingest.js'
import { ensureTopics } from '../consumers/topics.js'
import type { AppConfig } from './config.js'
import { serveOwnerApi } from './owner-api.js'
import { openAppStore } from './runtime.js'
import { loadSigningKey } from '../checkpoints/keys.js'

/**
 * `readtrail consume`: runs ingest (the chain writer and the checkpoint
 * signer, consumers/ingest.ts) until SIGINT/SIGTERM, signing each chain's
 * head at least every checkpoint interval while it grows and once more on
 * shutdown. It owns the embedded store while it runs and answers other
 * readtrail processes' queries through its socket. It stops with the error
 * if the checkpoint log cannot be written (no unsigned run) or if stored rows
 * are not vouched for by Kafka (CHAIN_UNTRUSTED: nothing is signed over them).
 */
export async function consumeCommand(config: AppConfig, logger: Logger): Promise<number> {
  // The key first: a missing or unreadable key stops here, before anything is
  // stored, rather than allowing an unsigned run.
  const key = loadSigningKey(config.checkpoints.keyPath)
  const store = await openAppStore(config, 'readtrail consume', logger)
  try {
    const kafka = createKafka(config.kafka, logger)
    await ensureTopics(kafka, { topic: config.topic, partitions: config.partitions, sideStreams: true })
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    const ingest = createIngest({
      kafka,
      store,
      logger,
      writer: {
        kafka: config.kafka,
        topic: config.topic,
        groupId: config.groupId,
        sessionTimeoutMs: config.sessionTimeoutMs,
        fetchLingerMs: config.fetchLingerMs,
        // With unsigned producers allowed and no file yet (a migration's first step), the writer trusts no key rather than failing.
        ...(config.producers.allowUnsigned && !existsSync(config.producers.trustedPath) ? {} : { trustedProducers: config.producers.trustedPath }),
        allowUnsigned: config.producers.allowUnsigned,
      },
      checkpoints: { key, logPath: config.checkpoints.logPath, topic: config.checkpoints.topic, intervalMs: config.checkpoints.intervalMs },
      sideStreams: true,
    })
    await ingest.start()
    const stopServing = store.kind === 'embedded' ? await serveOwnerApi(store, config.store.dataDir, logger, { key }) : async () => {}
    // Progress is the chain writer's own line, logged only while events arrive.
    const fatal = await Promise.race([stopped.then(() => undefined), ingest.failed])
    await stopServing()
    await ingest.stop()
    if (fatal !== undefined) throw fatal
    return 0
  } finally {
    await store.close()
  }
}
