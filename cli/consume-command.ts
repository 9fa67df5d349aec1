import { createKafka } from '../common/kafka.js'
import type { Logger } from '../common/logger.js'
import { createChainWriter } from '../consumers/chain-writer.js'
import { ChainWriterConfig } from '../consumers/config.js'
import { ensureTopics } from '../consumers/topics.js'
import { loadSchemaRegistry } from '../schemas/registry.js'
import type { AppConfig } from './config.js'
import { serveOwnerApi } from './owner-api.js'
import { openAppStore } from './runtime.js'

/**
 * `readtrail consume`: runs the chain writer until SIGINT/SIGTERM. It owns
 * the embedded store while it runs and answers other readtrail processes'
 * queries through its socket.
 */
export async function consumeCommand(config: AppConfig, logger: Logger): Promise<number> {
  const store = await openAppStore(config, 'readtrail consume', logger)
  try {
    const kafka = createKafka(config.kafka, logger)
    await ensureTopics(kafka, { topic: config.topic, partitions: config.partitions })
    const writer = createChainWriter({
      config: ChainWriterConfig.parse({ kafka: config.kafka, topic: config.topic, groupId: config.groupId, sessionTimeoutMs: config.sessionTimeoutMs }),
      kafka,
      store,
      registry: loadSchemaRegistry(),
      logger,
    })
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await writer.start()
    const stopServing = store.kind === 'embedded' ? await serveOwnerApi(store, config.store.dataDir, logger) : async () => {}
    const progress = setInterval(() => logger.info({ ...writer.stats() }, 'chain writer progress'), 10_000)
    await stopped
    clearInterval(progress)
    await stopServing()
    await writer.stop()
    return 0
  } finally {
    await store.close()
  }
}
