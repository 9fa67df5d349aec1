import { type CompressionTypes, type Kafka, type Message, type Producer } from 'kafkajs'
import { describeError, isReadtrailError } from '../common/errors.js'
import { isUnknownTopicError, topicMissingError } from '../common/kafka.js'
import type { Logger } from '../common/logger.js'
import { REPLAY_HEADER } from '../schemas/message-headers.js'
import { ProducerError } from './errors.js'
import type { Outbox } from './outbox/outbox.js'

/** Where an event was made durable. */
export type Durability = 'acked' | 'outbox'


export interface DeliveryStats {
  /** Events the broker acknowledged on the direct path. */
  acked: number
  /** Events written to the outbox instead. */
  outboxed: number
  /** Events sent from the outbox and acknowledged. */
  replayed: number
  /** Events the outbox could not take (full or unavailable). */
  failed: number
}

export interface Delivery {
  /** Connects to the broker now (otherwise the first send does) and checks the topic exists (KAFKA_TOPIC_MISSING). */
  connect(): Promise<void>
  /** Sends one batch in order; resolves once it is durable (broker ack, or outbox fsync when an outbox is configured). */
  send(messages: Message[]): Promise<Durability>
  /** Events written to the outbox and not yet acknowledged by the broker. */
  pending(): number
  /** Resolves when the outbox is empty (or after timeoutMs); true if it emptied. */
  drained(timeoutMs: number): Promise<boolean>
  stats(): Readonly<DeliveryStats>
  close(): Promise<void>
}

export interface DeliveryOptions {
  kafka: Kafka
  /** Named in errors (a missing topic's create command). */
  brokers: readonly string[]
  topic: string
  ackTimeoutMs: number
  compression: CompressionTypes
  maxBatchMessages: number
  maxBatchBytes: number
  outbox: Outbox | undefined
  /** A direct send slower than this goes to the outbox (when there is one). */
  sendDeadlineMs: number
  logger: Logger
}

const REPLAY_BACKOFF_MS = { first: 250, max: 15_000 }

/**
 * Gets batches of encoded events to the broker without losing an
 * acknowledged one. Without an outbox a failed send rejects (the caller
 * learns the read is unrecorded). With one, a send that fails or outlasts
 * the deadline is appended to the outbox and replayed in order in the
 * background; while anything waits there, new batches queue behind it in the
 * outbox, so each producer's events reach Kafka in sequence order.
 */
