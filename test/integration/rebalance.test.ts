import { describe, expect, it } from 'vitest'
import { createChainWriter, type ChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { TRUSTED_WRITER, testSigningKey } from '../helpers/producer-trust.js'

describe('partitions moving between chain writers', () => {
  it('keeps every chain contiguous and exactly-once while writers join and leave the group', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 6)
    const store = await openTestStore()
    const registry = loadSchemaRegistry()
    const groupId = `${topic}-writers`
    const writer = (): ChainWriter =>
      createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId, sessionTimeoutMs: 6000, ...TRUSTED_WRITER }), kafka, store, registry, logger: testLogger })
    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'svc', signingKey: testSigningKey('svc') }, { kafka, logger: testLogger })
    const ids: string[] = []
    const produce = async (n: number) => {
      const acks = await Promise.all(
        Array.from({ length: n }, (_, i) => producer.recordRead({ principal: { id: `p${i % 4}` }, resource: { database: 'db', table: 't' }, columns: ['id'], recordIds: [i] })),
      )
      for (const a of acks) ids.push(...a.eventIds)
    }
    try {
      const a = writer()
      await a.start()
      await produce(3000)
      // B joins: the group rebalances and B takes some of A's partitions,
      // reading their heads back from ClickHouse.
      const b = writer()
      await b.start()
      await produce(3000)
      await waitForCatchUp(kafka, groupId, topic)
      expect(a.stats().stored).toBeGreaterThan(0)
      expect(b.stats().stored).toBeGreaterThan(0)
      // A leaves cleanly: B takes every partition and continues each chain.
      await a.stop()
      await produce(3000)
      await waitForCatchUp(kafka, groupId, topic)
      await b.stop()
      expect(a.stats().stored + b.stats().stored).toBe(9000)
      await expectIntactChains(store, ids)
    } finally {
      await producer.close()
    }
  })
})
