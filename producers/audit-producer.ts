import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import type { Kafka, Message } from 'kafkajs'
import { parseConfig } from '../common/config.js'
import { createKafka } from '../common/kafka.js'
import { componentLogger, silentLogger, type Logger } from '../common/logger.js'
import { namedIssues } from '../common/zod-issues.js'
import { ConfigError, describeError, isReadtrailError } from '../common/errors.js'
import type { AccessEvent } from '../schemas/access-event.js'
import { createBatchCodec } from '../schemas/batch-codec.js'
import { signBatch } from '../schemas/batch-signature.js'
import { createCodec } from '../schemas/codec.js'
import { InputError } from '../schemas/errors.js'
import { ReadInput, type ParsedReadInput } from '../schemas/read-input.js'
import { checkReadInput } from '../schemas/read-input-check.js'
import { loadSchemaRegistry, type SchemaRegistry } from '../schemas/registry.js'
import { buildEvents } from './build-events.js'
import { AuditProducerConfig, weakSessionKeyReason, type AuditProducerConfigInput } from './config.js'
import type { Delivery, Durability, DeliveryStats } from './delivery.js'
import { startDeliveryThread } from './delivery-thread.js'
import { openDelivery } from './open-delivery.js'
import { ProducerError } from './errors.js'
import { loadProducerSigningKey } from './signing-key.js'
import { createAlertPublisher, type AlertDraft, type AlertPublisher, type AlertStats } from './guard/alert-publisher.js'

/** What recordRead resolves with once the broker has acknowledged every part. */
export interface RecordedRead {
  readId: string
  eventIds: string[]
  /** producer_seq of each part, in order. */
  producerSeqs: number[]
  /** 'acked' by the broker, or fsync'd in the outbox (replayed once the broker is back). */
  durability: Durability
}

export interface AuditProducer {
  readonly producerId: string
  readonly config: Readonly<AuditProducerConfig>
  /**
   * Validates, encodes and publishes one read. Resolves when the broker has
   * acknowledged it (acks from all in-sync replicas); rejects with a coded
   * error otherwise, in which case the read must be treated as unrecorded.
   */
  recordRead(input: ReadInput): Promise<RecordedRead>
  /**
   * The database hooks' path, for input assembled from parts validated
   * before (the audit context when it was entered, table and column names
   * when the hooks were configured, record id lengths by the caller):
   * no second schema parse and no promise per read, the cost a hook adds
   * to every query. `settle` runs once, when every part is durable or the
   * first one failed. Returns the read's id (what a guard alert names).
   * Throws what encoding throws (READ_TOO_LARGE).
   * @internal
   */
  enqueueParsedRead(input: ParsedReadInput, settle: (err: Error | undefined, durability?: Durability) => void): string
  /**
   * Queues an extraction-guard alert for `<topic>.alerts`, signed with this
   * producer's key under its producer id and service, on its Kafka client.
   * Never throws: an alert that cannot be published is logged and counted
   * (alertStats). @internal
   */
  publishAlert(draft: AlertDraft): void
  /** Alerts published, failed and dropped. @internal */
  alertStats(): Readonly<AlertStats>
  /** Resolves when every read accepted so far is durable (acknowledged or in the outbox) or failed. */
  flush(): Promise<void>
  /** Resolves when the outbox is empty, or false after timeoutMs (true at once without an outbox). */
  drainOutbox(timeoutMs: number): Promise<boolean>
  /** Events acknowledged, outboxed and failed; messages replayed from the outbox and still waiting there. */
  stats(): Readonly<DeliveryStats & { outboxPending: number }>
  /** Flushes, stops replaying and disconnects; events still in the outbox wait for the next process using it. */
  close(): Promise<void>
}

export interface AuditProducerOptions {
  /** Where the producer's warnings go (a pino logger). @default silent: an SDK writes nothing to its host's output unless asked */
  logger?: Logger
  /** Share a Kafka client; otherwise one is created from config.kafka. */
  kafka?: Kafka
  /** Access-event schemas (wire 1). */
  registry?: SchemaRegistry
  /** Access-batch schemas (wire 2). */
  batchRegistry?: SchemaRegistry
}

interface EncodedRead {
  /** Wire 1: whole messages. Wire 2: each event's body as a batch item. */
  bodies: Buffer[]
  readId: string
  eventIds: string[]
  producerSeqs: number[]
}

interface Pending {
  body: Buffer
  settle: (err: Error | undefined, durability?: Durability) => void
}

/**
 * The SDK an application embeds. Reads are queued and sent in batches by one
 * idempotent kafkajs producer (one request in flight, so retries cannot
 * reorder events); the caller pays for validation and encoding only, and
 * awaits the acknowledgement.
 */
