import kafkajs, { CompressionTypes, Kafka, logLevel, type Admin, type ITopicConfig, type LogEntry } from 'kafkajs'
import createSnappyCodec from 'kafkajs-snappy'
import { z } from 'zod'
import { ReadtrailError } from './errors.js'
import { componentLogger, type Logger } from './logger.js'

// kafkajs keeps its codecs in one table for the whole process (and
// CompressionCodecs is not a named export Node's ESM loader can see). Read,
// never written, on import: the placeholder that throws "not implemented".
const SNAPPY_PLACEHOLDER = kafkajs.CompressionCodecs[CompressionTypes.Snappy]

/**
 * Registers Snappy (pure JS) in kafkajs's process-wide codec table, for the
 * places that need it: a producer configured to compress with it, and the
 * readers of events any producer wrote (the chain writer, readMessages).
 * Never on import, and never over a codec the host application registered:
 * an application that only imports readtrail keeps kafkajs as it was.
 */
export function registerSnappyCodec(): void {
  if (kafkajs.CompressionCodecs[CompressionTypes.Snappy] === SNAPPY_PLACEHOLDER) kafkajs.CompressionCodecs[CompressionTypes.Snappy] = createSnappyCodec
}

/**
 * The event topic readtrail creates (consumers/topics.ts): what the command
 * a missing topic's error prints must match. @default 3 partitions, max.message.bytes 4 MiB
 */
export const EVENT_TOPIC_DEFAULTS = Object.freeze({ partitions: 3, maxMessageBytes: 4 * 1024 * 1024 })

/** kafkajs error types anywhere in an error and what it wraps (retries, aggregates, causes). */
export function kafkaErrorTypes(err: unknown): Set<string> {
  const types = new Set<string>()
  const seen = new Set<unknown>()
  const walk = (e: unknown) => {
    if (typeof e !== 'object' || e === null || seen.has(e)) return
    seen.add(e)
    const o = e as { type?: unknown; originalError?: unknown; cause?: unknown; errors?: unknown }
    if (typeof o.type === 'string') types.add(o.type)
    walk(o.originalError)
    walk(o.cause)
    if (Array.isArray(o.errors)) o.errors.forEach(walk)
  }
  walk(err)
  return types
}

/** Whether the broker answered that it has no such topic (or partition). */
export function isUnknownTopicError(err: unknown): boolean {
  return kafkaErrorTypes(err).has('UNKNOWN_TOPIC_OR_PARTITION')
}

/**
 * What a broker answers about a topic it has just created, or while it is
 * freshly formatted, until the topic's metadata and leaders have settled
 * (KRaft publishes them to the broker a moment after the controller
 * accepted the topic): the same request succeeds a little later.
 */
const SETTLING_TYPES = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_OR_FOLLOWER', 'NOT_LEADER_FOR_PARTITION', 'NOT_CONTROLLER'])

/** Whether an error is one a settling topic or a fresh broker gives (SETTLING_TYPES), anywhere in what it wraps. */
export function isSettlingError(err: unknown): boolean {
  for (const type of kafkaErrorTypes(err)) if (SETTLING_TYPES.has(type)) return true
  return false
}

/** How long topic set-up waits for a fresh topic (or a fresh broker) to settle. @default 60000 */
export const TOPIC_SETTLE_TIMEOUT_MS = 60_000

/**
 * Runs `work` again while it fails with a settling error (isSettlingError),
 * backing off from 100 ms to 1 s, until `deadline` (epoch ms); then, or on
 * any other error, throws what it threw.
 */
export async function retryWhileSettling<T>(work: () => Promise<T>, deadline: number): Promise<T> {
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await work()
    } catch (err) {
      if (!isSettlingError(err) || Date.now() + delay > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }
}

/**
 * Creates topics (those that exist already are left alone) and returns once
 * each one answers for every partition: a leader in its metadata and its
 * offsets served. kafkajs's own wait (waitForLeaders) gives up at the first
 * "does not host this topic-partition" a freshly formatted broker answers,
 * and a topic it reported created could still refuse the next request.
 */
