import { randomUUID } from 'node:crypto'
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs'
import { ReadtrailError } from '../common/errors.js'

/** The access topic and the chain writer's consumer group: what the chains must agree with. */
export interface KafkaLog {
  kafka: Kafka
  topic: string
  groupId: string
}

/** One partition of the access topic as the broker reports it. */
export interface PartitionState {
  partition: number
  /** Log-start offset: messages below it are gone from Kafka. */
  low: bigint
  /** High watermark: the next offset the partition will give out. */
  high: bigint
  /** The group's committed offset (the next message the writer would read); null when none. */
  committed: bigint | null
}

/** Offsets from..to (inclusive) of one partition. */
export interface MessageRange {
  partition: number
  from: bigint
  to: bigint
}

export interface ReadBounds {
  /** Give up (KAFKA_UNAVAILABLE, retriable) after this long. */
  timeoutMs: number
  /** Stop after this many messages; the answer then says it is incomplete. */
  maxMessages: number
}

function unavailable(what: string, cause?: unknown): ReadtrailError {
  return new ReadtrailError('KAFKA_UNAVAILABLE', `${what}${cause ? `: ${(cause as Error).message}` : ''}`, { cause, retriable: true })
}

async function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable(`${what}: timed out`)), Math.max(0, deadline - Date.now()))
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function withAdmin<T>(kafka: Kafka, deadline: number, what: string, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin()
  try {
    await withDeadline(admin.connect(), deadline, what)
    return await withDeadline(use(admin), deadline, what)
  } catch (cause) {
    if (cause instanceof ReadtrailError) throw cause
    throw unavailable(what, cause)
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

/** Partitions of `topic` with their watermarks and the group's committed offsets; null when the topic does not exist. */
export async function readPartitionStates(log: KafkaLog, timeoutMs: number): Promise<PartitionState[] | null> {
  const deadline = Date.now() + timeoutMs
  return withAdmin(log.kafka, deadline, `reading partitions of ${log.topic}`, async (admin) => {
    if (!(await admin.listTopics()).includes(log.topic)) return null
    const ends = await admin.fetchTopicOffsets(log.topic)
    const committed = await admin.fetchOffsets({ groupId: log.groupId, topics: [log.topic] })
    const byPartition = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, p.offset]))
    return ends
      .map((e) => {
        const c = byPartition.get(e.partition)
        return { partition: e.partition, low: BigInt(e.low), high: BigInt(e.high), committed: c === undefined || BigInt(c) < 0n ? null : BigInt(c) }
      })
      .sort((a, b) => a.partition - b.partition)
  })
}

/** Watermarks of any topic (the dead-letter topic, the checkpoint topic); null when it does not exist. */
export async function readWatermarks(kafka: Kafka, topic: string, timeoutMs: number): Promise<{ partition: number; low: bigint; high: bigint }[] | null> {
  return withAdmin(kafka, Date.now() + timeoutMs, `reading offsets of ${topic}`, async (admin) => {
    if (!(await admin.listTopics()).includes(topic)) return null
    return (await admin.fetchTopicOffsets(topic)).map((e) => ({ partition: e.partition, low: BigInt(e.low), high: BigInt(e.high) }))
  })
}

/** kafkajs ConfigResourceTypes.TOPIC (not a named export under ESM). */
const TOPIC_RESOURCE = 2

/** The named configs of a topic as the broker reports them (synonyms resolved by the broker). */
export async function readTopicConfig(kafka: Kafka, topic: string, names: readonly string[], timeoutMs: number): Promise<Map<string, string | null>> {
  return withAdmin(kafka, Date.now() + timeoutMs, `reading the configuration of ${topic}`, async (admin) => {
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: [...names] }] })
    return new Map((described.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]))
  })
}

/**
 * Reads the messages of `ranges` (clamp them to the watermarks first: an
 * offset that does not exist is never delivered and the read would wait for
 * it until the deadline) through a throwaway group that commits nothing and
 * is deleted afterwards, seeking from range to range so sparse ranges cost
 * only their own messages. Returns false when maxMessages stopped it.
 */
