import { Partitioners, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Producer } from 'kafkajs'
import { describeError, isReadtrailError } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import { nowMicros } from '../common/time.js'
import { createCodec } from '../schemas/codec.js'
import type { SchemaRegistry } from '../schemas/registry.js'
import { isDataError } from '../store/errors.js'
import { repairViewTail } from '../store/repair-views.js'
import type { Store } from '../store/store.js'
import { chainIdOf, linkEntries, type ChainEntry, type ChainHead } from './chain.js'
import { readChainHead } from './chain-head.js'
import type { ChainWriterConfig } from './config.js'
import { deadLetterTopicOf } from './topics.js'
import { REPLAY_HEADER } from '../schemas/message-headers.js'
import { IngestError } from './errors.js'
import { assertAccessEvent } from './validate-event.js'

export interface ChainWriterStats {
  /** Rows appended to chains by this process. */
  stored: number
  /** Messages sent to the dead-letter topic. */
  deadLettered: number
  /** Messages skipped because ClickHouse already held them (redelivery after a crash). */
  redelivered: number
  batches: number
}

export interface ChainWriter {
  start(): Promise<void>
  /** Stops fetching, lets the batch in flight finish, commits, disconnects. */
  stop(): Promise<void>
  stats(): Readonly<ChainWriterStats>
}

export interface ChainWriterDeps {
  config: ChainWriterConfig
  kafka: Kafka
  store: Store
  registry: SchemaRegistry
  logger: Logger
  /**
   * Called with a chain's new head after every insert ClickHouse
   * acknowledged: what the checkpoint signer signs. It never reads heads
   * back from ClickHouse, which an attacker may control.
   */
  onChainHead?: (head: ChainHead) => void
  /** Called when the group rebalanced: another writer may have written (and signed) any chain since. */
  onRebalance?: () => void
}

/**
 * Reads the access topic and appends every event to its partition's hash
 * chain in ClickHouse. Invariants:
 * - offsets are committed only after ClickHouse acknowledged the insert;
 * - the chain head is read back from ClickHouse on start and after every
 *   rebalance, and messages at or below its offset are skipped, so a crash
 *   between insert and commit neither forks nor duplicates the chain;
 * - a message that does not decode or validate goes to the dead-letter topic
 *   with its reason and never blocks its partition.
 */
