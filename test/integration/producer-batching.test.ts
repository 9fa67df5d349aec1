import { describe, expect, it } from 'vitest'
import { isReadtrailError } from '../../common/errors.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { testSigningKey } from '../helpers/producer-trust.js'

const read = (i: number, ids = 1) => ({
  principal: { id: `clerk-${i % 7}` },
  resource: { database: 'registry', table: 'students' },
  columns: ['id', 'name'],
  recordIds: Array.from({ length: ids }, (_, k) => `${i}-${k}`),
})

async function messagesIn(topic: string): Promise<number> {
  const admin = testKafka().admin()
  await admin.connect()
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0)
  } finally {
    await admin.disconnect()
  }
}

describe('the producer batches by load', () => {
  it('with lingerMs, a steady stream of reads shares messages: each request carries the reads of one linger, not of one round trip', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'svc', signingKey: testSigningKey('svc'), lingerMs: 20 }, { kafka, logger: testLogger })
    try {
      const acks: Promise<unknown>[] = []
      // 600 reads over about 300 ms: 2 every millisecond.
      for (let i = 0; i < 300; i++) {
        acks.push(producer.recordRead(read(2 * i)), producer.recordRead(read(2 * i + 1)))
        await new Promise((r) => setTimeout(r, 1))
      }
      await Promise.all(acks)
      const messages = await messagesIn(topic)
      expect(producer.stats()).toMatchObject({ acked: 600, failed: 0 })
      // At most one message per linger while reads keep coming (plus the first, sent at once).
      expect(messages).toBeLessThan(60)
      expect(messages).toBeGreaterThan(1)
    } finally {
      await producer.close()
    }
  })

  it('an idle producer sends each read at once, one message each', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'svc', signingKey: testSigningKey('svc') }, { kafka, logger: testLogger })
    try {
      for (let i = 0; i < 5; i++) await producer.recordRead(read(i))
      expect(await messagesIn(topic)).toBe(5)
    } finally {
      await producer.close()
    }
  })
})

describe('overload', () => {
  it('past maxQueuedBytes a read is refused with PRODUCER_OVERLOADED before it takes a seq: memory stays bounded and the sequence has no hole', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const producer = await createAuditProducer(
      { kafka: testKafkaConnection(), topic, service: 'svc', signingKey: testSigningKey('svc'), maxQueuedBytes: 64 * 1024, lingerMs: 50 },
      { kafka, logger: testLogger },
    )
    try {
      // 2,000 reads of 50 ids in one tick: about 1 MB of events, far over the bound.
      const outcomes = await Promise.allSettled(Array.from({ length: 2000 }, (_, i) => producer.recordRead(read(i, 50))))
      const refused = outcomes.filter((o) => o.status === 'rejected')
      const recorded = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []))
      expect(refused.length).toBeGreaterThan(1000)
      expect(recorded.length).toBeGreaterThan(10)
      for (const o of refused) {
        const err = (o as PromiseRejectedResult).reason as unknown
        expect(isReadtrailError(err) && err.code).toBe('PRODUCER_OVERLOADED')
        expect(isReadtrailError(err) && err.retriable).toBe(true)
      }
      // Refused reads took no number: the recorded ones are 1..n without a hole.
      expect(recorded.flatMap((r) => r.producerSeqs).sort((a, b) => a - b)).toEqual(recorded.map((_, i) => i + 1))
      // Once the queue drained, reads are taken again.
      await expect(producer.recordRead(read(99_999))).resolves.toMatchObject({ producerSeqs: [recorded.length + 1] })
    } finally {
      await producer.close()
    }
  })
})