export async function readMessages(
  kafka: Kafka,
  topic: string,
  ranges: readonly MessageRange[],
  bounds: ReadBounds,
  onMessage: (partition: number, message: KafkaMessage) => void,
): Promise<boolean> {
  const byPartition = new Map<number, MessageRange[]>()
  for (const r of ranges) if (r.to >= r.from) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r])
  if (byPartition.size === 0) return true
  for (const list of byPartition.values()) list.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0))
  const next = new Map([...byPartition.keys()].map((p) => [p, 0]))
  const deadline = Date.now() + bounds.timeoutMs
  const groupId = `readtrail-verify-reader-${randomUUID()}`
  const consumer: Consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 200 })
  let read = 0
  let complete = true
  try {
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        const pending = new Set(byPartition.keys())
        const done = (partition: number) => {
          pending.delete(partition)
          if (pending.size === 0) resolve()
        }
        consumer.on(consumer.events.CRASH, (e) => {
          if (!e.payload.restart) reject(e.payload.error)
        })
        const run = async () => {
          await consumer.connect()
          await consumer.subscribe({ topics: [topic], fromBeginning: true })
          await consumer.run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const list = byPartition.get(batch.partition)
              if (!list || !pending.has(batch.partition)) return
              let i = next.get(batch.partition)!
              for (const message of batch.messages) {
                const offset = BigInt(message.offset)
                while (i < list.length && offset > list[i]!.to) i++
                if (i >= list.length) break
                if (offset < list[i]!.from) {
                  // Behind the range (the first fetch, or the gap between two ranges): jump ahead.
                  next.set(batch.partition, i)
                  consumer.seek({ topic, partition: batch.partition, offset: list[i]!.from.toString() })
                  return
                }
                if (read >= bounds.maxMessages) {
                  complete = false
                  resolve()
                  return
                }
                read++
                onMessage(batch.partition, message)
              }
              while (i < list.length && BigInt(batch.lastOffset()) >= list[i]!.to) i++
              next.set(batch.partition, i)
              if (i >= list.length) done(batch.partition)
              else if (BigInt(batch.lastOffset()) + 1n < list[i]!.from) consumer.seek({ topic, partition: batch.partition, offset: list[i]!.from.toString() })
            },
          })
          for (const [partition, list] of byPartition) consumer.seek({ topic, partition, offset: list[0]!.from.toString() })
        }
        run().catch(reject)
      }),
      deadline,
      `reading ${topic}`,
    )
    return complete
  } catch (cause) {
    if (cause instanceof ReadtrailError) throw cause
    throw unavailable(`reading ${topic}`, cause)
  } finally {
    await consumer.disconnect().catch(() => {})
    await withAdmin(kafka, Date.now() + 5_000, `deleting group ${groupId}`, (admin) => admin.deleteGroups([groupId])).catch(() => {})
  }
}

export const SOURCE_HEADER = 'readtrail-source'

/**
 * The `<topic>/<partition>@<offset>` every dead letter names as its source
 * (consumers/chain-writer.ts sendDeadLetters), for the sources of `topic`
 * only. `complete` is false when the dead-letter topic held more than
 * maxMessages, and `missing` true when it does not exist.
 */
export async function readDeadLetterSources(
  kafka: Kafka,
  deadLetterTopic: string,
  sourceTopic: string,
  bounds: ReadBounds,
): Promise<{ sources: Set<string>; complete: boolean; missing: boolean }> {
  const marks = await readWatermarks(kafka, deadLetterTopic, bounds.timeoutMs)
  if (marks === null) return { sources: new Set(), complete: true, missing: true }
  const sources = new Set<string>()
  const prefix = `${sourceTopic}/`
  const complete = await readMessages(
    kafka,
    deadLetterTopic,
    marks.map((m) => ({ partition: m.partition, from: m.low, to: m.high - 1n })),
    bounds,
    (_, message) => {
      const raw = message.headers?.[SOURCE_HEADER]
      const value = Array.isArray(raw) ? raw[0] : raw
      const text = value === undefined ? '' : value.toString()
      if (text.startsWith(prefix) && text.length < 1024) sources.add(text)
    },
  )
  return { sources, complete, missing: false }
}
