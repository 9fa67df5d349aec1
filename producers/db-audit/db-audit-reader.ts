import type { Kafka, Producer } from 'kafkajs'
import { join } from 'node:path'
import { ReadtrailError } from '../../common/errors.js'
import { createKafka, createTopicsAndWait, EVENT_TOPIC_DEFAULTS, TOPIC_SETTLE_TIMEOUT_MS } from '../../common/kafka.js'
import { withAdmin } from '../../common/kafka-read.js'
import { componentLogger, silentLogger, type Logger } from '../../common/logger.js'
import { acquirePidLock, type PidLock } from '../../common/pid-lock.js'
import { ensurePrivateDirectory } from '../../common/private-dir.js'
import { DbAuditEvent } from '../../schemas/db-audit-event.js'
import { createDbAuditBatchCodec, sideTopic, type SideBatchCodec } from '../../schemas/side-batch.js'
import { loadProducerSigningKey, type ProducerSigningKey } from '../signing-key.js'
import type { AuditEntry } from './audit-entry.js'
import { buildDbAuditEvent, estimateEventBytes } from './build-event.js'
import { DbAuditError } from './errors.js'
import { resolveLogSource, type LogSource } from './log-source.js'
import { LogTailer, type TailStep } from './log-tailer.js'
import { findPublishedTail, partitionOf, type PublishedTail } from './published-batches.js'
import { positionPath, readPositionFile, writePositionFile, type DbAuditPosition } from './position-file.js'
import { parseDbAuditReaderConfig, type DbAuditReaderConfig, type DbAuditReaderConfigInput, type SigningKeySource } from './reader-config.js'
import { createRecordParser, type RecordParser } from './record-parser.js'
import type { FramedItem } from './record-framer.js'

export interface DbAuditReaderOptions extends DbAuditReaderConfigInput {
  /** The reader's Ed25519 key: a PKCS#8 PEM path (0600, owned by this user) or a KeyObject. */
  signingKey: SigningKeySource
  /** @default a silent logger (a library logs nothing unless asked) */
  logger?: Logger
  /** A kafkajs client to use instead of one made from `kafka`. */
  kafkaClient?: Kafka
}

export interface DbAuditReaderStats {
  /** Events published (acknowledged by Kafka). */
  published: number
  batches: number
  /** Last reader_seq given. */
  seq: number
  /** Log records read (any kind). */
  records: number
  /** Records that claim to be audit entries but are not readable or not genuine. */
  rejected: number
  /** Records longer than maxRecordBytes, skipped. */
  oversize: number
  /** Incomplete records at the end of a finished file. */
  truncated: number
  /** Files the position named that were gone (deleted before they were read to the end). */
  lostFiles: number
  /** Entries regenerated after a restart that Kafka already held (not published again). */
  skippedAcked: number
  publishRetries: number
}

// An event is at most this large encoded (statement 8192 chars, names 256,
// path 4096, each up to 3 bytes a char): room kept in a batch before adding one.
const MAX_EVENT_BYTES = 64 * 1024
const TOPIC_TIMEOUT_MS = 30_000
const COMMIT_EVERY_MS = 1000
// What the topic's limit must leave for the message header, signature and origin.
const MESSAGE_HEADROOM_BYTES = 16 * 1024

/**
 * Reads one database's audit log (pgAudit csvlog/jsonlog, MariaDB
 * server_audit) and publishes the reads of the configured tables to
 * `<topic>.db-audit` as signed batches, every entry once:
 *
 * - at least once: the position (file identity, offset, reader_seq, pending
 *   MariaDB statements) is committed to the position file only after Kafka
 *   acknowledged the batch holding the entries before it;
 * - at most once: a restart first reads its own signed batches in Kafka after
 *   the committed offset; entries re-read from the committed position get the
 *   same reader_seq again (reading is deterministic), and those Kafka already
 *   holds are checked against it and not published again.
 *
 * So reader_seq runs 1, 2, 3… without gap or repeat across restarts,
 * rotations and Kafka outages; a gap a consumer sees is a lost entry.
 */
