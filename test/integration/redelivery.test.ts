import { describe, expect, it } from 'vitest'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { testSigningKey, TRUSTED_WRITER } from '../helpers/producer-trust.js'

describe('redelivery of stored messages neither forks nor duplicates the chain', () => {
  it('skips everything ClickHouse already holds when offsets were never committed', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 2)
    const store = await openTestStore()
    const registry = loadSchemaRegistry()
    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'svc', signingKey: testSigningKey('svc') }, { kafka, logger: testLogger })
    const read = (i: number) =>
      producer.recordRead({ principal: { id: `p${i % 3}` }, resource: { database: 'db', table: 't' }, columns: ['id'], recordIds: [i] })
    const ids: string[] = []
    for (const r of await Promise.all(Array.from({ length: 300 }, (_, i) => read(i)))) ids.push(...r.eventIds)

    // First writer stores 300 events and commits under its group.
    const first = createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId: `${topic}-a`, ...TRUSTED_WRITER }), kafka, store, registry, logger: testLogger })
    await first.start()
    await waitForCatchUp(kafka, `${topic}-a`, topic)
    await first.stop()

    for (const r of await Promise.all(Array.from({ length: 200 }, (_, i) => read(300 + i)))) ids.push(...r.eventIds)
    await producer.close()

    // A writer whose group has no committed offsets sees all 500 again: the
    // same as a crash after the insert but before the commit.
    const second = createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId: `${topic}-b`, ...TRUSTED_WRITER }), kafka, store, registry, logger: testLogger })
    await second.start()
    await waitForCatchUp(kafka, `${topic}-b`, topic)
    await second.stop()

    // No chain was ever signed here: every stored row is re-derived from its
    // Kafka message (byte for byte) before the writer appends after it.
    expect(second.stats()).toMatchObject({ rederived: 300, stored: 200, redelivered: 0 })
    await expectIntactChains(store, ids)
  })
})
