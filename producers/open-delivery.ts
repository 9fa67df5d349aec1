import { CompressionTypes, type Kafka } from 'kafkajs'
import type { Logger } from '../common/logger.js'
import type { AuditProducerConfig } from './config.js'
import { createDelivery, type Delivery } from './delivery.js'
import { openOutbox } from './outbox/outbox.js'

/** The delivery a producer's config asks for: its outbox opened (and locked) first, then the Kafka path. */
export async function openDelivery(config: Pick<AuditProducerConfig, 'topic' | 'ackTimeoutMs' | 'compression' | 'maxBatchMessages' | 'maxBatchBytes' | 'outbox'>, kafka: Kafka, logger: Logger): Promise<Delivery> {
  const outbox = config.outbox
    ? await openOutbox({ dir: config.outbox.dir, maxBytes: config.outbox.maxBytes, segmentBytes: config.outbox.segmentBytes }, { logger })
    : undefined
  return createDelivery({
    kafka,
    topic: config.topic,
    ackTimeoutMs: config.ackTimeoutMs,
    compression: { snappy: CompressionTypes.Snappy, gzip: CompressionTypes.GZIP, none: CompressionTypes.None }[config.compression],
    maxBatchMessages: config.maxBatchMessages,
    maxBatchBytes: config.maxBatchBytes,
    outbox,
    sendDeadlineMs: config.outbox?.sendDeadlineMs ?? config.ackTimeoutMs,
    logger,
  })
}