export class DbAuditReader {
  readonly config: Readonly<DbAuditReaderConfig>
  private readonly log: Logger
  private readonly key: ProducerSigningKey
  private readonly source: LogSource
  private readonly topic: string
  private readonly tables: ReadonlySet<string>
  private readonly codec: SideBatchCodec<DbAuditEvent>
  private readonly parser: RecordParser
  private readonly tailer: LogTailer
  private readonly kafka: Kafka
  private readonly statsNow: DbAuditReaderStats = { published: 0, batches: 0, seq: 0, records: 0, rejected: 0, oversize: 0, truncated: 0, lostFiles: 0, skippedAcked: 0, publishRetries: 0 }
  private producer: Producer | undefined
  private lock: PidLock | undefined
  private position!: DbAuditPosition
  private partition = 0
  private nextKafkaOffset = 0n
  private batchBudget = 0
  private offset = 0
  private logPath = ''
  private batch: DbAuditEvent[] = []
  private batchBytes = 0
  private dirty = false
  private lastCommit = 0
  private skipThrough: PublishedTail | undefined
  private stopping = false
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined
  private resolveFailed!: (err: Error) => void
  /** Settles with the error that stopped the reader, if one does. */
  readonly failed: Promise<Error>

  constructor(options: DbAuditReaderOptions) {
    const { signingKey, logger, kafkaClient, ...rest } = options
    this.config = parseDbAuditReaderConfig(rest)
    this.log = componentLogger(logger ?? silentLogger(), 'db-audit-reader', { source: this.config.source })
    this.key = loadProducerSigningKey(signingKey)
    this.source = resolveLogSource(this.config)
    this.topic = sideTopic(this.config.topic, 'db-audit')
    this.tables = new Set(this.config.tables)
    this.codec = createDbAuditBatchCodec()
    this.parser = createRecordParser(this.source.parser, this.tables)
    this.tailer = new LogTailer({ location: this.source.location, framing: this.parser.framing, maxRecordBytes: this.config.maxRecordBytes, readChunkBytes: this.config.readChunkBytes })
    this.kafka = kafkaClient ?? createKafka(this.config.kafka, this.log)
    this.failed = new Promise((resolve) => (this.resolveFailed = resolve))
  }

  stats(): DbAuditReaderStats {
    return { ...this.statsNow }
  }

  /** Takes the lock, prepares the topic, resumes from the position file and Kafka, then reads in the background until stop(). */
  async start(): Promise<void> {
    await this.prepare()
    this.loop = this.run(false).catch((err: unknown) => this.fail(err))
  }

  /** Reads everything there is now, publishes and commits it, and returns (the CLI's --once). */
  async runOnce(): Promise<DbAuditReaderStats> {
    await this.prepare()
    try {
      await this.run(true)
    } finally {
      await this.release()
    }
    return this.stats()
  }

  /** Stops after the batch in flight (if any) is acknowledged and committed; what was read after it is read again next time. */
  async stop(): Promise<void> {
    this.stopping = true
    this.wake?.()
    await this.loop
    await this.release()
  }

  private async prepare(): Promise<void> {
    const { stateDir, source } = this.config
    ensurePrivateDirectory({ dir: stateDir, holds: 'db-audit reader positions' })
    this.lock = acquirePidLock({
      path: join(stateDir, `db-audit-${source}.lock`),
      command: `readtrail db-audit --source ${source}`,
      refuse: (refusal) =>
        new DbAuditError('DB_AUDIT_READER_LOCKED', `another process is already reading source ${source}${refusal.reason === 'live' ? ` (pid ${refusal.holder.pid})` : ''}; two readers would publish every entry twice`, { details: { source, reason: refusal.reason } }),
    })
    try {
      await this.prepareTopic()
      this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
      await this.producer.connect()
      await this.resume()
    } catch (err) {
      await this.release()
      throw err
    }
  }

