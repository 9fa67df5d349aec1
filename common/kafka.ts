import kafkajs, { CompressionTypes, Kafka, logLevel, type LogEntry } from 'kafkajs'
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
