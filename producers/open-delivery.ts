import { CompressionTypes, type Kafka } from 'kafkajs'
import { registerSnappyCodec } from '../common/kafka.js'
import { componentLogger, type Logger } from '../common/logger.js'
import type { AuditProducerConfig } from './config.js'
import { createDelivery, type Delivery } from './delivery.js'
import { openOutbox } from './outbox/outbox.js'

/**
 * The delivery a producer's config asks for: its outbox opened (and locked)
 * first, then the Kafka path. `logger` is the application's (root) logger:
 * the outbox and the delivery each bind their own component on it.
 */
export async function openDelivery(config: Pick<AuditProducerConfig, 'kafka' | 'topic' | 'ackTimeoutMs' | 'compression' | 'maxBatchMessages' | 'maxBatchBytes' | 'outbox'>, kafka: Kafka, logger: Logger): Promise<Delivery> {
  // Asked for by this configuration, so the SDK fills kafkajs's codec table only then (and only its empty Snappy slot).
  if (config.compression === 'snappy') registerSnappyCodec()
  const outbox = config.outbox
    ? await openOutbox({ dir: config.outbox.dir, maxBytes: config.outbox.maxBytes, segmentBytes: config.outbox.segmentBytes }, { logger })
    : undefined
  return createDelivery({
    kafka,
    brokers: config.kafka.brokers,
    topic: config.topic,
    ackTimeoutMs: config.ackTimeoutMs,
    compression: { snappy: CompressionTypes.Snappy, gzip: CompressionTypes.GZIP, none: CompressionTypes.None }[config.compression],
    maxBatchMessages: config.maxBatchMessages,
    maxBatchBytes: config.maxBatchBytes,
    outbox,
    sendDeadlineMs: config.outbox?.sendDeadlineMs ?? config.ackTimeoutMs,
    logger: componentLogger(logger, 'audit-producer'),
  })
}
