import { type Admin, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Producer } from 'kafkajs'
import { describeError, isReadtrailError } from '../common/errors.js'
import { registerSnappyCodec } from '../common/kafka.js'
import { componentLogger, type Logger } from '../common/logger.js'
import { nowMicros } from '../common/time.js'
import type { SchemaRegistry } from '../schemas/registry.js'
import { isDataError } from '../store/errors.js'
import { repairViewTail } from '../store/repair-views.js'
import type { Store } from '../store/store.js'
import { RowBinaryWriter } from '../store/row-binary.js'
import { chainIdOf, headEndsMessage, linkEntries, type ChainEntry, type ChainHead } from './chain.js'
import { readResumePoint, readRowsAfter, type ChainTrust, type PartitionEnd, type ResumeLimits, type UnsignedRow } from './chain-resume.js'
import type { ChainWriterConfig } from './config.js'
import { findOwnDeadLetters, type DeadLetterWanted } from './dead-letter-lookup.js'
import { batchDeadLetters, buildDeadLetter, type DeadLetterInput, type DeadLetterRecord, type DeadLetterTopicLimits } from './dead-letter-record.js'
import { deadLetterProducerOf, deadLetterSource, type DeadLetterProducer, type DeadLetterSigningKey } from './dead-letter-signature.js'
import { deadLetterTopicOf, readDeadLetterTopicLimits } from './topics.js'
import { REPLAY_HEADER } from '../schemas/message-headers.js'
import { IngestError } from './errors.js'
import { SchemaError } from '../schemas/errors.js'
import { createMessageTrust, type MessageEvents } from './message-trust.js'
import { loadTrustedProducers } from './trusted-producers.js'
import { assertAccessEvent } from './validate-event.js'
import type { AccessEvent } from '../schemas/access-event.js'

export interface ChainWriterStats {
  /** Rows appended to chains by this process. */
  stored: number
  /** Messages sent to the dead-letter topic. */
  deadLettered: number
  /** Of those, messages no trusted producer key vouched for (unsigned, unknown key, bad signature, another service's key). */
  unauthenticated: number
  /** Messages skipped because their rows were already signed or re-derived (redelivery after a crash). */
  redelivered: number
  /**
   * Rows found in the store after a chain's newest checkpoint and vouched for
   * by the Kafka message at their offset (stored before a crash, a failed
   * insert's retry or a rebalance): now part of the trusted head, and signed.
   */
  rederived: number
  /** Messages an earlier writer had handled whose rows were missing from the store: stored again (an alert). */
  restored: number
  batches: number
}

export interface ChainWriter {
  start(): Promise<void>
  /** Stops fetching, lets the batch in flight finish, commits, disconnects. */
  stop(): Promise<void>
  stats(): Readonly<ChainWriterStats>
}

/** Shortest time between two progress lines of a busy writer. @default 10000 */
export const PROGRESS_INTERVAL_MS = 10_000

export interface ChainWriterDeps {
  config: ChainWriterConfig
  kafka: Kafka
  store: Store
  registry: SchemaRegistry
  logger: Logger
  /**
   * Where each chain resumes: its newest signed checkpoint (the checkpoint
   * signer; consumers/ingest.ts wires it). UNSIGNED_CHAINS re-derives every
   * stored row from Kafka.
   */
  trust: ChainTrust
  /**
   * Called with a chain's new head after every insert ClickHouse
   * acknowledged, and after stored rows were re-derived from Kafka: what the
   * checkpoint signer signs. It never reads heads back from ClickHouse, which
   * an attacker may control.
   */
  onChainHead?: (head: ChainHead) => void
  /** Called when the group rebalanced: another writer may have written (and signed) any chain since. */
  onRebalance?: () => void
  /**
   * Called once when the writer found rows Kafka does not vouch for
   * (CHAIN_UNTRUSTED): it has stopped consuming and committed nothing over
   * them; the caller stops the pipeline and raises the alarm.
   */
  onFatal?: (err: unknown) => void
  /** Bounds of the re-derivation on resume. */
  resume?: ResumeLimits
  /**
   * The checkpoint key (consumers/ingest.ts wires it): every dead letter is
   * signed with it, so verify can tell the writer's dead letters from ones
   * anyone with produce rights on the dead-letter topic wrote, and the
   * writer itself can find its own when it re-derives a chain. Without it
   * (writers run alone in tests) dead letters are unsigned and prove nothing.
   */
  deadLetterKey?: DeadLetterSigningKey
}

/** A message the writer will not store, why, and the producer it claims to come from. */
interface DeadMessage {
  message: KafkaMessage
  error: unknown
  producer: DeadLetterProducer | null
}