export async function createTopicsAndWait(admin: Admin, topics: ITopicConfig[], deadline: number): Promise<void> {
  if (topics.length === 0) return
  await retryWhileSettling(() => admin.createTopics({ waitForLeaders: true, topics }), deadline)
  await waitForTopics(admin, topics.map((t) => t.topic), deadline)
}

/** Returns once every partition of each topic has a leader and serves its offsets (settling errors retried until `deadline`). */
export async function waitForTopics(admin: Admin, names: readonly string[], deadline: number): Promise<void> {
  await retryWhileSettling(async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [...names] })
    for (const name of names) {
      const partitions = topics.find((t) => t.name === name)?.partitions ?? []
      if (partitions.length === 0 || partitions.some((p) => p.leader < 0)) throw Object.assign(new Error(`topic ${name} has no leader yet`), { type: 'LEADER_NOT_AVAILABLE' })
      await admin.fetchTopicOffsets(name)
    }
  }, deadline)
}

/**
 * KAFKA_TOPIC_MISSING for an event topic, naming the two ways to create it:
 * readtrail consume (which creates the topic and its dead-letter topic), or
 * kafka-topics with the settings consume would use.
 */
export function topicMissingError(topic: string, brokers: readonly string[], cause?: unknown): ReadtrailError {
  const create = `kafka-topics.sh --bootstrap-server ${brokers[0] ?? '127.0.0.1:19092'} --create --topic ${topic} --partitions ${EVENT_TOPIC_DEFAULTS.partitions} --config max.message.bytes=${EVENT_TOPIC_DEFAULTS.maxMessageBytes}`
  return new ReadtrailError(
    'KAFKA_TOPIC_MISSING',
    `Kafka topic ${topic} does not exist on ${brokers.join(', ')}: start \`readtrail consume\` once (it creates the topic), or create it with: ${create}`,
    { cause, details: { topic, brokers: [...brokers], create } },
  )
}

/** The broker scripts/kafka.sh starts: 127.0.0.1 on READTRAIL_KAFKA_PORT (19092). */
export function defaultBrokers(env: NodeJS.ProcessEnv = process.env): string[] {
  return [`127.0.0.1:${env['READTRAIL_KAFKA_PORT'] ?? '19092'}`]
}

/** Where the broker is. @default brokers: defaultBrokers() */
export const KafkaConnection = z
  .object({
    brokers: z.array(z.string().regex(/^[^:\s]+:\d{1,5}$/, 'must be host:port')).min(1).default(() => defaultBrokers()),
    clientId: z.string().min(1).default('readtrail'),
    /** @default 10000 */
    connectionTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .strict()

export type KafkaConnection = z.output<typeof KafkaConnection>

/**
 * A kafkajs client whose own lines (connection errors, retries, coordinator
 * loading) go to `debug` of a `kafkajs` child: every failure kafkajs gives up
 * on reaches readtrail's caller as a rejected promise or a consumer crash,
 * and the caller says it once, in a sentence. kafkajs's debug lines need
 * `trace`.
 */
export function createKafka(connection: KafkaConnection, logger: Logger): Kafka {
  const log = componentLogger(logger, 'kafkajs')
  return new Kafka({
    brokers: [...connection.brokers],
    clientId: connection.clientId,
    connectionTimeout: connection.connectionTimeoutMs,
    logLevel: log.isLevelEnabled('trace') ? logLevel.DEBUG : log.isLevelEnabled('debug') ? logLevel.INFO : logLevel.NOTHING,
    logCreator: () => (entry: LogEntry) => {
      const { message, timestamp: _timestamp, logger: _logger, ...extra } = entry.log as LogEntry['log'] & { logger?: unknown }
      log.debug({ namespace: entry.namespace, kafkajs_level: entry.label, ...extra }, message)
    },
  })
}
