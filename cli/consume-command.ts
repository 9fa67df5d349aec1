import { createKafka } from '../common/kafka.js'
import type { Logger } from '../common/logger.js'
import { createChainWriter } from '../consumers/chain-writer.js'
import { ChainWriterConfig } from '../consumers/config.js'
import { ensureTopics } from '../consumers/topics.js'
import { loadSchemaRegistry } from '../schemas/registry.js'
import type { AppConfig } from './config.js'
import { serveOwnerApi } from './owner-api.js'
import { openAppStore } from './runtime.js'
import { createCheckpointSigner } from '../checkpoints/signer.js'
import { loadSigningKey } from '../checkpoints/keys.js'

/**
 * `readtrail consume`: runs the chain writer until SIGINT/SIGTERM, signing
 * each chain's head at least every checkpoint interval while it grows and
 * once more on shutdown. It owns the embedded store while it runs and
 * answers other readtrail processes' queries through its socket. If the
 * checkpoint log cannot be written it stops: no unsigned run.
 */
export async function consumeCommand(config: AppConfig, logger: Logger): Promise<number> {
  // The key first: a missing or unreadable key stops here, before anything is
  // stored, rather than allowing an unsigned run.
  const key = loadSigningKey(config.checkpoints.keyPath)
  const store = await openAppStore(config, 'readtrail consume', logger)
  try {
    const kafka = createKafka(config.kafka, logger)
    await ensureTopics(kafka, { topic: config.topic, partitions: config.partitions })
    let fatal: unknown
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    let signerFailed: (err: unknown) => void = () => {}
    const failed = new Promise<void>((resolve) => {
      signerFailed = (err) => {
        fatal = err
        resolve()
      }
    })
    const signer = createCheckpointSigner({
      database: config.store.database,
      key,
      logPath: config.checkpoints.logPath,
      kafka,
      topic: config.checkpoints.topic,
      intervalMs: config.checkpoints.intervalMs,
      logger,
      onFatal: (err) => signerFailed(err),
    })
    await signer.start()
    const chainsWritten = new Set<string>()
    const writer = createChainWriter({
      config: ChainWriterConfig.parse({ kafka: config.kafka, topic: config.topic, groupId: config.groupId, sessionTimeoutMs: config.sessionTimeoutMs }),
      kafka,
      store,
      registry: loadSchemaRegistry(),
      logger,
      onChainHead: (head) => {
        chainsWritten.add(head.chainId)
        signer.noteHead(head)
      },
      // After a rebalance another writer may have signed a chain this one
      // wrote before: its next checkpoint continues from the topic's newest.
      onRebalance: () => chainsWritten.forEach((chainId) => signer.forgetChain(chainId)),
    })
    await writer.start()
    const stopServing = store.kind === 'embedded' ? await serveOwnerApi(store, config.store.dataDir, logger) : async () => {}
    const progress = setInterval(() => logger.info({ ...writer.stats() }, 'chain writer progress'), 10_000)
    await Promise.race([stopped, failed])
    clearInterval(progress)
    await stopServing()
    await writer.stop()
    // After the writer: the final checkpoint covers everything it stored.
    await signer.stop()
    if (fatal !== undefined) throw fatal
    return 0
  } finally {
    await store.close()
  }
}