export async function createAuditProducer(configInput: AuditProducerConfigInput, options: AuditProducerOptions = {}): Promise<AuditProducer> {
  const config = parseProducerConfig(configInput)
  // Each component binds its own name on the application's logger: a child of this child would print `component` twice.
  const root = options.logger ?? silentLogger()
  const logger = componentLogger(root, 'audit-producer')
  const weakKey = weakSessionKeyReason(config.sessionHashKey)
  // The key itself is never logged (and REDACT_PATHS would hide it), only why it looks wrong.
  if (weakKey) logger.warn({ reason: weakKey }, `sessionHashKey looks like a placeholder: ${weakKey}; session hashes made with a guessable key can be linked back to session ids — use ${config.sessionHashKey!.length} random bytes`)
  const registry = options.registry ?? loadSchemaRegistry()
  const codec = createCodec(registry)
  const producerId = config.producerId ?? `${config.service.slice(0, 160)}:${hostname().slice(0, 64)}:${process.pid}:${randomUUID().slice(0, 8)}`
  // Loaded (and its file's permissions checked) before anything connects: a bad key fails the start, not the first read.
  const signingKey = config.signingKey === undefined ? undefined : loadProducerSigningKey(config.signingKey)
  if (config.wireVersion !== 1 && !signingKey) logger.warn('no signingKey: batches go unsigned, and a chain writer refuses them unless it allows unsigned producers (migration only)')
  const framer =
    config.wireVersion !== 1
      ? createBatchCodec(options.batchRegistry ?? loadSchemaRegistry(undefined, 'access-batch')).framer({ keyId: signingKey?.keyId ?? '', producerId, service: config.service, environment: config.environment }, config.wireVersion)
      : undefined
  // The client on this thread: the caller's, the delivery's, or (worker
  // delivery) one made only if alerts are published.
  let kafka: Kafka | undefined = options.kafka
  const kafkaHere = (): Kafka => (kafka ??= createKafka(config.kafka, root))
  // A Kafka client passed in cannot cross threads: its delivery stays here.
  const delivery: Delivery =
    config.deliveryThread === 'worker' && !options.kafka
      ? await startDeliveryThread(
          { kafka: config.kafka, topic: config.topic, ackTimeoutMs: config.ackTimeoutMs, compression: config.compression, maxBatchMessages: config.maxBatchMessages, maxBatchBytes: config.maxBatchBytes, outbox: config.outbox },
          root,
        )
      : await openDelivery(config, kafkaHere(), root)
  if (!config.outbox) {
    // Without an outbox an unreachable broker is an error now, not at the
    // first read. With one, the application starts and reads go there.
    try {
      await delivery.connect()
    } catch (cause) {
      await delivery.close()
      // A missing topic is named as such (KAFKA_TOPIC_MISSING, with the command that creates it), not as an unreachable broker.
      const err = isReadtrailError(cause) && cause.code === 'KAFKA_TOPIC_MISSING' ? cause : new ProducerError('KAFKA_UNAVAILABLE', `cannot connect to Kafka (${config.kafka.brokers.join(', ')}): ${(cause as Error).message}`, { cause })
      logger.error({ err }, 'audit producer cannot start')
      throw err
    }
  }

  let seq = 0
  let closed = false
  let queue: Pending[] = []
  let queuedBytes = 0
  const counts = { acked: 0, outboxed: 0, failed: 0 }
  let timer: NodeJS.Timeout | undefined
  let sending: Promise<void> | undefined
  let lastFailure: string | undefined
  let alerts: AlertPublisher | undefined
  const noAlerts: AlertStats = { published: 0, failed: 0, dropped: 0 }
  const alertLog = componentLogger(root, 'readtrail-guard')
  const eventContext = {
    service: config.service,
    environment: config.environment,
    producerId,
    sessionHashKey: config.sessionHashKey,
    sessionHashes: new Map<string, Buffer>(),
    sqlDialect: config.sqlDialect,
    // The rest of the event is measured, not guessed: a read of many columns
    // with a long fingerprint leaves less room for ids. 16 bytes cover the
    // array's length prefix and the single-object header's slack.
    maxMessageBytes: config.maxMessageBytes,
    recordIdBudget: (withoutIds: AccessEvent) =>
      framer ? config.maxMessageBytes - framer.overhead - framer.encodeEvent(withoutIds).length - 16 : config.maxMessageBytes - codec.encode(withoutIds).length - 16,
  }

  function schedule(): void {
    if (sending) return
    if (config.lingerMs === 0 || fullMessageQueued()) {
      if (timer) clearTimeout(timer)
      timer = undefined
      sending = drain()
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = undefined
        if (!sending) sending = drain()
      }, config.lingerMs)
    }
  }

  /**
   * Sends what is queued, one Kafka request at a time: reads that arrive
   * while a request is in flight share the next one, so batching follows
   * load and an idle producer sends each read at once. Wire 2 puts a
   * request's events in one signed message; wire 1 sends one per event.
   */
  async function drain(): Promise<void> {
    do {
      if (queue.length === 0) break
      const batch = framer ? cutBatch(config.maxMessageBytes - framer.overhead) : cutBatch(config.maxBatchBytes)
      queue = queue.slice(batch.length)
      let bytes = 0
      for (const p of batch) bytes += p.body.length
      queuedBytes -= bytes
      try {
        const messages: Message[] = framer ? [{ key: null, value: signed(framer.frame(batch.map((p) => p.body), bytes)) }] : batch.map((p) => ({ key: null, value: p.body }))
        const durability = await delivery.send(messages)
        counts[durability === 'outbox' ? 'outboxed' : 'acked'] += batch.length
        for (const p of batch) p.settle(undefined, durability)
        lastFailure = undefined
      } catch (cause) {
        counts.failed += batch.length
        const err = isReadtrailError(cause)
          ? cause
          : new ProducerError('PUBLISH_FAILED', `broker did not acknowledge ${batch.length} events: ${(cause as Error).message}`, { cause })
        // Once per distinct error: during an outage every batch fails the same way, and the caller of each read already has its rejection.
        const reason = describeError(err)
        logger[reason === lastFailure ? 'debug' : 'error']({ err, events: batch.length }, 'events not recorded')
        lastFailure = reason
        for (const p of batch) p.settle(err)
      }
      // With lingerMs, reads that queued during the request wait out the
      // linger too unless a full message is ready: under load each request
      // then carries lingerMs of reads, not just the few that arrived during
      // one round trip (each request costs the producer far more than an event).
    } while (queue.length > 0 && (config.lingerMs === 0 || fullMessageQueued()))
    sending = undefined
    if (queue.length > 0) schedule()
  }

  function fullMessageQueued(): boolean {
    return queue.length >= config.maxBatchMessages || queuedBytes >= (framer ? config.maxMessageBytes - framer.overhead : config.maxBatchBytes)
  }

  /**
   * The queue's head, bounded by count and bytes: the broker refuses a
   * message (and a record batch) over the topic's max.message.bytes.
   */
  function cutBatch(maxBytes: number): Pending[] {
    let cut = 0
    let bytes = 0
    while (cut < queue.length && cut < config.maxBatchMessages) {
      const size = queue[cut]!.body.length
      if (cut > 0 && bytes + size > maxBytes) break
      bytes += size
      cut += 1
    }
    return queue.slice(0, cut)
  }

  function signed(message: Buffer): Buffer {
    if (signingKey) signBatch(config.topic, message, signingKey.privateKey)
    return message
  }

  /** Encodes every part before taking their numbers, so a read that fails to encode leaves no hole in this producer's sequence. */
  function encodeRead(input: ParsedReadInput): EncodedRead {
    // Refused before any number is taken: an overloaded producer leaves no hole in its sequence.
    if (queuedBytes >= config.maxQueuedBytes) {
      throw new ProducerError('PRODUCER_OVERLOADED', `${queuedBytes} bytes of events are waiting for the broker, at the producer's maxQueuedBytes (${config.maxQueuedBytes}): read not queued`, {
        details: { queuedBytes, maxQueuedBytes: config.maxQueuedBytes },
      })
    }
    const events = buildEvents(input, eventContext, seq + 1)
    const eventIds: string[] = []
    const producerSeqs: number[] = []
    const bodies = events.map((event) => {
      eventIds.push(event.event_id)
      producerSeqs.push(event.producer_seq)
      return framer ? framer.encodeEvent(event) : codec.encode(event)
    })
    seq += events.length
    return { bodies, readId: events[0]!.read_id, eventIds, producerSeqs }
  }

  /** Queues a read's parts; `settle` runs once, when every part is durable or the first one failed. */
  function enqueue({ bodies }: EncodedRead, settle: (err: Error | undefined, durability?: Durability) => void): void {
    // Nearly every read is one event: its part settles the read directly,
    // with no per-read closure to allocate on the caller's thread.
    if (bodies.length === 1) {
      const body = bodies[0]!
      queue.push({ body, settle })
      queuedBytes += body.length
      schedule()
      return
    }
    let left = bodies.length
    let outboxed = false
    let failed = false
    const onPart = (err: Error | undefined, durability?: Durability) => {
      if (failed) return
      if (err) {
        failed = true
        settle(err)
        return
      }
      if (durability === 'outbox') outboxed = true
      if (--left === 0) settle(undefined, outboxed ? 'outbox' : 'acked')
    }
    for (const body of bodies) {
      queue.push({ body, settle: onPart })
      queuedBytes += body.length
    }
    schedule()
  }

  return Object.freeze({
    producerId,
    config,
    recordRead(raw: ReadInput): Promise<RecordedRead> {
      if (closed) return Promise.reject(new ProducerError('PRODUCER_CLOSED', 'recordRead after close()'))
      let read: ParsedReadInput | undefined
      try {
        // The common read is checked by hand; anything else, and every
        // refusal's precise error, comes from ReadInput itself.
        read = checkReadInput(raw)
        if (read === undefined) {
          const parsed = ReadInput.safeParse(raw)
          if (!parsed.success) {
            return Promise.reject(new InputError(namedIssues(parsed.error, '(read)').map((i) => ({ field: i.key, problem: i.problem }))))
          }
          read = parsed.data
        }
      } catch (cause) {
        return Promise.reject(readInputThrew(cause))
      }
      let encoded: EncodedRead
      try {
        encoded = encodeRead(read)
      } catch (err) {
        // buildEvents reads values the caller still holds (a Date); whatever they throw is the input's fault.
        return Promise.reject(isReadtrailError(err) ? err : readInputThrew(err))
      }
      const { readId, eventIds, producerSeqs } = encoded
      return new Promise<RecordedRead>((resolve, reject) =>
        enqueue(encoded, (err, durability) => (err ? reject(err) : resolve({ readId, eventIds, producerSeqs, durability: durability! }))),
      )
    },
    enqueueParsedRead(input: ParsedReadInput, settle: (err: Error | undefined, durability?: Durability) => void): string {
      if (closed) throw new ProducerError('PRODUCER_CLOSED', 'recordRead after close()')
      const encoded = encodeRead(input)
      enqueue(encoded, settle)
      return encoded.readId
    },
    publishAlert(draft: AlertDraft): void {
      if (!signingKey || closed) {
        // Side batches are never unsigned: without a key there is no alert a writer would store.
        noAlerts.failed += 1
        alertLog.error({ budget: draft.budget, action: draft.action, failed: noAlerts.failed }, closed ? 'guard alert after close(): NOT published' : 'guard alert NOT published: the producer has no signingKey')
        return
      }
      alerts ??= createAlertPublisher(
        { kafka: kafkaHere(), topic: config.topic, origin: { keyId: signingKey.keyId, producerId: alertProducerId(producerId), service: config.service }, privateKey: signingKey.privateKey, environment: config.environment, ackTimeoutMs: config.ackTimeoutMs },
        alertLog,
      )
      alerts.publish(draft)
    },
    alertStats: () => {
      const s = alerts?.stats()
      return { published: s?.published ?? 0, failed: (s?.failed ?? 0) + noAlerts.failed, dropped: s?.dropped ?? 0 }
    },
    async flush() {
      while (queue.length > 0 || sending) {
        if (!sending) {
          if (timer) clearTimeout(timer)
          timer = undefined
          sending = drain()
        }
        await sending
      }
    },
    drainOutbox: (timeoutMs: number) => delivery.drained(timeoutMs),
    stats: () => ({ ...counts, replayed: delivery.stats().replayed, outboxPending: delivery.pending() }),
    async close() {
      if (closed) return
      closed = true
      await this.flush()
      await alerts?.close()
      await delivery.close()
    },
  })
}

