import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Kafka } from 'kafkajs'
import { createChainWriter, type ChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { HASH_SQL } from '../../store/access-log-columns.js'
import { createAuditProducer, type AuditProducer } from '../../producers/audit-producer.js'
import { recordsTouchedByPrincipal } from '../../queries/records-touched-by-principal.js'
import { runSavedQuery } from '../../queries/saved-query.js'
import { whoTouchedRecord } from '../../queries/who-touched-record.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import type { Store } from '../../store/store.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { isoToMicros, planWorkload, type Truth } from '../helpers/workload.js'
import { TRUSTED_WRITER, testSigningKey } from '../helpers/producer-trust.js'

const PRINCIPALS = ['clerk.anna', 'svc.reporting', 'clerk.marta']
const READS = 10_500

describe('pipeline: SDK → Kafka → chain writer → ClickHouse → saved queries → verify', () => {
  let kafka: Kafka
  let store: Store
  let writer: ChainWriter
  let producer: AuditProducer
  let topic: string
  let truth: Truth
  const eventIds: string[] = []

  beforeAll(async () => {
    kafka = testKafka()
    topic = await freshTopic(kafka, 3)
    store = await openTestStore()
    writer = createChainWriter({ trust: UNSIGNED_CHAINS,
      config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId: `${topic}-writer`, ...TRUSTED_WRITER }),
      kafka,
      store,
      registry: loadSchemaRegistry(),
      logger: testLogger,
    })
    await writer.start()
    producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'registry-api', signingKey: testSigningKey('registry-api'), environment: 'test' }, { kafka, logger: testLogger })
    const plan = planWorkload({ reads: READS, principals: PRINCIPALS })
    truth = plan.truth
    const acks = await Promise.all(plan.reads.map((r) => producer.recordRead(r)))
    for (const a of acks) eventIds.push(...a.eventIds)
    await waitForCatchUp(kafka, `${topic}-writer`, topic, { timeoutMs: 180_000 })
  })

  afterAll(async () => {
    await producer?.close()
    await writer?.stop()
  })

  it('stores every produced event exactly once, in contiguous chains over every partition, and verify passes', async () => {
    expect(eventIds).toHaveLength(READS)
    await expectIntactChains(store, eventIds)
    const chains = await store.queryRows<{ chain_id: string }>(`SELECT DISTINCT chain_id FROM ${store.table('access_log')}`)
    expect(chains.map((c) => c.chain_id).sort()).toEqual([0, 1, 2].map((p) => `${topic}/${p}`))
    expect(writer.stats().stored).toBe(READS)
  })

  it('stores hashes that ClickHouse recomputes byte for byte from the stored columns', async () => {
    const [row] = await store.queryRows<{ rows: number; same: number }>(
      `SELECT count() AS rows, countIf(hash = ${HASH_SQL}) AS same FROM ${store.table('access_log')}`,
    )
    expect(Number(row!.rows)).toBe(READS)
    expect(Number(row!.same)).toBe(READS)
  })

  it('records-touched-by-principal returns exactly what each principal read', async () => {
    for (const principal of PRINCIPALS) {
      const { rows } = await runSavedQuery(store, recordsTouchedByPrincipal, { principal, limit: 0 })
      const expected = truth.byPrincipal.get(principal)!
      expect(rows.length).toBe(expected.size)
      for (const r of rows) {
        const t = expected.get(`${r.table}/${r.record_id}`)
        expect(t, `${principal} ${r.table}/${r.record_id}`).toBeDefined()
        expect(Number(r.access_count)).toBe(t!.count)
        expect(r.columns).toEqual([...t!.columns].sort())
        expect(isoToMicros(r.first_access)).toBe(t!.first)
        expect(isoToMicros(r.last_access)).toBe(t!.last)
        expect(r.database).toBe('registry')
      }
    }
  })

  it('records-touched-by-principal honours the [from, to) window', async () => {
    const principal = PRINCIPALS[0]!
    const all = [...truth.byRecord.entries()].flatMap(([key, who]) => who.filter((w) => w.principal === principal).map((w) => ({ key, at: w.at })))
    const times = all.map((a) => a.at).sort((a, b) => a - b)
    const from = times[Math.floor(times.length / 3)]!
    const to = times[Math.floor((2 * times.length) / 3)]!
    const expectedKeys = new Set(all.filter((a) => a.at >= from && a.at < to).map((a) => a.key))
    const { rows } = await runSavedQuery(store, recordsTouchedByPrincipal, {
      principal,
      limit: 0,
      from: new Date(Math.floor(from / 1000)),
      to: new Date(Math.floor(to / 1000)),
    })
    // Millisecond window edges: compare against the same truncated edges.
    const fromMs = Math.floor(from / 1000) * 1000
    const toMs = Math.floor(to / 1000) * 1000
    const expectedMs = new Set(all.filter((a) => a.at >= fromMs && a.at < toMs).map((a) => a.key))
    expect(new Set(rows.map((r) => `${r.table}/${r.record_id}`))).toEqual(expectedMs)
    expect(expectedKeys.size).toBeGreaterThan(0)
  })

  it('who-touched-record names every principal and time that read a record', async () => {
    const sample = [...truth.byRecord.entries()].filter((_, i) => i % 97 === 0).slice(0, 25)
    const multi = [...truth.byRecord.entries()].find(([, who]) => new Set(who.map((w) => w.principal)).size === PRINCIPALS.length)
    expect(multi).toBeDefined()
    for (const [key, who] of [...sample, multi!]) {
      const [table, record] = key.split('/') as [string, string]
      const { rows } = await runSavedQuery(store, whoTouchedRecord, { table, record })
      const got = rows.map((r) => `${r.principal_id}@${isoToMicros(r.occurred_at)}`).sort()
      expect(got).toEqual(who.map((w) => `${w.principal}@${w.at}`).sort())
      for (const r of rows) {
        expect(r.client_ip).toMatch(/^10\.0\.\d+\.\d+$/)
        expect(r.service).toBe('registry-api')
      }
    }
  })

  it('who-touched-record returns nothing for a record nobody read', async () => {
    expect((await runSavedQuery(store, whoTouchedRecord, { table: 'applicants', record: 'no-such-id' })).rows).toEqual([])
  })
})