export function createChainWriter(deps: ChainWriterDeps): ChainWriter {
  const { config, kafka, store, registry } = deps
  const log = deps.logger.child({ component: 'chain-writer' })
  const codec = createCodec(registry)
  const versionByFingerprint = new Map(registry.versions.map((v) => [v.fingerprint, v.version]))
  const deadLetterTopic = deadLetterTopicOf(config)
  const heads = new Map<string, ChainHead>()
  const stats: ChainWriterStats = { stored: 0, deadLettered: 0, redelivered: 0, batches: 0 }
  let consumer: Consumer | undefined
  let dlq: Producer | undefined

  async function headOf(chainId: string): Promise<ChainHead> {
    let head = heads.get(chainId)
    if (!head) {
      head = await readChainHead(store, chainId)
      const repaired = await repairViewTail(store, chainId)
      if (repaired > 0) log.warn({ chain_id: chainId, view_rows: repaired }, 'query views lacked the newest rows (a writer stopped between tables): completed')
      heads.set(chainId, head)
      log.info({ chain_id: chainId, seq: head.seq, kafka_offset: head.lastOffset?.toString() ?? null }, 'chain head read from store')
    }
    return head
  }

  async function sendDeadLetters(topic: string, partition: number, dead: { message: KafkaMessage; error: unknown }[]): Promise<void> {
    await dlq!.send({
      topic: deadLetterTopic,
      acks: -1,
      messages: dead.map(({ message, error }) => ({
        key: message.key,
        value: message.value,
        headers: {
          'readtrail-error-code': isReadtrailError(error) ? error.code : 'MESSAGE_MALFORMED',
          'readtrail-error': describeError(error).slice(0, 4000),
          'readtrail-source': `${topic}/${partition}@${message.offset}`,
        },
      })),
    })
    stats.deadLettered += dead.length
    for (const { message, error } of dead) {
      const code = isReadtrailError(error) ? error.code : undefined
      // ClickHouse quotes the refused row in its message: keep that out of the logs.
      const reason = code === 'ROW_REJECTED' ? 'refused by ClickHouse (reason in the dead letter)' : describeError(error)
      log.warn({ topic, partition, offset: message.offset, code, reason }, 'message dead-lettered')
    }
  }

  /**
   * Inserts entries one at a time, each linked to the head read back from the
   * store; an event ClickHouse refuses goes to the dead-letter topic and the
   * chain continues without it. Only used after a batch insert was refused.
   */
  async function storeOneByOne(topic: string, partition: number, chainId: string, entries: ChainEntry[], sources: KafkaMessage[]): Promise<void> {
    let head = await readChainHead(store, chainId)
    for (const [i, entry] of entries.entries()) {
      if (head.lastOffset !== null && entry.offset <= head.lastOffset) continue
      const linked = linkEntries(head, [entry], nowMicros())
      try {
        await store.insertJsonLines('access_log_ingest', linked.lines)
        head = linked.head
        stats.stored += 1
        deps.onChainHead?.(head)
      } catch (err) {
        if (!isDataError(err)) throw err
        const reason = new IngestError('ROW_REJECTED', `ClickHouse refused the event: ${describeError(err)}`, { cause: err })
        await sendDeadLetters(topic, partition, [{ message: sources[i]!, error: reason }])
      }
    }
    heads.set(chainId, head)
  }

  /**
   * An event replayed from a producer's outbox may also have reached the
   * broker directly (its acknowledgement lost, or the process killed before
   * it marked the outbox): such a message carries REPLAY_HEADER, and is
   * stored only if its chain does not hold its event id yet. Only replayed
   * messages pay for the lookup.
   */
  async function dropReplayedDuplicates(chainId: string, entries: ChainEntry[], sources: KafkaMessage[]): Promise<void> {
    const replayed = entries.filter((_, i) => sources[i]!.headers?.[REPLAY_HEADER] !== undefined).map((e) => e.event.event_id)
    if (replayed.length === 0) return
    // The alias must not be `event_id`: ClickHouse would compare the String
    // alias, not the UUID column, with the ids in WHERE, and match nothing.
    const rows = await store.queryRows<{ id: string }>(
      `SELECT toString(event_id) AS id FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND event_id IN {ids:Array(UUID)}`,
      { chain_id: chainId, ids: replayed },
    )
    const seen = new Set(rows.map((r) => r.id))
    let kept = 0
    for (let i = 0; i < entries.length; i++) {
      const id = entries[i]!.event.event_id
      if (seen.has(id)) {
        stats.redelivered += 1
        continue
      }
      seen.add(id)
      entries[kept] = entries[i]!
      sources[kept] = sources[i]!
      kept += 1
    }
    if (kept < entries.length) log.info({ chain_id: chainId, duplicates: entries.length - kept }, 'replayed events already stored: skipped')
    entries.length = kept
    sources.length = kept
  }

  async function handleBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload, owner: Consumer): Promise<void> {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return
    const chainId = chainIdOf(batch.topic, batch.partition)
    const head = await headOf(chainId)
    const entries: ChainEntry[] = []
    const sources: KafkaMessage[] = []
    const dead: { message: KafkaMessage; error: unknown }[] = []
    for (const message of batch.messages) {
      const offset = BigInt(message.offset)
      if (head.lastOffset !== null && offset <= head.lastOffset) {
        stats.redelivered += 1
        continue
      }
      try {
        if (!message.value) throw new Error('message has no value')
        const decoded = codec.decode(message.value)
        assertAccessEvent(decoded.event)
        entries.push({ event: decoded.event, offset, schemaVersion: versionByFingerprint.get(decoded.writer.fingerprint) ?? 0 })
        sources.push(message)
      } catch (error) {
        dead.push({ message, error })
      }
    }
    if (dead.length > 0) await sendDeadLetters(batch.topic, batch.partition, dead)
    await dropReplayedDuplicates(chainId, entries, sources)
    // A rebalance during this batch may have handed the partition to another
    // writer, which reads the head from the store: writing now could fork the
    // chain. Leave the batch to the new owner.
    if (isStale()) {
      heads.delete(chainId)
      return
    }
    if (entries.length > 0) {
      const linked = linkEntries(head, entries, nowMicros())
      try {
        await store.insertJsonLines('access_log_ingest', linked.lines)
        heads.set(chainId, linked.head)
        stats.stored += entries.length
        deps.onChainHead?.(linked.head)
      } catch (err) {
        // The insert may have landed before the error surfaced: forget the head
        // so the retry reads the truth back instead of forking the chain.
        heads.delete(chainId)
        if (!isDataError(err)) throw err
        // ClickHouse refused the data itself, which a retry cannot change:
        // find the refused events one by one so the partition keeps moving.
        await storeOneByOne(batch.topic, batch.partition, chainId, entries, sources)
      }
    }
    const last = batch.lastOffset()
    resolveOffset(last)
    await owner.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }])
    stats.batches += 1
    rejoinAttempts = 0
    await heartbeat()
  }

  let stopping = false
  let rejoinTimer: NodeJS.Timeout | undefined
  let rejoinAttempts = 0

  function newConsumer(): Consumer {
    const c = kafka.consumer({
      groupId: config.groupId,
      maxBytesPerPartition: config.maxBytesPerPartition,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(config.sessionTimeoutMs / 3)),
      maxBytes: config.maxBytesPerPartition * 4,
      allowAutoTopicCreation: false,
    })
    c.on(c.events.GROUP_JOIN, (e) => {
      // A rebalance may have moved partitions here from a writer that kept
      // going: the store, not our memory, says where each chain ends.
      heads.clear()
      deps.onRebalance?.()
      log.info({ assignment: e.payload.memberAssignment }, 'joined consumer group')
    })
    c.on(c.events.CRASH, (e) => {
      log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed')
      // kafkajs restarts only after retriable errors. After a non-retriable
      // one (e.g. the group coordinator forgot this member while a long
      // batch ran) it has disconnected for good, and the writer would sit
      // idle while still holding the store: join the group again instead.
      if (!e.payload.restart && !stopping && c === consumer) scheduleRejoin()
    })
    return c
  }

  async function runConsumer(c: Consumer): Promise<void> {
    await c.connect()
    await c.subscribe({ topics: [config.topic], fromBeginning: config.fromBeginning })
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
      eachBatch: (payload) => handleBatch(payload, c),
    })
  }

  function scheduleRejoin(): void {
    if (rejoinTimer) return
    const delayMs = Math.min(30_000, 500 * 2 ** rejoinAttempts)
    rejoinAttempts += 1
    log.warn({ delay_ms: delayMs, attempt: rejoinAttempts }, 'rejoining the consumer group with a new consumer')
    rejoinTimer = setTimeout(() => {
      rejoinTimer = undefined
      void rejoin()
    }, delayMs)
  }

  async function rejoin(): Promise<void> {
    if (stopping) return
    const old = consumer
    // Whatever the old member held may since have been written by another
    // writer: heads are read back from the store after the new join.
    heads.clear()
    consumer = newConsumer()
    try {
      await old?.disconnect().catch(() => {})
      await runConsumer(consumer)
    } catch (err) {
      log.error({ err }, 'rejoining the consumer group failed')
      if (!stopping) scheduleRejoin()
    }
  }

  return {
    async start() {
      dlq = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
      consumer = newConsumer()
      await dlq.connect()
      await runConsumer(consumer)
      log.info({ topic: config.topic, group: config.groupId, dead_letter_topic: deadLetterTopic }, 'chain writer started')
    },
    async stop() {
      stopping = true
      if (rejoinTimer) clearTimeout(rejoinTimer)
      await consumer?.disconnect()
      await dlq?.disconnect()
      log.info({ ...stats }, 'chain writer stopped')
    },
    stats: () => ({ ...stats }),
  }
}
