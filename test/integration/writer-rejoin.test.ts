import { describe, expect, it } from 'vitest'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import type { Store } from '../../store/store.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { TRUSTED_WRITER, testSigningKey } from '../helpers/producer-trust.js'

describe('a writer the group coordinator forgot', () => {
  it('joins again with a new consumer and stores every event once', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const real = await openTestStore()
    // The first insert outlasts the session timeout, as a batch on a loaded
    // machine can: the coordinator drops the member and its commit fails
    // with a non-retriable error, after which kafkajs gives up on it.
    let slowInserts = 1
    const store: Store = {
      ...real,
      insertRowBinary: async (...args: Parameters<Store['insertRowBinary']>) => {
        if (slowInserts-- > 0) await new Promise((r) => setTimeout(r, 9_000))
        return real.insertRowBinary(...args)
      },
    }
    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'svc', signingKey: testSigningKey('svc') }, { kafka, logger: testLogger })
    const ids: string[] = []
    const read = (i: number) => producer.recordRead({ principal: { id: `p${i % 3}` }, resource: { database: 'db', table: 't' }, columns: ['id'], recordIds: [i] })
    for (const r of await Promise.all(Array.from({ length: 200 }, (_, i) => read(i)))) ids.push(...r.eventIds)

    const groupId = `${topic}-w`
    const writer = createChainWriter({ trust: UNSIGNED_CHAINS,
      config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId, sessionTimeoutMs: 6000, ...TRUSTED_WRITER }),
      kafka,
      store,
      registry: loadSchemaRegistry(),
      logger: testLogger,
    })
    await writer.start()
    await new Promise((r) => setTimeout(r, 10_000))
    for (const r of await Promise.all(Array.from({ length: 100 }, (_, i) => read(200 + i)))) ids.push(...r.eventIds)
    await producer.close()
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 90_000 })
    await writer.stop()

    expect(slowInserts).toBeLessThan(0)
    expect(writer.stats().stored).toBe(300)
    await expectIntactChains(real, ids)
  })
})
