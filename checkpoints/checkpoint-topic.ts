import { randomUUID } from 'node:crypto'
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs'
import { createTopicsAndWait, retryWhileSettling, TOPIC_SETTLE_TIMEOUT_MS } from '../common/kafka.js'
import { formatCheckpointLine, type SignedCheckpoint } from './checkpoint.js'
import { parseCheckpointText } from './checkpoint-log.js'
import { CheckpointError } from './errors.js'

export interface CheckpointTopicContents {
  /** True when the topic does not exist. */
  missing: boolean
  /** Messages that parsed as checkpoints, in offset order (per partition). */
  entries: { offset: string; checkpoint: SignedCheckpoint }[]
  /** Messages that did not, with why. */
  unreadable: { offset: string; problem: string }[]
  /**
   * The topic's log-start offset (highest over its partitions; '0' when
   * missing). Checkpoints are kept forever, so anything above 0 means
   * records were deleted (delete-records admin API, or retention changed).
   */
  logStart: string
}

export interface ReadCheckpointTopicOptions {
  /** Give up (CHECKPOINT_TOPIC_UNAVAILABLE, retriable) after this long. @default 30000 */
  timeoutMs?: number
}

/** The Kafka copy of the checkpoints for an access topic. */
export function checkpointTopicOf(accessTopic: string): string {
  return `${accessTopic}.checkpoints`
}

function unavailable(topic: string, what: string, cause: unknown): CheckpointError {
  return new CheckpointError('CHECKPOINT_TOPIC_UNAVAILABLE', `checkpoint topic ${topic}: ${what}: ${(cause as Error).message}`, { cause, details: { topic } })
}

/**
 * Creates the checkpoint topic if missing (idempotent). One partition keeps
 * the checkpoints in signing order; retention is unlimited because a
 * checkpoint that expired can no longer expose a rolled-back file.
 */
export async function ensureCheckpointTopic(kafka: Kafka, topic: string, replicationFactor = 1, timeoutMs = TOPIC_SETTLE_TIMEOUT_MS): Promise<{ created: boolean }> {
  const deadline = Date.now() + timeoutMs
  const admin = kafka.admin()
  try {
    await admin.connect()
    const existing = new Set(await admin.listTopics())
    if (existing.has(topic)) {
      await retryWhileSettling(() => assertKeptForever(admin, topic), deadline)
      return { created: false }
    } else {
      // On a freshly formatted broker the new topic answers "does not host this topic-partition" for a moment: waited out, up to the deadline.
      await createTopicsAndWait(
        admin,
        [
          {
            topic,
            numPartitions: 1,
            replicationFactor,
            configEntries: [
              { name: 'retention.ms', value: '-1' },
              { name: 'retention.bytes', value: '-1' },
              { name: 'cleanup.policy', value: 'delete' },
            ],
          },
        ],
        deadline,
      )
      return { created: true }
    }
  } catch (cause) {
    if (cause instanceof CheckpointError) throw cause
    throw unavailable(topic, 'cannot create it', cause)
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

/** kafkajs ConfigResourceTypes.TOPIC (not a named export under ESM). */
const TOPIC_RESOURCE = 2

/**
 * A topic created by someone else may expire its messages: checkpoints that
 * expire can no longer expose a rolled-back file, so such a topic is refused
 * loudly rather than used.
 */
async function assertKeptForever(admin: Admin, topic: string): Promise<void> {
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ['retention.ms', 'retention.bytes', 'cleanup.policy'] }] })
  const entries = new Map(described.resources[0]?.configEntries.map((e) => [e.configName, e.configValue]) ?? [])
  const wrong = [
    entries.get('retention.ms') !== '-1' ? `retention.ms=${entries.get('retention.ms')}` : '',
    entries.get('retention.bytes') !== '-1' ? `retention.bytes=${entries.get('retention.bytes')}` : '',
    entries.get('cleanup.policy') !== 'delete' ? `cleanup.policy=${entries.get('cleanup.policy')}` : '',
  ].filter(Boolean)
  if (wrong.length > 0) {
    throw new CheckpointError(
      'CHECKPOINT_TOPIC_INVALID',
      `checkpoint topic ${topic} would not keep checkpoints forever (${wrong.join(', ')}); set retention.ms=-1, retention.bytes=-1, cleanup.policy=delete`,
      { details: { topic, wrong } },
    )
  }
}

