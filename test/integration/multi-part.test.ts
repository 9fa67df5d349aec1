import { describe, expect, it } from 'vitest'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { recordsTouchedByPrincipal } from '../../queries/records-touched-by-principal.js'
import { runSavedQuery } from '../../queries/saved-query.js'
import { whoTouchedRecord } from '../../queries/who-touched-record.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { testSigningKey, TRUSTED_WRITER } from '../helpers/producer-trust.js'

describe('a read too large for one message', () => {
  it('is split into parts sharing a read id, each record counted once, under a small message limit', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 3)
    const store = await openTestStore()
    const groupId = `${topic}-writer`
    const writer = createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId, ...TRUSTED_WRITER }), kafka, store, registry: loadSchemaRegistry(), logger: testLogger })
    await writer.start()
    // 8 KiB messages and requests: a 5,000-row export cannot fit one, and
    // requests stay under the limit although many parts are queued at once.
    const producer = await createAuditProducer(
      { kafka: testKafkaConnection(), topic, service: 'registry-export', signingKey: testSigningKey('registry-export'), maxMessageBytes: 8192, maxBatchBytes: 8192 },
      { kafka, logger: testLogger },
    )
    try {
      const ids = Array.from({ length: 5000 }, (_, i) => `applicant-${100_000 + i}`)
      const bulk = await producer.recordRead({
        principal: { id: 'clerk.marta' },
        action: 'export',
        resource: { database: 'admissions', table: 'applicants' },
        columns: ['id', 'full_name', 'birth_date', 'phone', 'address'],
        recordIds: ids,
        query: 'SELECT * FROM applicants ORDER BY id',
      })
      const single = await producer.recordRead({ principal: { id: 'clerk.anna' }, resource: { database: 'admissions', table: 'applicants' }, columns: ['id'], recordIds: [ids[4321]!] })
      expect(bulk.eventIds.length).toBeGreaterThan(10)
      expect(bulk.producerSeqs).toEqual(bulk.eventIds.map((_, i) => i + 1))
      await waitForCatchUp(kafka, groupId, topic)

      await expectIntactChains(store, [...bulk.eventIds, ...single.eventIds])
      const parts = await store.queryRows<{ read_id: string; parts: number; part_count: number; ids: number; row_count: number; indexes: number[] }>(
        `SELECT toString(read_id) AS read_id, count() AS parts, any(part_count) AS part_count, sum(length(record_ids)) AS ids,
                any(row_count) AS row_count, arraySort(groupArray(part_index)) AS indexes
         FROM ${store.table('access_log')} WHERE principal_id = 'clerk.marta' GROUP BY read_id`,
      )
      expect(parts).toEqual([
        { read_id: bulk.readId, parts: bulk.eventIds.length, part_count: bulk.eventIds.length, ids: 5000, row_count: 5000, indexes: bulk.eventIds.map((_, i) => i) },
      ])

      const { rows: touched } = await runSavedQuery(store, recordsTouchedByPrincipal, { principal: 'clerk.marta' })
      expect(touched.map((r) => r.record_id).sort()).toEqual([...ids].sort())
      expect(touched.every((r) => Number(r.access_count) === 1)).toBe(true)
      const { rows: who } = await runSavedQuery(store, whoTouchedRecord, { table: 'applicants', record: ids[4321]! })
      expect(who.map((w) => w.principal_id).sort()).toEqual(['clerk.anna', 'clerk.marta'])
    } finally {
      await producer.close()
      await writer.stop()
    }
  })
})