  private async prepareTopic(): Promise<void> {
    const { partitions, maxMessageBytes } = await withAdmin(this.kafka, Date.now() + TOPIC_SETTLE_TIMEOUT_MS, `preparing topic ${this.topic}`, async (admin) => {
      if (!(await admin.listTopics()).includes(this.topic)) {
        if (!this.config.createTopic) throw new ReadtrailError('KAFKA_TOPIC_MISSING', `Kafka topic ${this.topic} does not exist (createTopic is off)`, { details: { topic: this.topic } })
        await createTopicsAndWait(
          admin,
          [{ topic: this.topic, numPartitions: EVENT_TOPIC_DEFAULTS.partitions, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: String(EVENT_TOPIC_DEFAULTS.maxMessageBytes) }] }],
          Date.now() + TOPIC_SETTLE_TIMEOUT_MS,
        )
      }
      const meta = await admin.fetchTopicMetadata({ topics: [this.topic] })
      // kafkajs ConfigResourceTypes.TOPIC is 2 (not a named export under ESM).
      const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: this.topic, configNames: ['max.message.bytes'] }] }).catch(() => undefined)
      const max = Number(described?.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue)
      return { partitions: meta.topics[0]?.partitions.length ?? 1, maxMessageBytes: Number.isSafeInteger(max) && max > 0 ? max : 1_048_588 }
    })
    this.partition = partitionOf(this.config.source, Math.max(1, partitions))
    this.batchBudget = Math.max(MAX_EVENT_BYTES * 2, Math.min(this.config.maxBatchBytes, maxMessageBytes - MESSAGE_HEADROOM_BYTES))
  }

  private async resume(): Promise<void> {
    const path = positionPath(this.config.stateDir, this.config.source)
    const saved = readPositionFile(path)
    if (saved) {
      this.assertPositionFits(saved, path)
      this.position = saved
      this.partition = saved.kafka.partition
    } else {
      const marks = await withAdmin(this.kafka, Date.now() + TOPIC_TIMEOUT_MS, `reading offsets of ${this.topic}`, (admin) => admin.fetchTopicOffsets(this.topic))
      const high = marks.find((m) => m.partition === this.partition)?.high ?? '0'
      // A reader with no position: anything of its own already in Kafka means the position file was lost.
      const own = await findPublishedTail(this.kafka, this.topic, this.partition, 0n, { source: this.config.source, publicKey: this.key.publicKey, codec: this.codec }, TOPIC_TIMEOUT_MS)
      if (own) {
        throw new DbAuditError('DB_AUDIT_RESUME_CONFLICT', `no position file at ${path}, but ${this.topic} already holds batches of source ${this.config.source} up to reader_seq ${own.lastSeq}: restore the position file, or read this log as a new source`, {
          details: { path, source: this.config.source, last_seq: own.lastSeq },
        })
      }
      this.position = { version: 1, source: this.config.source, kind: this.config.kind, log: this.source.log, file: null, offset: 0, seq: 0, pending: [], kafka: { topic: this.topic, partition: this.partition, next_offset: high } }
    }
    const notices = await this.tailer.resume(this.position.file, this.position.offset, this.config.startAt)
    for (const notice of notices) {
      if (notice.kind === 'lost') {
        this.statsNow.lostFiles++
        this.log.error({ file: notice.path, offset: this.position.offset }, 'the log file the reader stopped in is gone (deleted before it was read to the end): its remaining entries cannot be published')
      } else {
        this.statsNow.truncated++
        this.log.error({ file: notice.path, offset: notice.offset, size: notice.size }, 'the log file shrank below the position (truncated or rewritten in place): reading it again from its start')
      }
    }
    const identity = await this.tailer.currentIdentity()
    this.logPath = identity?.path ?? ''
    this.offset = this.tailer.consumed
    this.statsNow.seq = this.position.seq
    this.parser.restore(this.position.pending)
    this.nextKafkaOffset = BigInt(this.position.kafka.next_offset)
    const tail = await findPublishedTail(this.kafka, this.topic, this.partition, this.nextKafkaOffset, { source: this.config.source, publicKey: this.key.publicKey, codec: this.codec }, TOPIC_TIMEOUT_MS)
    if (tail) {
      if (tail.forged > 0) this.log.warn({ messages: tail.forged }, `messages in ${this.topic} claim this source but are not signed by its key: ignored`)
      if (tail.firstSeq !== this.position.seq + 1) {
        throw new DbAuditError('DB_AUDIT_RESUME_CONFLICT', `${this.topic} holds batches of source ${this.config.source} from reader_seq ${tail.firstSeq}, but the position file ends at ${this.position.seq}: the position file is older or newer than what was published`, {
          details: { position_seq: this.position.seq, kafka_first_seq: tail.firstSeq, kafka_last_seq: tail.lastSeq },
        })
      }
      this.skipThrough = tail
      this.nextKafkaOffset = tail.nextOffset
      this.log.info({ through_seq: tail.lastSeq }, 'batches acknowledged after the last commit found in Kafka: their entries are read again but not published again')
    }
    if (!saved) await this.commit()
    this.log.info({ file: this.logPath || null, offset: this.offset, seq: this.position.seq, topic: this.topic, partition: this.partition }, 'db-audit reader resumed')
  }

  private assertPositionFits(saved: DbAuditPosition, path: string): void {
    const differs: string[] = []
    if (saved.source !== this.config.source) differs.push(`source ${saved.source}`)
    if (saved.kind !== this.config.kind) differs.push(`kind ${saved.kind}`)
    if (saved.log !== this.source.log) differs.push(`log ${saved.log}`)
    if (saved.kafka.topic !== this.topic) differs.push(`topic ${saved.kafka.topic}`)
    if (differs.length > 0) {
      throw new DbAuditError('DB_AUDIT_POSITION_INVALID', `the position file ${path} belongs to another reader (${differs.join(', ')}); move it away or use another --source`, { details: { path, differs } })
    }
  }

  private async run(once: boolean): Promise<void> {
    while (!this.stopping) {
      let step: TailStep
      try {
        step = await this.tailer.step()
      } catch (err) {
        // A log directory away for a moment (remounted, recreated by the server): wait and look again.
        if (!(err instanceof DbAuditError) || !err.retriable || once) throw err
        this.log.warn({ err }, 'the audit log cannot be read now; retrying')
        await this.pause()
        continue
      }
      if (step.kind === 'items') {
        this.logPath = step.path
        for (const item of step.items) {
          if (this.stopping) return
          await this.process(item)
        }
        if (this.dirty && Date.now() - this.lastCommit >= COMMIT_EVERY_MS) await this.flush()
        continue
      }
      if (step.kind === 'switched') {
        if (step.truncatedTail) {
          this.statsNow.truncated++
          this.log.error({ file: step.from, offset: step.truncatedTail.offset, bytes: step.truncatedTail.bytes }, 'a finished log file ends in an incomplete entry: skipped')
        }
        // Everything read from the finished file goes out before the next file's first entry. The tailer is
        // already in the next file, so the position committed is its start: committing the old file's
        // offset against the new file's identity would skip that many bytes after a restart.
        if (this.batch.length > 0) await this.publish()
        this.logPath = step.to
        this.offset = 0
        this.dirty = true
        await this.commit()
        this.log.info({ from: step.from ?? null, to: step.to }, 'reading the next log file')
        continue
      }
      await this.flush()
      if (once) return
      await this.pause()
    }
  }

  /** Sleeps one poll interval, or until stop(). */
  private async pause(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.config.pollIntervalMs)
      this.wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    this.wake = undefined
  }

  private async process(item: FramedItem): Promise<void> {
    this.statsNow.records++
    if (item.kind === 'oversize') {
      this.statsNow.oversize++
      this.log.error({ file: this.logPath, offset: item.offset, bytes: item.end - item.offset, max_record_bytes: this.config.maxRecordBytes }, 'a log entry longer than maxRecordBytes was skipped unread')
    } else {
      const result = this.parser.parse(item.bytes, item.offset)
      for (const r of result.rejected) {
        this.statsNow.rejected++
        this.log.warn({ file: this.logPath, offset: r.offset }, `log entry rejected: ${r.reason}`)
      }
      for (const entry of result.entries) await this.add(entry)
    }
    this.offset = item.end
    this.dirty = true
    // Between records: the position may be committed here, so a batch that is nearly full goes now.
    if (this.batch.length + this.tables.size > this.config.maxBatchEvents || this.batchBytes + MAX_EVENT_BYTES > this.batchBudget) await this.flush()
  }

  private async add(entry: AuditEntry): Promise<void> {
    const seq = this.statsNow.seq + 1
    this.statsNow.seq = seq
    const event = buildDbAuditEvent(entry, this.config.kind, this.logPath, seq)
    const skip = this.skipThrough
    if (skip && seq <= skip.lastSeq) {
      this.statsNow.skippedAcked++
      if (seq === skip.lastSeq) {
        const last = skip.last
        if (event.log_offset !== last.log_offset || event.object_name !== last.object_name || event.statement_digest !== last.statement_digest) {
          throw new DbAuditError('DB_AUDIT_RESUME_CONFLICT', `reader_seq ${seq} read again from the log is not the entry Kafka holds under it (offset ${event.log_offset} vs ${last.log_offset}): the log changed since it was published`, {
            details: { seq, log_offset: event.log_offset, kafka_log_offset: last.log_offset },
          })
        }
        this.skipThrough = undefined
      }
      return
    }
    // Inside one record (a statement reading many tables, a connection's pending reads flushed): a full batch goes without a commit; the next boundary commits.
    const bytes = estimateEventBytes(event)
    if (this.batch.length >= this.config.maxBatchEvents || this.batchBytes + bytes > this.batchBudget) await this.publish()
    this.batch.push(event)
    this.batchBytes += bytes
  }

  /** Publishes the batch (if any) and commits the position, which is at a record boundary. */
  private async flush(): Promise<void> {
    if (this.batch.length > 0) await this.publish()
    if (this.dirty) await this.commit()
  }

  private async publish(): Promise<void> {
    const events = this.batch
    this.batch = []
    this.batchBytes = 0
    for (const e of events) DbAuditEvent.parse(e)
    const message = this.codec.encode(this.topic, { keyId: this.key.keyId, producerId: this.config.source, service: this.config.service }, events, this.key.privateKey)
    const lastSeq = events[events.length - 1]!.reader_seq
    for (let attempt = 0; ; attempt++) {
      try {
        const [meta] = await this.producer!.send({ topic: this.topic, acks: -1, messages: [{ key: this.config.source, value: message, partition: this.partition }] })
        if (!meta?.baseOffset) throw new Error('Kafka acknowledged the batch without an offset')
        this.nextKafkaOffset = BigInt(meta.baseOffset) + 1n
        break
      } catch (cause) {
        this.statsNow.publishRetries++
        this.log.warn({ err: cause, attempt, first_seq: events[0]!.reader_seq, last_seq: lastSeq }, 'Kafka did not acknowledge a db-audit batch; retrying')
        // The batch may have landed although the acknowledgement was lost: look before sending it again.
        const landed = await findPublishedTail(this.kafka, this.topic, this.partition, this.nextKafkaOffset, { source: this.config.source, publicKey: this.key.publicKey, codec: this.codec }, TOPIC_TIMEOUT_MS).catch(() => undefined)
        if (landed && landed.lastSeq >= lastSeq) {
          this.nextKafkaOffset = landed.nextOffset
          break
        }
        if (this.stopping) throw new DbAuditError('DB_AUDIT_PUBLISH_FAILED', `Kafka did not acknowledge the batch of reader_seq ${events[0]!.reader_seq}..${lastSeq} before the reader stopped; it is read again at the next start`, { cause })
        await new Promise((resolve) => setTimeout(resolve, this.config.retryBackoffMs))
      }
    }
    this.statsNow.published += events.length
    this.statsNow.batches++
  }

  private async commit(): Promise<void> {
    const file = await this.tailer.currentIdentity()
    this.position = {
      ...this.position,
      file,
      offset: file ? this.offset : 0,
      seq: this.statsNow.seq,
      pending: this.parser.snapshot(),
      kafka: { topic: this.topic, partition: this.partition, next_offset: this.nextKafkaOffset.toString() },
    }
    await writePositionFile(positionPath(this.config.stateDir, this.config.source), this.position)
    this.dirty = false
    this.lastCommit = Date.now()
  }

  private async fail(err: unknown): Promise<void> {
    this.stopping = true
    const error = err instanceof Error ? err : new Error(String(err))
    this.log.error({ err: error }, 'db-audit reader stopped')
    this.resolveFailed(error)
  }

  private async release(): Promise<void> {
    await this.tailer.close()
    await this.producer?.disconnect().catch(() => {})
    this.producer = undefined
    this.lock?.release()
    this.lock = undefined
  }
}

/** Creates a DbAuditReader and starts it (resumed, reading in the background). */
export async function runDbAuditReader(options: DbAuditReaderOptions): Promise<DbAuditReader> {
  const reader = new DbAuditReader(options)
  await reader.start()
  return reader
}
