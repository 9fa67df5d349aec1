import type { Kafka } from 'kafkajs'

/**
 * Messages on `topic` the group has not committed yet, summed over
 * partitions. Zero means every produced event is in a chain (or in the
 * dead-letter topic).
 */
export async function consumerLag(kafka: Kafka, groupId: string, topic: string): Promise<bigint> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })])
    const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]))
    let lag = 0n
    for (const end of ends) {
      const high = BigInt(end.high)
      const low = BigInt(end.low)
      const at = done.get(end.partition) ?? -1n
      lag += high - (at < 0n ? low : at)
    }
    return lag
  } finally {
    await admin.disconnect()
  }
}

/**
 * Polls until the group has caught up with everything produced so far. A
 * broker that just restarted answers "coordinator loading" for a while:
 * retriable errors are polled through until the deadline.
 */
export async function waitForCatchUp(kafka: Kafka, groupId: string, topic: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000)
  for (;;) {
    let lag: bigint | string
    try {
      lag = await consumerLag(kafka, groupId, topic)
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable || Date.now() > deadline) throw err
      lag = `unknown (${(err as Error).message})`
    }
    if (lag === 0n) return
    if (Date.now() > deadline) throw new Error(`consumer group ${groupId} still ${lag} messages behind on ${topic}`)
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250))
  }
}
