import { KeyObject } from 'node:crypto'
import { z } from 'zod'
import { KafkaConnection } from '../common/kafka.js'

/** Options of createAuditProducer, validated once and frozen. */
export const AuditProducerConfig = z
  .object({
    kafka: KafkaConnection.default(() => KafkaConnection.parse({ clientId: 'readtrail-producer' })),
    /** @default 'readtrail.access' */
    topic: z.string().min(1).default('readtrail.access'),
    /** Name of the application recording reads. */
    service: z.string().min(1).max(256),
    /** @default 'production' */
    environment: z.string().min(1).max(256).default('production'),
    /**
     * Identifies this producer instance in every event; with producer_seq it
     * lets verification find events that never arrived. @default `<service>:<random>`
     */
    producerId: z.string().min(1).max(256).optional(),
    /** Key for HMAC-SHA256 of session ids (at least 32 bytes). Required to record sessionId. */
    sessionHashKey: z
      .union([z.string(), z.instanceof(Buffer)])
      .refine((k) => Buffer.byteLength(k) >= 32, 'must be at least 32 bytes')
      // A private copy: a caller that later zeroes or reuses its buffer must
      // not change the key this producer hashes with.
      .transform((k) => Buffer.from(k))
      .optional(),
    /**
     * This service's Ed25519 signing key (`readtrail keys generate --producer
     * <service>`): a path to its PKCS#8 PEM file (0600, owned by this user)
     * or a private KeyObject. Every batch is signed with it; the chain writer
     * refuses batches no trusted key signed. Without it batches go unsigned,
     * which a writer accepts only when told to (`allowUnsigned`, for migration).
     */
    // KeyObject's constructor is private: zod's instanceof cannot name it.
    signingKey: z.union([z.string().min(1), z.custom<KeyObject>((v) => v instanceof KeyObject, 'must be a path or a private KeyObject')]).optional(),
    /**
     * 3: signed batches, every read one producer has ready in one message,
     * each event carrying the server's connection id and statement digest.
     * 2: the same batches without those two fields, for chain writers not
     * upgraded yet (a writer refuses a batch version it does not know).
     * 1: one unsigned event per message, for writers older still. @default 3
     */
    wireVersion: z.union([z.literal(1), z.literal(2), z.literal(3)]).default(3),
    /**
     * Encoded events waiting for the broker, in bytes. Past it a read is not
     * queued: PRODUCER_OVERLOADED, which a fail-open table counts as
     * unrecorded and a fail-closed table refuses. @default 67108864 (64 MiB)
     */
    maxQueuedBytes: z.number().int().min(64 * 1024).max(4 * 1024 ** 3).default(64 * 1024 * 1024),
    /** How the SQL passed as `query` is lexed when literals are removed. @default 'postgres' */
    sqlDialect: z.enum(['postgres', 'mysql']).default('postgres'),
    /**
     * Extra wait for other reads to share a Kafka request. 0 sends at once;
     * reads arriving while a request is in flight still share the next one,
     * so batching follows load without adding latency. @default 0
     */
    lingerMs: z.number().min(0).max(1000).default(0),
    /** Most events in one Kafka request (wire 1) or one batch (wire 2). @default 5000 */
    maxBatchMessages: z.number().int().min(1).max(100_000).default(5000),
    /** Most encoded bytes in one Kafka request (keep under the topic's max.message.bytes). @default 900000 */
    maxBatchBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(900_000),
    /** Largest message (a batch, on wire 2) before a read is split into parts (keep under the topic's max.message.bytes). @default 900000 */
    maxMessageBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(900_000),
    /**
     * Kafka batch compression. None by default: the codecs kafkajs can use
     * run in JavaScript on the application's thread (snappy ~1.8 µs per
     * point read in bench/pg-hook.ts), the broker decompresses every batch
     * again to validate it, and the writer once more to read it, while
     * events of UUIDs, hashes and record ids shrink little. Snappy or gzip
     * for a broker across a slow or metered link. @default 'none'
     */
    compression: z.enum(['snappy', 'gzip', 'none']).default('none'),
    /**
     * Where kafkajs and the outbox run. `main`: the caller's thread. `worker`:
     * a thread of their own, so the application's event loop keeps only
     * validation and Avro encoding of each read (needs a spare core to pay
     * off: on the 2-core bench machine both measured the same, see
     * bench/README.md). A shared Kafka client passed in always means `main`.
     * @default 'main'
     */
    deliveryThread: z.enum(['main', 'worker']).default('main'),
    /** Broker acknowledgement deadline for one request. @default 30000 */
    ackTimeoutMs: z.number().int().min(100).max(300_000).default(30_000),
    /**
     * A durable local outbox: events the broker does not acknowledge within
     * `sendDeadlineMs` are fsync'd here and replayed in order once it is
     * back; a restart replays what the previous process left. One process
     * per directory. Without it, an unacknowledged read rejects (PUBLISH_FAILED).
     */
    outbox: z
      .object({
        dir: z.string().min(1),
        /** Bound on undelivered bytes; beyond it appends fail with OUTBOX_FULL. @default 268435456 (256 MiB) */
        maxBytes: z.number().int().min(4096).max(1024 ** 4).default(256 * 1024 * 1024),
        /** @default 16777216 (16 MiB) */
        segmentBytes: z.number().int().min(4096).max(1024 ** 3).default(16 * 1024 * 1024),
        /** A send not acknowledged within this goes to the outbox. @default 1000 */
        sendDeadlineMs: z.number().int().min(10).max(300_000).default(1000),
      })
      .strict()
      .optional(),
  })
  .strict()

export type AuditProducerConfig = z.output<typeof AuditProducerConfig>
export type AuditProducerConfigInput = z.input<typeof AuditProducerConfig>

/**
 * Fewer distinct byte values than this in a sessionHashKey reads as a
 * placeholder (all zeros, `'x'.repeat(32)`, a short pattern repeated): a
 * random 32-byte key has about 30, a random hex or base64 text key 16 or
 * more. Anyone who guesses such a key can hash candidate session ids and
 * link a session hash back to its session.
 */
const MIN_DISTINCT_KEY_BYTES = 8

/**
 * Why a sessionHashKey looks unfit, or undefined. A warning, not a refusal:
 * length is the only rule the schema enforces (and tests and benches use
 * fixed keys on purpose), but a production deployment with a constant key
 * should hear about it at start-up, once.
 */
export function weakSessionKeyReason(key: Buffer | undefined): string | undefined {
  if (key === undefined) return undefined
  const distinct = new Set(key).size
  if (key.every((b) => b === 0)) return 'it is all zero bytes'
  if (distinct < MIN_DISTINCT_KEY_BYTES) return `it has only ${distinct} distinct byte value${distinct === 1 ? '' : 's'} (a random key of ${key.length} bytes has many more)`
  return undefined
}
