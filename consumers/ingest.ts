import type { Kafka } from 'kafkajs'
import { createCheckpointSigner, type CheckpointSigner, type CheckpointSignerStats } from '../checkpoints/signer.js'
import type { SigningKey } from '../checkpoints/keys.js'
import type { Logger } from '../common/logger.js'
import { loadSchemaRegistry, type SchemaRegistry } from '../schemas/registry.js'
import type { Store } from '../store/store.js'
import type { ChainCheckpoint, ChainTrust, ResumeLimits } from './chain-resume.js'
import { createChainWriter, type ChainWriterStats } from './chain-writer.js'
import { ChainWriterConfig, type ChainWriterConfigInput } from './config.js'
import { createAlertBatchCodec, createDbAuditBatchCodec, sideTopic } from '../schemas/side-batch.js'
import { ALERT_TABLE, DB_AUDIT_TABLE } from '../store/side-tables.js'
import { createSideChainWriter, type SideChainWriter, type SideChainWriterStats } from './side-chain-writer.js'
import { loadTrustedProducers } from './trusted-producers.js'

export interface IngestOptions {
  kafka: Kafka
  store: Store
  logger: Logger
  /** The chain writer's topic, group and fetch settings. */
  writer: ChainWriterConfigInput
  checkpoints: {
    key: SigningKey
    /** The append-only checkpoint file (primary copy). */
    logPath: string
    /** The Kafka copy. */
    topic: string
    /** Longest time between two checkpoints of a growing chain. @default 10000 */
    intervalMs?: number
  }
  /** @default loadSchemaRegistry() */
  registry?: SchemaRegistry
  resume?: ResumeLimits
  /** Clock for signed_at. @default () => new Date() */
  now?: () => Date
  /**
   * Also write the side streams of the topic (`<topic>.db-audit`,
   * `<topic>.alerts`) into their own chains, signed by the same signer.
   * Needs the writer's trustedProducers file. @default false
   */
  sideStreams?: boolean
}

export interface IngestStats {
  writer: ChainWriterStats
  signer: CheckpointSignerStats
  /** Per side stream ('db-audit', 'alert'), when they are written. */
  side?: Record<string, SideChainWriterStats>
}

/** The chain writer and the checkpoint signer, started and stopped as one. */
export interface Ingest {
  /** Starts the signer (reads both checkpoint copies), then the writer. */
  start(): Promise<void>
  /** Stops the writer, then the signer, whose final checkpoint covers everything stored. Idempotent. */
  stop(): Promise<void>
  /**
   * Resolves (never rejects) with the error that stopped ingest on its own:
   * rows Kafka does not vouch for (CHAIN_UNTRUSTED), or a checkpoint file
   * that cannot be written. The caller stops and reports it.
   */
  readonly failed: Promise<unknown>
  stats(): IngestStats
  /** For tests and tools that sign on demand. */
  readonly signer: CheckpointSigner
}

/**
 * The one place that assembles ingest, so the trust rule lives here once:
 * a chain resumes from its newest valid signed checkpoint (the higher of the
 * file and the topic, signatures checked), never from ClickHouse; the writer
 * re-derives the rows after it from Kafka before appending; only heads the
 * writer derived are signed; after a rebalance both forget what they knew.
 * The CLI, the demo, the benchmarks and the tests all start ingest here.
 */
export function createIngest(options: IngestOptions): Ingest {
  const { kafka, store, logger } = options
  let reportFailure: (err: unknown) => void = () => {}
  let failedOnce = false
  const failed = new Promise<unknown>((resolve) => {
    reportFailure = (err) => {
      if (failedOnce) return
      failedOnce = true
      resolve(err)
    }
  })
  const signer = createCheckpointSigner({
    database: store.database,
    key: options.checkpoints.key,
    logPath: options.checkpoints.logPath,
    kafka,
    topic: options.checkpoints.topic,
    logger,
    onFatal: reportFailure,
    ...(options.checkpoints.intervalMs !== undefined ? { intervalMs: options.checkpoints.intervalMs } : {}),
    ...(options.now ? { now: options.now } : {}),
  })
  const trust: ChainTrust = {
    async checkpointOf(chainId): Promise<ChainCheckpoint | null> {
      const cp = await signer.trustedCheckpoint(chainId)
      return cp ? { seq: cp.seq, hash: Buffer.from(cp.hash, 'hex'), lastOffset: BigInt(cp.kafka_offset) } : null
    },
  }
  const config = ChainWriterConfig.parse(options.writer)
  const chainsWritten = new Set<string>()
  const writer = createChainWriter({
    config,
    kafka,
    store,
    registry: options.registry ?? loadSchemaRegistry(),
    logger,
    trust,
    onChainHead: (head) => {
      chainsWritten.add(head.chainId)
      signer.noteHead(head)
    },
    // Another writer may have signed a chain this one wrote before: its next
    // take-up re-reads the topic, and the signer continues from there.
    onRebalance: () => chainsWritten.forEach((chainId) => signer.forgetChain(chainId)),
    onFatal: reportFailure,
    // Dead letters are signed with the checkpoint key: verify already trusts it, and only a dead letter it signed may explain an offset gap.
    deadLetterKey: options.checkpoints.key,
    ...(options.resume ? { resume: options.resume } : {}),
  })
  const sideWriters = new Map<string, SideChainWriter>()
  if (options.sideStreams) {
    if (config.trustedProducers === undefined) {
      logger.warn('side streams (database audit, alerts) NOT ingested: they are signed batches and no trusted-producers file is configured')
    } else {
      const trustedProducers = loadTrustedProducers(config.trustedProducers)
      const side = { kafka, store, logger, trustedProducers, trust, onFatal: reportFailure, onChainHead: (head: { chainId: string; seq: number; hash: Buffer; lastOffset: bigint }) => signer.noteHead(head) }
      sideWriters.set('db-audit', createSideChainWriter({ ...side, topic: sideTopic(config.topic, 'db-audit'), groupId: `${config.groupId}.db-audit`, codec: createDbAuditBatchCodec(), table: DB_AUDIT_TABLE }))
      sideWriters.set('alert', createSideChainWriter({ ...side, topic: sideTopic(config.topic, 'alert'), groupId: `${config.groupId}.alerts`, codec: createAlertBatchCodec(), table: ALERT_TABLE }))
    }
  }
  let state: 'new' | 'started' | 'stopped' = 'new'
  return {
    async start() {
      if (state !== 'new') return
      await signer.start()
      try {
        await writer.start()
        for (const side of sideWriters.values()) await side.start()
      } catch (err) {
        await writer.stop().catch(() => {})
        for (const side of sideWriters.values()) await side.stop().catch(() => {})
        await signer.stop().catch(() => {})
        throw err
      }
      state = 'started'
    },
    async stop() {
      if (state !== 'started') return
      state = 'stopped'
      await writer.stop()
      for (const side of sideWriters.values()) await side.stop()
      // After the writer: the final checkpoint covers everything it stored.
      await signer.stop()
    },
    failed,
    stats: () => ({ writer: writer.stats(), signer: signer.stats(), ...(sideWriters.size > 0 ? { side: Object.fromEntries([...sideWriters].map(([k, w]) => [k, w.stats()])) } : {}) }),
    signer,
  }
}
