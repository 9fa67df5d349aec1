import kafkajs, { CompressionTypes, Kafka, logLevel, type LogEntry } from 'kafkajs'
import createSnappyCodec from 'kafkajs-snappy'
import { z } from 'zod'
import type { Logger } from './logger.js'

// Snappy (pure JS) for both sides: producers compress with it by default, and
// the chain writer must read whatever codec a producer chose.
// (CompressionCodecs is not a named export Node's ESM loader can see.)
kafkajs.CompressionCodecs[CompressionTypes.Snappy] = createSnappyCodec

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

/** kafkajs logs through the component's pino child, at most at `warn` unless debugging. */
export function createKafka(connection: KafkaConnection, logger: Logger): Kafka {
  const log = logger.child({ component: 'kafkajs' })
  return new Kafka({
    brokers: [...connection.brokers],
    clientId: connection.clientId,
    connectionTimeout: connection.connectionTimeoutMs,
    logLevel: log.isLevelEnabled('debug') ? logLevel.INFO : logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...extra } = entry.log
      const level = entry.level === logLevel.ERROR ? 'error' : entry.level === logLevel.WARN ? 'warn' : 'debug'
      log[level]({ namespace: entry.namespace, ...extra }, message)
    },
  })
}