/** Publishes checkpoints (already fsync'd to the file) with acks from every in-sync replica. */
export async function publishCheckpoints(producer: Producer, topic: string, cps: readonly SignedCheckpoint[]): Promise<void> {
  if (cps.length === 0) return
  try {
    await producer.send({ topic, acks: -1, messages: cps.map((cp) => ({ key: cp.chain_id, value: formatCheckpointLine(cp) })) })
  } catch (cause) {
    throw unavailable(topic, `cannot publish ${cps.length} checkpoint(s)`, cause)
  }
}

/**
 * Reads every message from the beginning up to the high watermark taken at
 * the start, through a throwaway consumer group that commits nothing and is
 * deleted afterwards. Every message is attacker-controlled: one that is not a
 * well-formed signed checkpoint is reported in `unreadable`, never thrown.
 */
export async function readCheckpointTopic(kafka: Kafka, topic: string, options: ReadCheckpointTopicOptions = {}): Promise<CheckpointTopicContents> {
  const timeoutMs = options.timeoutMs ?? 30_000
  const deadline = Date.now() + timeoutMs
  const admin = kafka.admin()
  let consumer: Consumer | undefined
  const groupId = `readtrail-checkpoint-reader-${randomUUID()}`
  try {
    await withDeadline(admin.connect(), deadline, topic)
    const topics = await withDeadline(admin.listTopics(), deadline, topic)
    if (!topics.includes(topic)) return { missing: true, entries: [], unreadable: [], logStart: '0' }
    // A topic listed a moment after its creation may not serve its offsets yet.
    const ends = await withDeadline(retryWhileSettling(() => admin.fetchTopicOffsets(topic), deadline), deadline, topic)
    const logStart = ends.reduce((m, e) => (BigInt(e.low) > m ? BigInt(e.low) : m), 0n).toString()
    // Messages at or past the high watermark arrived after the read began and are left to the next read.
    const highOf = new Map(ends.map((e) => [e.partition, BigInt(e.high)]))
    const pending = new Set(ends.filter((e) => BigInt(e.high) > BigInt(e.low)).map((e) => e.partition))
    const out: CheckpointTopicContents = { missing: false, entries: [], unreadable: [], logStart }
    if (pending.size === 0) return out

    consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 200 })
    const c = consumer
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        // A fresh group often meets a coordinator still loading; kafkajs
        // restarts the consumer for such errors, and the deadline bounds it.
        c.on(c.events.CRASH, (e) => {
          if (!e.payload.restart) reject(e.payload.error)
        })
        const run = async () => {
          await c.connect()
          await c.subscribe({ topics: [topic], fromBeginning: true })
          await c.run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const high = highOf.get(batch.partition) ?? 0n
              for (const message of batch.messages) {
                if (BigInt(message.offset) >= high) break
                const parsed = message.value === null ? { ok: false as const, problem: 'message has no value' } : parseCheckpointText(message.value.toString('utf8'))
                if (parsed.ok) out.entries.push({ offset: message.offset, checkpoint: parsed.checkpoint })
                else out.unreadable.push({ offset: message.offset, problem: parsed.problem })
              }
              if (BigInt(batch.lastOffset()) + 1n >= high) {
                pending.delete(batch.partition)
                if (pending.size === 0) resolve()
              }
            },
          })
        }
        run().catch(reject)
      }),
      deadline,
      topic,
    )
    return out
  } catch (cause) {
    if (cause instanceof CheckpointError) throw cause
    throw unavailable(topic, 'cannot read it', cause)
  } finally {
    await consumer?.disconnect().catch(() => {})
    if (consumer) await deleteGroup(admin, groupId)
    await admin.disconnect().catch(() => {})
  }
}

/** The reader's group is useless once read; leaving it would pile up one group per read. */
async function deleteGroup(admin: Admin, groupId: string): Promise<void> {
  try {
    await admin.deleteGroups([groupId])
  } catch {
    // Best effort: an empty group the broker expires on its own is harmless.
  }
}

async function withDeadline<T>(promise: Promise<T>, deadline: number, topic: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new CheckpointError('CHECKPOINT_TOPIC_UNAVAILABLE', `checkpoint topic ${topic}: read timed out`, { details: { topic } })),
      Math.max(0, deadline - Date.now()),
    )
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
