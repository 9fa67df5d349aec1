import { randomUUID, type KeyObject } from 'node:crypto'
import type { Kafka, Producer } from 'kafkajs'
import { describeError } from '../../common/errors.js'
import { isUnknownTopicError } from '../../common/kafka.js'
import type { Logger } from '../../common/logger.js'
import { LIMITS } from '../../schemas/access-event.js'
import { AlertEvent } from '../../schemas/alert-event.js'
import { createAlertBatchCodec, sideTopic, type SideOrigin } from '../../schemas/side-batch.js'

/** An alert as the guard states it; the publisher adds its id, time, environment and number. */
export type AlertDraft = Omit<AlertEvent, 'alert_id' | 'occurred_at' | 'environment' | 'producer_seq'>

export interface AlertStats {
  /** Alerts the broker acknowledged. */
  published: number
  /** Alerts whose batch the broker never acknowledged (each logged at error level): their producer_seq numbers are a visible gap. */
  failed: number
  /** Alerts not queued because the queue was at its bound (logged): the guard decided on them all the same. */
  dropped: number
}

export interface AlertPublisher {
  /** Queues one alert; never throws, never waits (the read it is about does not wait for it). */
  publish(draft: AlertDraft): void
  /** Resolves once every alert queued so far is acknowledged or failed. */
  flush(): Promise<void>
  stats(): Readonly<AlertStats>
  close(): Promise<void>
}

/** What alerts are published with: the audit producer's Kafka client, key and identity. */
export interface AlertChannel {
  kafka: Kafka
  /** The access-event topic; alerts go to `<topic>.alerts`. */
  topic: string
  origin: SideOrigin
  privateKey: KeyObject
  environment: string
  ackTimeoutMs: number
}

// An alert flood (a scraper hammering a refusing budget) is already bounded
// by the guard's alertIntervalMs; this bound only keeps a broker outage from
// holding alerts in memory without end.
const MAX_QUEUED = 10_000
const MAX_PER_BATCH = 1000
const SEND_ATTEMPTS = 3

/**
 * Publishes extraction-guard alerts as signed alert batches on
 * `<topic>.alerts`, numbered 1, 2, 3… per producer (producer_seq): a gap is
 * a lost alert the consumer can name. A batch the broker does not
 * acknowledge after a few attempts is logged at error level and counted,
 * never dropped silently. One request in flight, so numbers reach Kafka in order.
 */
export function createAlertPublisher(channel: AlertChannel, logger: Logger): AlertPublisher {
  const codec = createAlertBatchCodec()
  const topic = sideTopic(channel.topic, 'alert')
  const stats: AlertStats = { published: 0, failed: 0, dropped: 0 }
  let queue: AlertEvent[] = []
  let seq = 0
  let producer: Producer | undefined
  let connected: Promise<void> | undefined
  let sending: Promise<void> | undefined
  let lastDropLog = 0

  async function send(message: Buffer): Promise<void> {
    producer ??= channel.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
    connected ??= producer.connect().catch((err: unknown) => {
      connected = undefined
      throw err
    })
    await connected
    await producer.send({ topic, acks: -1, timeout: channel.ackTimeoutMs, messages: [{ key: null, value: message }] })
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.slice(0, MAX_PER_BATCH)
      queue = queue.slice(batch.length)
      let message: Buffer
      try {
        message = codec.encode(topic, channel.origin, batch, channel.privateKey)
      } catch (err) {
        stats.failed += batch.length
        logger.error({ reason: describeError(err), alerts: batch.length }, 'guard alerts could not be encoded: NOT published')
        continue
      }
      let lastErr: unknown
      for (let attempt = 1; attempt <= SEND_ATTEMPTS; attempt++) {
        try {
          await send(message)
          stats.published += batch.length
          lastErr = undefined
          break
        } catch (err) {
          lastErr = err
          if (isUnknownTopicError(err)) break
          await new Promise((r) => setTimeout(r, 200 * attempt))
        }
      }
      if (lastErr !== undefined) {
        stats.failed += batch.length
        const seqs = `${batch[0]!.producer_seq}-${batch[batch.length - 1]!.producer_seq}`
        const hint = isUnknownTopicError(lastErr) ? ` (topic ${topic} does not exist: create it beside the event topic)` : ''
        logger.error({ reason: describeError(lastErr), alerts: batch.length, producer_seq: seqs, failed: stats.failed }, `guard alerts NOT published to ${topic}${hint}`)
      }
    }
    sending = undefined
  }

  return Object.freeze({
    publish(draft: AlertDraft): void {
      if (queue.length >= MAX_QUEUED) {
        stats.dropped += 1
        const now = Date.now()
        if (now - lastDropLog > 10_000) {
          lastDropLog = now
          logger.error({ dropped: stats.dropped, queued: queue.length }, 'guard alert queue full (broker away?): alerts dropped')
        }
        return
      }
      const event = {
        alert_id: randomUUID(),
        occurred_at: Date.now() * 1000,
        environment: channel.environment,
        ...draft,
        detail: draft.detail.slice(0, LIMITS.text),
        // Numbered when queued, in queue order: the order they are sent in.
        producer_seq: seq + 1,
      }
      const parsed = AlertEvent.safeParse(event)
      if (!parsed.success) {
        stats.dropped += 1
        logger.error({ problem: parsed.error.issues[0]?.message, path: parsed.error.issues[0]?.path.join('.') }, 'guard alert does not fit the alert schema: dropped')
        return
      }
      seq += 1
      queue.push(parsed.data)
      sending ??= Promise.resolve().then(drain)
    },
    async flush() {
      while (sending) await sending
    },
    stats: () => ({ ...stats }),
    async close() {
      while (sending) await sending
      if (producer) await producer.disconnect().catch(() => {})
    },
  })
}