export async function createDelivery(options: DeliveryOptions): Promise<Delivery> {
  const { kafka, topic, outbox, logger: log } = options
  const stats: DeliveryStats = { acked: 0, outboxed: 0, replayed: 0, failed: 0 }
  // One partition per request, moving on with each request: a request then
  // carries one record batch, and no message pays for hashing its key (the
  // chains do not depend on which partition an event lands in).
  let stickyPartition = 0
  const stickyPartitioner = () => ({ partitionMetadata }: { partitionMetadata: { partitionId: number }[] }) =>
    partitionMetadata[stickyPartition % partitionMetadata.length]!.partitionId

  let producer: Producer = newProducer()
  let connected: Promise<void> | undefined
  let closed = false
  // True while the outbox holds events not yet acknowledged: new batches must
  // queue behind them there.
  let viaOutbox = outbox !== undefined && outbox.cursor() < outbox.end()
  let appending = 0
  // Direct sends that outlasted the deadline but may still be acknowledged:
  // replay waits for them (so it never overtakes them) and skips whatever
  // they delivered.
  const late = new Set<Promise<void>>()
  const deliveredLate: { first: bigint; last: bigint }[] = []
  let replaying: Promise<void> | undefined
  let wakeReplay: (() => void) | undefined
  const drainWaiters = new Set<() => void>()

  function newProducer(): Producer {
    return kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: stickyPartitioner })
  }

  async function ensureConnected(): Promise<void> {
    connected ??= producer.connect().catch((err: unknown) => {
      connected = undefined
      throw err
    })
    await connected
  }

  /** After a non-retriable error the idempotent producer may be fenced for good: start a new one. */
  async function renewProducer(cause: unknown): Promise<void> {
    log.warn({ reason: describeError(cause) }, 'renewing the Kafka producer after a non-retriable error')
    const old = producer
    producer = newProducer()
    connected = undefined
    await old.disconnect().catch(() => {})
  }

  async function sendToKafka(messages: Message[]): Promise<void> {
    await ensureConnected()
    stickyPartition += 1
    try {
      await producer.send({ topic, acks: -1, timeout: options.ackTimeoutMs, compression: options.compression, messages })
    } catch (cause) {
      if (isUnknownTopicError(cause)) throw topicMissingError(topic, options.brokers, cause)
      throw cause
    }
  }

  /** Every read would fail against a topic that does not exist: say so at start, with the command that creates it. */
  async function assertTopicExists(): Promise<void> {
    const admin = kafka.admin()
    try {
      await admin.connect()
      if (!(await admin.listTopics()).includes(topic)) throw topicMissingError(topic, options.brokers)
    } finally {
      await admin.disconnect().catch(() => {})
    }
  }

  /**
   * Warns once per distinct reason; the same reason again (a replay retried
   * every few seconds while the broker is away) goes to debug, so a long
   * outage is one line, not one line per retry.
   */
  let lastReason: string | undefined
  function warnOnce(fields: Record<string, unknown>, reason: string, msg: string): void {
    const level = reason === lastReason ? 'debug' : 'warn'
    lastReason = reason
    log[level]({ ...fields, reason }, msg)
  }

  async function toOutbox(messages: Message[]): Promise<{ first: bigint; last: bigint }> {
    appending += 1
    try {
      const range = await outbox!.append(messages.map((m) => ({ key: toBuffer(m.key), value: toBuffer(m.value)! })))
      stats.outboxed += messages.length
      return range
    } catch (err) {
      stats.failed += messages.length
      throw err
    } finally {
      appending -= 1
    }
  }

  function startReplay(): void {
    if (wakeReplay) wakeReplay()
    replaying ??= replayLoop()
      .catch((err: unknown) => log.error({ reason: describeError(err) }, 'outbox replay stopped'))
      .finally(() => {
        replaying = undefined
      })
  }

  function isDeliveredLate(position: bigint): boolean {
    return deliveredLate.some((r) => position >= r.first && position <= r.last)
  }

  async function replayLoop(): Promise<void> {
    let backoff = REPLAY_BACKOFF_MS.first
    while (!closed) {
      if (late.size > 0) await Promise.allSettled([...late])
      const cursor = outbox!.cursor()
      const end = outbox!.end()
      if (cursor >= end) {
        if (appending > 0) {
          await sleep(5)
          continue
        }
        if (viaOutbox) log.info({ replayed: stats.replayed }, 'outbox drained: sending directly again')
        lastReason = undefined
        viaOutbox = false
        deliveredLate.length = 0
        for (const w of drainWaiters) w()
        drainWaiters.clear()
        return
      }
      try {
        // Inside the try: a record that fails its checksum on read
        // (OUTBOX_CORRUPT) is logged and retried, never an unhandled rejection
        // that would take the application down.
        const stored = await outbox!.read(cursor, options.maxBatchMessages, options.maxBatchBytes)
        if (stored.length === 0) {
          await sleep(5)
          continue
        }
        const toSend = stored.filter((m) => !isDeliveredLate(m.position))
        if (toSend.length > 0) {
          await sendToKafka(toSend.map((m) => ({ key: m.key, value: m.value, headers: { [REPLAY_HEADER]: '1' } })))
          stats.replayed += toSend.length
        }
        await outbox!.acknowledge(stored[stored.length - 1]!.position)
        backoff = REPLAY_BACKOFF_MS.first
      } catch (err) {
        warnOnce({ pending: Number(outbox!.end() - outbox!.cursor()), retry_ms: backoff }, describeError(err), 'outbox replay failed: retrying')
        if (isNonRetriable(err)) await renewProducer(err)
        await new Promise<void>((resolve) => {
          wakeReplay = resolve
          setTimeout(resolve, backoff)
        })
        wakeReplay = undefined
        backoff = Math.min(backoff * 2, REPLAY_BACKOFF_MS.max)
      }
    }
  }

  if (viaOutbox) {
    log.warn({ pending: Number(outbox!.end() - outbox!.cursor()) }, 'the outbox holds events a previous process left: replaying them first')
    startReplay()
  }

  return {
    async connect() {
      await ensureConnected()
      await assertTopicExists()
    },
    async send(messages) {
      if (closed) throw new ProducerError('PRODUCER_CLOSED', 'send after close()')
      if (outbox === undefined) {
        try {
          await sendToKafka(messages)
          stats.acked += messages.length
          return 'acked'
        } catch (cause) {
          // KAFKA_TOPIC_MISSING: the caller sees the topic and the command that creates it.
          if (isReadtrailError(cause)) throw cause
          if (isNonRetriable(cause)) await renewProducer(cause)
          throw new ProducerError('PUBLISH_FAILED', `broker did not acknowledge ${messages.length} events: ${describeError(cause)}`, { cause })
        }
      }
      if (viaOutbox) {
        await toOutbox(messages)
        startReplay()
        return 'outbox'
      }
      const direct = sendToKafka(messages)
      const outcome = await raceDeadline(direct, options.sendDeadlineMs)
      if (outcome.kind === 'acked') {
        stats.acked += messages.length
        return 'acked'
      }
      viaOutbox = true
      if (outcome.kind === 'failed') {
        warnOnce({ events: messages.length }, describeError(outcome.error), 'broker unavailable: events go to the outbox')
        if (isNonRetriable(outcome.error)) await renewProducer(outcome.error)
      } else {
        log.warn({ deadline_ms: options.sendDeadlineMs, events: messages.length }, 'broker slower than the deadline: events go to the outbox')
      }
      const range = await toOutbox(messages)
      if (outcome.kind === 'late') {
        const settled = direct.then(
          () => {
            stats.acked += messages.length
            deliveredLate.push(range)
          },
          () => {},
        )
        late.add(settled)
        void settled.finally(() => late.delete(settled))
      }
      startReplay()
      return 'outbox'
    },
    pending: () => (outbox ? Number(outbox.end() - outbox.cursor()) : 0),
    async drained(timeoutMs) {
      if (!outbox || (!viaOutbox && outbox.cursor() >= outbox.end())) return true
      startReplay()
      return new Promise<boolean>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          resolve(true)
        }
        const timer = setTimeout(() => {
          drainWaiters.delete(done)
          resolve(false)
        }, timeoutMs)
        drainWaiters.add(done)
      })
    },
    stats: () => ({ ...stats }),
    async close() {
      closed = true
      wakeReplay?.()
      await replaying?.catch(() => {})
      await Promise.allSettled([...late])
      if (outbox) {
        const left = Number(outbox.end() - outbox.cursor())
        if (left > 0) log.warn({ pending: left, dir: outbox.dir }, 'events left in the outbox: the next process with this outbox replays them')
        await outbox.close()
      }
      await producer.disconnect().catch(() => {})
    },
  }
}

type RaceOutcome = { kind: 'acked' } | { kind: 'failed'; error: unknown } | { kind: 'late' }

function raceDeadline(send: Promise<void>, deadlineMs: number): Promise<RaceOutcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ kind: 'late' }), deadlineMs)
    send.then(
      () => {
        clearTimeout(timer)
        resolve({ kind: 'acked' })
      },
      (error: unknown) => {
        clearTimeout(timer)
        resolve({ kind: 'failed', error })
      },
    )
  })
}

function isNonRetriable(err: unknown): boolean {
  return err instanceof Error && err.name === 'KafkaJSNonRetriableError'
}

function toBuffer(v: Message['key'] | Message['value']): Buffer | null {
  if (v === null || v === undefined) return null
  return Buffer.isBuffer(v) ? v : Buffer.from(v)
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
