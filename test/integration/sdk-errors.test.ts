import { describe, expect, it } from 'vitest'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { InputError } from '../../schemas/errors.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { testSigningKey } from '../helpers/producer-trust.js'

describe('SDK errors are coded, name what is wrong, and publish nothing', () => {
  it('rejects an invalid read with every bad field named, and keeps the producer sequence gap-free', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'svc', signingKey: testSigningKey('svc') }, { kafka, logger: testLogger })
    try {
      const bad = producer.recordRead({
        principal: { id: '', type: 'robot' as 'user' },
        clientIp: '999.1.1.1',
        resource: { database: 'db', table: 't' },
        columns: [],
        recordIds: [1],
        rowCount: -1,
        surprise: true,
      } as never)
      const err = await bad.catch((e: unknown) => e)
      expect(err).toBeInstanceOf(InputError)
      expect((err as InputError).code).toBe('INPUT_INVALID')
      expect((err as InputError).issues.map((i) => i.field).sort()).toEqual(['clientIp', 'columns', 'principal.id', 'principal.type', 'rowCount', 'surprise'])

      await expect(producer.recordRead({ principal: { id: 'p' }, resource: { database: 'db', table: 't' }, columns: ['id'], recordIds: ['x'.repeat(600)] })).rejects.toMatchObject({ code: 'INPUT_INVALID' })
      await expect(producer.recordRead({ principal: { id: 'p' }, sessionId: 's', resource: { database: 'db', table: 't' }, columns: ['id'], recordIds: [1] })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })

      // Refused reads took no sequence numbers.
      const ok = await producer.recordRead({ principal: { id: 'p' }, resource: { database: 'db', table: 't' }, columns: ['id'], recordIds: [1] })
      expect(ok.producerSeqs).toEqual([1])
    } finally {
      await producer.close()
    }
    await expect(producer.recordRead({ principal: { id: 'p' }, resource: { database: 'db', table: 't' }, columns: ['id'], recordIds: [1] })).rejects.toMatchObject({ code: 'PRODUCER_CLOSED' })
  })

  it('refuses invalid configuration at creation, naming every key', async () => {
    const err = await createAuditProducer({ service: '', lingerMs: -1, kafka: { brokers: ['nohost'] }, colour: 'red' } as never).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'CONFIG_INVALID' })
    const keys = ((err as { details: { issues: { key: string }[] } }).details.issues).map((i) => i.key).sort()
    expect(keys).toEqual(['colour', 'kafka.brokers.0', 'lingerMs', 'service'])
  })
})