/** A message a trusted key vouched for (or an allowed unsigned one), every event validated. */
type TrustedMessage = MessageEvents & { events: AccessEvent[] }

/** Codes of messages no trusted producer key vouched for. */
const UNAUTHENTICATED: ReadonlySet<string> = new Set(['MESSAGE_UNSIGNED', 'PRODUCER_KEY_UNKNOWN', 'SIGNATURE_INVALID', 'PRODUCER_NOT_AUTHORIZED'])

/** Whether the chain already holds the entry's row: its message lies before the head, or its event before the head's open message's next. */
function isStored(head: ChainHead, e: ChainEntry): boolean {
  if (head.lastOffset === null || e.offset > head.lastOffset) return false
  if (e.offset < head.lastOffset) return true
  return head.open === undefined || (e.index ?? 0) < head.open.nextIndex
}

/** Whether Kafka refused a produce request as too large (kafkajs may wrap the broker's error). */
function isTooLarge(err: unknown, depth = 0): boolean {
  if (err === null || typeof err !== 'object' || depth > 4) return false
  const e = err as { type?: unknown; errors?: unknown; cause?: unknown; originalError?: unknown }
  if (e.type === 'MESSAGE_TOO_LARGE' || e.type === 'RECORD_LIST_TOO_LARGE') return true
  if (Array.isArray(e.errors) && e.errors.some((x) => isTooLarge(x, depth + 1))) return true
  return isTooLarge(e.cause, depth + 1) || isTooLarge(e.originalError, depth + 1)
}

/** An event between two stored rows with no row of its own, and where it was met. */
interface SkippedEvent {
  message: KafkaMessage
  eventId: string
  /** The seq vouched for when it was met. */
  headSeq: number
  /** The stored row after it. */
  nextSeq: number
}

/** What the writer holds per chain it writes: the trusted head and the stored rows after it still to be vouched for. */
interface ChainState {
  head: ChainHead
  unsigned: UnsignedRow[]
  /** Index of the next unsigned row to re-derive. */
  next: number
  /** The group's committed offset when the chain was taken up: messages below it were handled by an earlier writer. */
  resumedAt: bigint
  /** Whether the consumer was sent back to the checkpoint's offset already (once per take-up). */
  rewound: boolean
  viewsRepaired: boolean
}

/**
 * Reads the access topic and appends every event to its partition's hash
 * chain in ClickHouse. Invariants:
 * - offsets are committed only after ClickHouse acknowledged the insert;
 * - a chain resumes (on start and after every rebalance or failed insert)
 *   from its newest signed checkpoint, never from the newest row in
 *   ClickHouse: the consumer is rewound to the checkpoint's offset, and each
 *   stored row after it must be re-derived, byte for byte, from the Kafka
 *   message at its offset before anything is appended; a row Kafka does not
 *   vouch for stops the writer (CHAIN_UNTRUSTED) with nothing signed over it;
 * - a crash between insert and commit neither forks nor duplicates the
 *   chain, since stored rows are recognised by their offsets;
 * - a message that does not decode or validate goes to the dead-letter topic
 *   with its reason and never blocks its partition.
 */
