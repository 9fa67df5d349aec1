import { z } from 'zod'
import { KafkaConnection } from '../common/kafka.js'

/** Options of the chain writer (`readtrail consume`). */
export const ChainWriterConfig = z
  .object({
    kafka: KafkaConnection.default(() => KafkaConnection.parse({})),
    /** @default 'readtrail.access' */
    topic: z.string().min(1).default('readtrail.access'),
    /** @default `<topic>.dlq` */
    deadLetterTopic: z.string().min(1).optional(),
    /** @default 'readtrail-chain-writer' */
    groupId: z.string().min(1).default('readtrail-chain-writer'),
    /** Partitions (chains) written in parallel. @default 3 */
    partitionsConsumedConcurrently: z.number().int().min(1).max(64).default(3),
    /** Upper bound of one fetch per partition, hence of one insert. @default 4 MiB */
    maxBytesPerPartition: z.number().int().min(64 * 1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
    /**
     * How long the broker may hold a fetch for a fuller batch when fewer than
     * maxBytesPerPartition bytes wait. Each insert costs the store a new part
     * (with its projections and indexes) whatever its size, so under a steady
     * trickle a writer that stores every few events at once spends most of
     * its CPU on inserts (250 ms cut it by a quarter at 2,000 reads/s,
     * bench/README.md); a backlog is fetched at once either way. The price:
     * up to this long between a read and its row, and inserts further apart
     * in time, which `readtrail repair` must search between to rebuild a
     * whole deleted insert (it gives up past 2M candidate times). 0: every
     * fetch returns as soon as any event waits. @default 0
     */
    fetchLingerMs: z.number().int().min(0).max(5000).default(0),
    /**
     * How long the group waits for a silent writer before giving its
     * partitions to another (the failover time after a crash). @default 30000
     */
    sessionTimeoutMs: z.number().int().min(6000).max(300_000).default(30_000),
    /** Read from the earliest offset when the group has none committed. @default true */
    fromBeginning: z.boolean().default(true),
    /**
     * The trusted-producers file (`readtrail keys generate --producer`): the
     * services' public keys. A batch is stored only if one of them signed it,
     * for this topic, as events of that key's service.
     */
    trustedProducers: z.string().min(1).optional(),
    /**
     * Also store unsigned messages: wire-1 events and batches from producers
     * without a signingKey. Anyone who can write to the topic can then frame
     * any principal; for migrating from unsigned producers only. @default false
     */
    allowUnsigned: z.boolean().default(false),
  })
  .strict()
  // Checked here, not per message: a writer that could store nothing would only fill the dead-letter topic.
  .refine((c) => c.trustedProducers !== undefined || c.allowUnsigned, {
    message: 'set trustedProducers (the file `readtrail keys generate --producer <service>` writes), or allowUnsigned while migrating from unsigned producers: with neither, every message would be refused',
    path: ['trustedProducers'],
  })

export type ChainWriterConfig = z.output<typeof ChainWriterConfig>
export type ChainWriterConfigInput = z.input<typeof ChainWriterConfig>
