import { randomUUID } from 'node:crypto'
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs'
import { ReadtrailError } from './errors.js'
import { registerSnappyCodec } from './kafka.js'

// Bounded reads of any topic through a throwaway group: what verify holds
// the chains against, and where the chain writer looks for its own dead
// letters. Kafka is attacker-controlled too, so every read has a deadline.

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

export function kafkaUnavailable(what: string, cause?: unknown): ReadtrailError {
  return new ReadtrailError('KAFKA_UNAVAILABLE', `${what}${cause ? `: ${(cause as Error).message}` : ''}`, { cause })
}

export async function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(kafkaUnavailable(`${what}: timed out`)), Math.max(0, deadline - Date.now()))
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export async function withAdmin<T>(kafka: Kafka, deadline: number, what: string, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin()
  try {
    await withDeadline(admin.connect(), deadline, what)
    return await withDeadline(use(admin), deadline, what)
  } catch (cause) {
    if (cause instanceof ReadtrailError) throw cause
    throw kafkaUnavailable(what, cause)
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

/** Watermarks of any topic (the dead-letter topic, the checkpoint topic); null when it does not exist. */
export async function readWatermarks(kafka: Kafka, topic: string, timeoutMs: number): Promise<{ partition: number; low: bigint; high: bigint }[] | null> {
  return withAdmin(kafka, Date.now() + timeoutMs, `reading offsets of ${topic}`, async (admin) => {
    if (!(await admin.listTopics()).includes(topic)) return null
    return (await admin.fetchTopicOffsets(topic)).map((e) => ({ partition: e.partition, low: BigInt(e.low), high: BigInt(e.high) }))
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
  // Events and dead letters are compressed with whatever codec their producer chose.
  registerSnappyCodec()
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
    throw kafkaUnavailable(`reading ${topic}`, cause)
  } finally {
    await consumer.disconnect().catch(() => {})
    await withAdmin(kafka, Date.now() + 5_000, `deleting group ${groupId}`, (admin) => admin.deleteGroups([groupId])).catch(() => {})
  }
}