/**
 * The options parsed as every configuration is, and coded even when reading
 * them throws (a getter, a Proxy trap): an application's bad options object
 * must fail as CONFIG_INVALID, like any other bad option.
 */
function parseProducerConfig(input: AuditProducerConfigInput): Readonly<AuditProducerConfig> {
  try {
    return parseConfig(AuditProducerConfig, input, 'audit producer')
  } catch (cause) {
    if (isReadtrailError(cause)) throw cause
    const problem = 'reading the options threw (a getter or a Proxy trap); pass plain data'
    throw new ConfigError(`invalid audit producer configuration:\n  - (root): ${problem}`, { cause, details: { issues: [{ key: '(root)', problem }] } })
  }
}

/**
 * A read whose own properties throw when read (a getter, a Proxy trap, a
 * Date subclass): INPUT_INVALID like any other bad read, so callers branch on
 * the code. The thrown message stays in `cause` only: it is the
 * application's text and may carry what the audit log must not leak.
 */
function readInputThrew(cause: unknown): InputError {
  return new InputError([{ field: '(read)', problem: 'reading the read threw (a getter, a Proxy trap or a Date method); pass plain data' }], { cause })
}

/**
 * The producer id alerts are numbered under: its own per process, since
 * alert numbers start at 1 in every process while a configured producerId
 * outlives restarts (verify would take a restart's alert 1 for a replay).
 */
function alertProducerId(producerId: string): string {
  return `${producerId.slice(0, 200)}:alerts:${randomUUID().slice(0, 8)}`
}