export function createChainWriter(deps: ChainWriterDeps): ChainWriter {
  const { config, kafka, store, registry } = deps
  const log = componentLogger(deps.logger, 'chain-writer')
  // The writer reads whatever codec a producer chose.
  registerSnappyCodec()
  // Loaded once, at start: a file that does not load stops the writer before it reads a message.
  const trust = createMessageTrust({ trusted: config.trustedProducers ? loadTrustedProducers(config.trustedProducers) : null, allowUnsigned: config.allowUnsigned, registry })
  if (config.allowUnsigned) log.warn('unsigned producers allowed (allowUnsigned): anyone who can write to the topic can frame any principal; for migration only')

  /**
   * A message's events once a trusted key vouched for them (or unsigned
   * ones were allowed) and every one of them validated: the writer stores a
   * message whole or dead-letters it whole, so a refused event never leaves
   * a hole inside a message.
   */
  function readEvents(topic: string, message: KafkaMessage): TrustedMessage {
    if (!message.value) throw new SchemaError('MESSAGE_MALFORMED', 'the message has no value')
    const read = trust.read(topic, message.value)
    if (read.events.length === 0) throw new IngestError('EVENT_INVALID', 'a batch holding no events')
    for (const [i, event] of read.events.entries()) {
      try {
        assertAccessEvent(event)
      } catch (err) {
        if (read.events.length === 1 || !isReadtrailError(err)) throw err
        throw new IngestError('EVENT_INVALID', `event ${i} of the batch: ${err.message}`, { cause: err, details: { ...err.details, event_index: i } })
      }
    }
    return read as TrustedMessage
  }

  /** The entries of a read message, from event `from` on. */
  function entriesOf(read: TrustedMessage, offset: bigint, from = 0): ChainEntry[] {
    const out: ChainEntry[] = []
    for (let i = from; i < read.events.length; i++) out.push({ event: read.events[i]!, offset, index: i, events: read.events.length, keyId: read.keyId, schemaVersion: read.schemaVersion })
    return out
  }
  const deadLetterTopic = deadLetterTopicOf(config)
  /** Chains taken up (or being taken up) since the last join; a batch waits for its chain's take-up. */
  const chains = new Map<string, Promise<ChainState>>()
  const stats: ChainWriterStats = { stored: 0, deadLettered: 0, unauthenticated: 0, redelivered: 0, rederived: 0, restored: 0, batches: 0 }
  let consumer: Consumer | undefined
  let dlq: Producer | undefined
  let admin: Admin | undefined
  let fatal: unknown

  /**
   * Takes a chain up: its signed head and the stored rows after it,
   * shape-checked. `partitionEnd` bounds the offsets stored rows may claim;
   * `resumedAt` is the group's committed offset (messages below it were
   * handled by an earlier writer).
   */
  async function takeUp(chainId: string, partitionEnd: PartitionEnd, resumedAt: bigint): Promise<ChainState> {
    const cp = await deps.trust.checkpointOf(chainId)
    const point = await readResumePoint(store, chainId, cp, partitionEnd, deps.resume)
    if (point.checkpointedRowProblem) {
      // Reported, not repaired: the checkpoint, not the store, says where the chain continues.
      log.error({ chain_id: chainId, problem: point.checkpointedRowProblem, alert: 'READTRAIL_INTEGRITY_ALERT' }, 'checkpointed row damaged in the store (run readtrail verify)')
    }
    // A chain with nothing signed and nothing stored (a new topic's partition) has nothing to resume: not worth a line per partition.
    log[cp || point.unsigned.length > 0 ? 'info' : 'debug'](
      { chain_id: chainId, checkpoint_seq: cp?.seq ?? 0, kafka_offset: cp?.lastOffset.toString() ?? null, unsigned_rows: point.unsigned.length },
      'chain resumes from its newest signed checkpoint',
    )
    return { head: point.head, unsigned: point.unsigned, next: 0, resumedAt, rewound: false, viewsRepaired: false }
  }

  /**
   * On every join, takes up each assigned chain at once rather than on its
   * next message: an idle partition's unsigned rows are re-derived (and then
   * signed) now, and rows Kafka does not vouch for stop the writer now, not
   * whenever traffic resumes. The consumer is rewound to the signed head
   * where the group's committed offset is past it.
   */
  async function takeUpAssigned(c: Consumer, assignment: Record<string, number[] | undefined>, joined: number): Promise<void> {
    const partitions = assignment[config.topic] ?? []
    const a = admin
    if (partitions.length === 0 || !a) return
    // A later join (or stop) makes this one's take-ups moot: the partitions may be another writer's now.
    const current = () => joined === generation && !stopping && c === consumer
    try {
      const [ends, [committed]] = await Promise.all([a.fetchTopicOffsets(config.topic), a.fetchOffsets({ groupId: config.groupId, topics: [config.topic] })])
      for (const partition of partitions) {
        const chainId = chainIdOf(config.topic, partition)
        // A batch that arrived first has taken the chain up (and rewinds it) itself.
        if (!current() || chains.has(chainId)) continue
        const low = ends.find((e) => e.partition === partition)?.low ?? '0'
        const offset = committed?.partitions.find((x) => x.partition === partition)?.offset
        const resumedAt = offset !== undefined && offset !== '-1' ? BigInt(offset) : BigInt(low)
        const endOf = async () => BigInt((await a.fetchTopicOffsets(config.topic)).find((e) => e.partition === partition)?.high ?? '0')
        const pending = takeUp(chainId, endOf, resumedAt)
        chains.set(chainId, pending)
        const chain = await pending
        if (!current()) return
        const from = (chain.head.lastOffset ?? -1n) + 1n
        if (resumedAt > from) c.seek({ topic: config.topic, partition, offset: from.toString() })
        chain.rewound = true
        if (chain.unsigned.length > 0) log.info({ chain_id: chainId, from_offset: from.toString(), unsigned_rows: chain.unsigned.length }, 're-reading Kafka from the signed head to vouch for the rows stored after it')
      }
    } catch (err) {
      if (!current()) return
      if (isReadtrailError(err) && err.code === 'CHAIN_UNTRUSTED') return failUntrusted(err, c)
      // The next batch of each chain takes it up again.
      chains.clear()
      log.warn({ err }, 'could not take up the assigned chains on join; retrying on their next batch')
    }
  }

  /**
   * The head after the stored row `row`, if the Kafka message at its offset
   * derives exactly that row (its event at the row's index). `read` is the
   * message already read for an earlier row of it.
   */
  function rederive(chain: ChainState, topic: string, message: KafkaMessage, row: UnsignedRow, read?: TrustedMessage): { head: ChainHead; read: TrustedMessage } {
    const chainId = chain.head.chainId
    let entry: ChainEntry
    try {
      read ??= readEvents(topic, message)
      const event = read.events[row.index]
      if (event === undefined || row.events !== read.events.length) throw new Error(`the message holds ${read.events.length} events, the row claims event ${row.index + 1} of ${row.events}`)
      entry = { event, offset: row.offset, index: row.index, events: read.events.length, keyId: read.keyId, schemaVersion: read.schemaVersion }
    } catch (cause) {
      throw new IngestError('CHAIN_UNTRUSTED', `chain ${chainId} seq ${row.seq}: the message at offset ${row.offset} it claims to store is not a trusted event (${describeError(cause)})`, {
        cause,
        details: { chain_id: chainId, seq: row.seq, kafka_offset: row.offset.toString() },
      })
    }
    // ingested_at is the one column Kafka cannot say; every other byte must match.
    const linked = linkEntries(chain.head, [entry], row.ingestedAt, rowWriter)
    if (!linked.head.hash.equals(row.hash)) {
      throw new IngestError('CHAIN_UNTRUSTED', `chain ${chainId} seq ${row.seq}: the stored row differs from the message at offset ${row.offset} it claims to store`, {
        details: { chain_id: chainId, seq: row.seq, kafka_offset: row.offset.toString() },
      })
    }
    return { head: linked.head, read }
  }
  const rowWriter = new RowBinaryWriter()

  /**
   * Every dead letter is acknowledged by all in-sync replicas before anything
   * after its source is stored: a message between two stored rows therefore
   * always has its dead letter in the topic (see vouchForSkipped). A bad
   * message costs its partition a SHA-256 and one send, whatever its size:
   * letters go to an explicit partition (no key is hashed), a long key is
   * replaced by its hash, a value too large for the dead-letter topic is
   * left out (its hash and size kept, still signed), and sends are split so
   * no record batch exceeds the topic's limit. Should the broker refuse a
   * letter as too large all the same (its limit lowered since the writer
   * read it), the letter is sent again without its value rather than
   * failing the batch, which would rejoin the group over the same message
   * forever.
   */
  async function sendDeadLetters(topic: string, partition: number, dead: DeadMessage[]): Promise<void> {
    const limits = await deadLetterLimits()
    const inputs = new Map<DeadLetterRecord, DeadLetterInput>()
    const records = dead.map(({ message, error, producer }) => {
      const input = deadLetterInput(topic, partition, message, error, producer)
      const record = buildDeadLetter(input, store.database, deps.deadLetterKey, limits)
      inputs.set(record, input)
      return record
    })
    for (const chunk of batchDeadLetters(records, limits.maxMessageBytes)) {
      try {
        await sendLetters(chunk)
      } catch (err) {
        if (!isTooLarge(err)) throw err
        log.warn({ topic, partition, letters: chunk.length, dead_letter_topic: deadLetterTopic }, 'the dead-letter topic refused letters as too large: sending them without their values')
        // A limit of 0 leaves every value out; a letter that still does not fit fails the batch as before.
        for (const r of chunk) await sendLetters([r.truncated ? r : buildDeadLetter(inputs.get(r)!, store.database, deps.deadLetterKey, { ...limits, maxMessageBytes: 0 })])
      }
    }
    stats.deadLettered += dead.length
    for (const [i, { message, error }] of dead.entries()) {
      const code = isReadtrailError(error) ? error.code : undefined
      // ClickHouse quotes the refused row in its message: keep that out of the logs.
      const reason = code === 'ROW_REJECTED' ? 'refused by ClickHouse (reason in the dead letter)' : describeError(error)
      if (code !== undefined && UNAUTHENTICATED.has(code)) {
        stats.unauthenticated += 1
        // Someone who can write to the topic sent events no trusted key vouches for: an attempt to frame a principal, or a producer left unsigned.
        log.error({ topic, partition, offset: message.offset, code, reason, alert: 'READTRAIL_PRODUCER_ALERT' }, 'message from an unauthenticated producer dead-lettered')
        continue
      }
      log.warn({ topic, partition, offset: message.offset, code, reason, truncated: records[i]!.truncated, key_bytes: message.key?.length ?? 0 }, 'message dead-lettered')
    }
  }

  function deadLetterInput(topic: string, partition: number, message: KafkaMessage, error: unknown, producer: DeadLetterProducer | null): DeadLetterInput {
    return { topic, partition, message, code: isReadtrailError(error) ? error.code : 'MESSAGE_MALFORMED', error: describeError(error).slice(0, 4000), producer }
  }

  async function sendLetters(records: readonly DeadLetterRecord[]): Promise<void> {
    await dlq!.send({
      topic: deadLetterTopic,
      acks: -1,
      messages: records.map((r) => ({ partition: r.partition, key: r.key, value: r.value, headers: r.headers })),
    })
  }

  /** The dead-letter topic's partitions and size limit, read once (again after a failed read). */
  let limitsRead: Promise<DeadLetterTopicLimits> | undefined
  function deadLetterLimits(): Promise<DeadLetterTopicLimits> {
    limitsRead ??= readDeadLetterTopicLimits(admin!, deadLetterTopic).catch((err: unknown) => {
      limitsRead = undefined
      log.warn({ err, dead_letter_topic: deadLetterTopic }, "could not read the dead-letter topic's limits: assuming one partition and the broker's default size")
      return { partitions: 1, maxMessageBytes: 1_048_588 }
    })
    return limitsRead
  }

  /**
   * Inserts entries a message at a time onto the trusted head; a message
   * ClickHouse refuses goes to the dead-letter topic whole and the chain
   * continues without it. Only used after a batch insert was refused. Rows
   * of that insert that landed anyway are re-derived from their messages first.
   */
  async function storeOneByOne(topic: string, partition: number, chain: ChainState, entries: ChainEntry[], sources: KafkaMessage[], partitionEnd: bigint): Promise<void> {
    const landed = await readRowsAfter(store, chain.head, async () => partitionEnd, deps.resume)
    const byOffset = new Map(sources.map((m) => [BigInt(m.offset), m]))
    let last: { offset: bigint; read: TrustedMessage } | undefined
    for (const row of landed) {
      const message = byOffset.get(row.offset)
      if (!message) {
        throw new IngestError('CHAIN_UNTRUSTED', `chain ${chain.head.chainId} seq ${row.seq}: a row appeared at offset ${row.offset} while the writer held the chain`, {
          details: { chain_id: chain.head.chainId, seq: row.seq, kafka_offset: row.offset.toString() },
        })
      }
      const derived = rederive(chain, topic, message, row, last?.offset === row.offset ? last.read : undefined)
      chain.head = derived.head
      last = { offset: row.offset, read: derived.read }
      stats.rederived += 1
    }
    for (let i = 0; i < entries.length; ) {
      const first = i
      const offset = entries[i]!.offset
      while (i < entries.length && entries[i]!.offset === offset) i++
      const group = entries.slice(first, i).filter((e) => !isStored(chain.head, e))
      if (group.length === 0) continue
      const linked = linkEntries(chain.head, group, nowMicros())
      try {
        await store.insertRowBinary('access_log', linked.rows, linked.count)
        chain.head = linked.head
        stats.stored += group.length
      } catch (err) {
        if (!isDataError(err)) throw err
        const reason = new IngestError('ROW_REJECTED', `ClickHouse refused ${group.length === 1 ? 'the event' : `the message's ${group.length} events`}: ${describeError(err)}`, { cause: err })
        await sendDeadLetters(topic, partition, [{ message: sources[first]!, error: reason, producer: deadLetterProducerOf(group[0]!.event, group.length) }])
      }
    }
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
    if (fatal !== undefined || batch.messages.length === 0 || !isRunning() || isStale()) return
    const chainId = chainIdOf(batch.topic, batch.partition)
    let taking = chains.get(chainId)
    if (!taking) {
      const end = BigInt(batch.highWatermark)
      taking = takeUp(chainId, async () => end, BigInt(batch.messages[0]!.offset))
      chains.set(chainId, taking)
    }
    let chain: ChainState
    try {
      chain = await taking
    } catch (err) {
      if (chains.get(chainId) === taking) chains.delete(chainId)
      throw err
    }
    // The take-up on join may have rewound the consumer: this batch was fetched before.
    if (isStale()) return
    const resumeFrom = (chain.head.lastOffset ?? -1n) + 1n
    if (!chain.rewound && BigInt(batch.messages[0]!.offset) > resumeFrom) {
      // The group's committed offset is past the signed head: read the
      // messages after it again, so every row stored since is vouched for.
      // The seek makes this batch stale; kafkajs fetches from there next.
      chain.rewound = true
      owner.seek({ topic: batch.topic, partition: batch.partition, offset: resumeFrom.toString() })
      return
    }
    chain.rewound = true
    const seqBefore = chain.head.seq
    const entries: ChainEntry[] = []
    const sources: KafkaMessage[] = []
    const dead: DeadMessage[] = []
    const skipped: SkippedEvent[] = []
    let restoring = 0
    for (const message of batch.messages) {
      const offset = BigInt(message.offset)
      const head = chain.head
      if (head.lastOffset !== null && (offset < head.lastOffset || (offset === head.lastOffset && headEndsMessage(head)))) {
        stats.redelivered += 1
        continue
      }
      let read: (TrustedMessage) | undefined
      let pending = chain.unsigned[chain.next]
      if (pending) {
        if (pending.offset < offset) {
          throw new IngestError('CHAIN_UNTRUSTED', `chain ${chainId} seq ${pending.seq}: it claims Kafka offset ${pending.offset}, which holds no message`, {
            details: { chain_id: chainId, seq: pending.seq, kafka_offset: pending.offset.toString() },
          })
        }
        if (pending.offset > offset) {
          // A message between two stored rows that has none of its own: it was
          // dead-lettered, or it is a replayed duplicate, or its rows were
          // deleted. One that is not a trusted event can never have had a row.
          const event = eventIdOf(batch.topic, message)
          if (event !== null) skipped.push({ message, eventId: event, headSeq: chain.head.seq, nextSeq: pending.seq })
          continue
        }
        // The message read once for all of its stored rows.
        while (pending && pending.offset === offset) {
          const derived = rederive(chain, batch.topic, message, pending, read)
          chain.head = derived.head
          read = derived.read
          chain.next += 1
          stats.rederived += 1
          pending = chain.unsigned[chain.next]
        }
        if (headEndsMessage(chain.head)) continue
        if (pending) {
          // Stored in part, with rows after it: its missing events were deleted.
          throw new IngestError('CHAIN_UNTRUSTED', `chain ${chainId} seq ${pending.seq}: the message at offset ${offset} is stored only up to event ${chain.head.open!.nextIndex} of ${chain.head.open!.events}, yet rows follow it`, {
            details: { chain_id: chainId, seq: pending.seq, kafka_offset: offset.toString() },
          })
        }
        // Stored in part before a crash: its remaining events are stored below.
      }
      const from = chain.head.lastOffset === offset && chain.head.open ? chain.head.open.nextIndex : 0
      const earlier = offset < chain.resumedAt
      try {
        read ??= readEvents(batch.topic, message)
        const more = entriesOf(read, offset, from)
        for (const e of more) {
          entries.push(e)
          sources.push(message)
        }
        if (earlier) restoring += more.length
      } catch (error) {
        // An earlier writer dead-lettered it already. A message that decodes
        // still says which producer and seq it claims: the letter names
        // them, so verify can account for the hole.
        if (!earlier) {
          const claim = message.value ? trust.claimOf(message.value) : null
          dead.push({ message, error, producer: claim ? deadLetterProducerOf(claim.first, claim.events) : null })
        }
      }
    }
    if (skipped.length > 0) {
      try {
        await vouchForSkipped(batch.topic, batch.partition, chainId, skipped)
      } catch (err) {
        // The head already moved past the skipped events in memory: a retry
        // of this batch would pass them as redelivered. Take the chain up
        // again from its checkpoint, so they are vouched for on the retry.
        chains.delete(chainId)
        throw err
      }
      await heartbeat()
    }
    if (chain.next < chain.unsigned.length && entries.length > 0) {
      throw new IngestError('CHAIN_UNTRUSTED', `chain ${chainId}: stored rows remain to be re-derived while new events arrived`, { details: { chain_id: chainId } })
    }
    if (!chain.viewsRepaired && chain.next === chain.unsigned.length) {
      // Only once every stored row is vouched for: views are never completed from forged rows.
      const repaired = await repairViewTail(store, chainId)
      if (repaired > 0) log.warn({ chain_id: chainId, view_rows: repaired }, 'query views lacked the newest rows (a writer stopped between tables): completed')
      chain.viewsRepaired = true
    }
    if (dead.length > 0) await sendDeadLetters(batch.topic, batch.partition, dead)
    await dropReplayedDuplicates(chainId, entries, sources)
    // A rebalance during this batch may have handed the partition to another
    // writer: writing now could fork the chain. Leave the batch to the new owner.
    if (isStale()) {
      chains.delete(chainId)
      return
    }
    if (entries.length > 0) {
      if (restoring > 0) {
        log.error(
          { chain_id: chainId, events: restoring, alert: 'READTRAIL_INTEGRITY_ALERT' },
          'events an earlier writer had stored and committed are missing from the store (rows deleted after the newest checkpoint): storing them again from Kafka',
        )
      }
      const linked = linkEntries(chain.head, entries, nowMicros())
      try {
        await store.insertRowBinary('access_log', linked.rows, linked.count)
        chain.head = linked.head
        stats.stored += entries.length
        stats.restored += restoring
      } catch (err) {
        if (!isDataError(err)) {
          // The insert may have landed before the error surfaced: take the
          // chain up again, so the retry re-derives whatever landed.
          chains.delete(chainId)
          throw err
        }
        // ClickHouse refused the data itself, which a retry cannot change:
        // find the refused events one by one so the partition keeps moving.
        await storeOneByOne(batch.topic, batch.partition, chain, entries, sources, BigInt(batch.highWatermark))
      }
    }
    // Only a head at a message's end is signed: a checkpoint's offset says its message is stored whole.
    if (chain.head.seq > seqBefore && headEndsMessage(chain.head)) deps.onChainHead?.(chain.head)
    const last = batch.lastOffset()
    resolveOffset(last)
    await owner.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }])
    stats.batches += 1
    rejoinAttempts = 0
    reportProgress()
    await heartbeat()
  }

  let progressAt = Date.now()
  /**
   * One info line per PROGRESS_INTERVAL_MS while events arrive, none while
   * the topic is idle: a writer that waits for traffic has nothing to report,
   * and its log should not grow by a line every few seconds saying so.
   */
  function reportProgress(): void {
    const now = Date.now()
    if (now - progressAt < PROGRESS_INTERVAL_MS) return
    progressAt = now
    log.info({ ...stats }, 'chain writer progress')
  }

  /** The first event id of a message the writer would store; null for any other. */
  function eventIdOf(topic: string, message: KafkaMessage): string | null {
    try {
      return readEvents(topic, message).events[0]!.event_id
    } catch {
      return null
    }
  }

  /**
   * Events between two stored rows that have no row of their own. Only two
   * things make that legitimate, and both leave proof the writer can check
   * cheaply (this runs only when such an event turns up, never per message):
   * - a replayed duplicate (REPLAY_HEADER) of an event the chain already
   *   holds at or before the rows vouched for so far: the store is asked;
   * - an event ClickHouse refused (ROW_REJECTED): its dead letter, signed
   *   with the checkpoint key, was acknowledged before any row after it was
   *   stored (storeOneByOne sends it before the next insert), so it is in
   *   the dead-letter topic unless that topic lost it.
   * Anything else is a row deleted from the unsigned tail with the rows after
   * it re-chained: CHAIN_UNTRUSTED, so nothing is signed over the hole.
   * Without a key (writers run alone in tests) the dead letters prove
   * nothing, and an unexplained event only raises the alert; verify reports it.
   */
  async function vouchForSkipped(topic: string, partition: number, chainId: string, skipped: SkippedEvent[]): Promise<void> {
    const unexplained: SkippedEvent[] = []
    for (const s of skipped) {
      if (s.message.headers?.[REPLAY_HEADER] !== undefined && (await holdsEvent(chainId, s.eventId, s.headSeq))) continue
      unexplained.push(s)
    }
    if (unexplained.length === 0) return
    const key = deps.deadLetterKey
    if (!key) {
      for (const s of unexplained) {
        log.error(
          { chain_id: chainId, kafka_offset: s.message.offset, next_stored_seq: s.nextSeq, alert: 'READTRAIL_INTEGRITY_ALERT' },
          'an event between two stored rows has no row of its own (dead-lettered by ClickHouse, or its row deleted): run readtrail verify',
        )
      }
      return
    }
    const wanted: DeadLetterWanted[] = unexplained.map((s) => ({ topic, partition, message: s.message }))
    const { found, complete } = await findOwnDeadLetters(kafka, deadLetterTopic, wanted, { keyId: key.keyId, database: store.database })
    const missing = unexplained.find((s) => !found.has(deadLetterSource(topic, partition, s.message.offset)))
    if (missing) {
      const bound = complete ? '' : ' (the dead-letter topic was read only up to its bound)'
      throw new IngestError(
        'CHAIN_UNTRUSTED',
        `chain ${chainId} seq ${missing.nextSeq}: the event at offset ${missing.message.offset} before it has no row, and no dead letter signed by this writer's key and no stored original explains why${bound}: its row was deleted and the rows after it re-chained`,
        { details: { chain_id: chainId, seq: missing.nextSeq, kafka_offset: missing.message.offset } },
      )
    }
    log.info({ chain_id: chainId, events: unexplained.length }, 'events between stored rows were dead-lettered by this writer (signed dead letters found)')
  }

  /** Whether the chain holds the event at or before `maxSeq` (the replayed duplicate's original precedes it). */
  async function holdsEvent(chainId: string, eventId: string, maxSeq: number): Promise<boolean> {
    // The alias must not be `event_id`: WHERE would compare the String alias, not the UUID column.
    const rows = await store.queryRows<{ n: number }>(
      `SELECT count() AS n FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND event_id = {id:UUID} AND seq <= {max_seq:UInt64}`,
      { chain_id: chainId, id: eventId, max_seq: maxSeq },
    )
    return Number(rows[0]?.n ?? 0) > 0
  }

  /** A chain Kafka does not vouch for: stop consuming, commit nothing, sign nothing more, tell the caller once. */
  function failUntrusted(err: unknown, c: Consumer): void {
    if (fatal !== undefined) return
    fatal = err
    log.fatal({ err, alert: 'READTRAIL_INTEGRITY_ALERT' }, 'stored rows are not vouched for by Kafka: the chain writer stops and signs nothing over them')
    chains.clear()
    c.pause([{ topic: config.topic }])
    deps.onFatal?.(err)
  }

  let stopping = false
  /** Joins so far: take-ups started for an earlier join are abandoned. */
  let generation = 0
  let rejoinTimer: NodeJS.Timeout | undefined
  let rejoinAttempts = 0
  let lastCrash: string | undefined

  function newConsumer(): Consumer {
    const c = kafka.consumer({
      groupId: config.groupId,
      maxBytesPerPartition: config.maxBytesPerPartition,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(config.sessionTimeoutMs / 3)),
      maxBytes: config.maxBytesPerPartition * 4,
      // A rewind to the signed head (on join) waits for the fetch in flight:
      // kafkajs's 5 s long poll made every restart cost 5 s on an idle topic.
      // With a linger, the broker holds a fetch until a partition's worth of
      // bytes waits or the linger ends: fewer, fuller inserts under a trickle.
      ...(config.fetchLingerMs > 0 ? { maxWaitTimeInMs: config.fetchLingerMs, minBytes: config.maxBytesPerPartition } : { maxWaitTimeInMs: 1000 }),
      allowAutoTopicCreation: false,
    })
    c.on(c.events.GROUP_JOIN, (e) => {
      // A rebalance may have moved partitions here from a writer that kept
      // going: each chain is taken up again from its newest checkpoint.
      chains.clear()
      generation += 1
      deps.onRebalance?.()
      lastCrash = undefined
      log.info({ assignment: e.payload.memberAssignment }, 'joined consumer group')
      void takeUpAssigned(c, e.payload.memberAssignment, generation)
    })
    c.on(c.events.CRASH, (e) => {
      // kafkajs restarts the consumer itself after a retriable error (a fresh
      // broker's coordinator still loading, a broker restarting): a retry,
      // said once per reason at info, then at debug; one it does not restart
      // from is an error.
      const reason = describeError(e.payload.error)
      const level = !e.payload.restart ? 'error' : reason === lastCrash ? 'debug' : 'info'
      lastCrash = reason
      log[level]({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed')
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
      eachBatch: async (payload) => {
        try {
          await handleBatch(payload, c)
        } catch (err) {
          if (isReadtrailError(err) && err.code === 'CHAIN_UNTRUSTED') return failUntrusted(err, c)
          throw err
        }
      },
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
    // writer: chains are taken up again after the new join.
    chains.clear()
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
      // Every letter names its partition; a partitioner that never hashes
      // keeps it so should one not (kafkajs's murmur2 is quadratic in the key).
      dlq = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: () => ({ message }) => message.partition ?? 0 })
      admin = kafka.admin()
      consumer = newConsumer()
      await dlq.connect()
      await admin.connect()
      await runConsumer(consumer)
      log.info({ topic: config.topic, group: config.groupId, dead_letter_topic: deadLetterTopic }, 'chain writer started')
    },
    async stop() {
      stopping = true
      if (rejoinTimer) clearTimeout(rejoinTimer)
      await consumer?.disconnect()
      await dlq?.disconnect()
      await admin?.disconnect()
      log.info({ ...stats }, 'chain writer stopped')
    },
    stats: () => ({ ...stats }),
  }
}
