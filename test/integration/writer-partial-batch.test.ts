import type { KafkaMessage } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { chainIdOf, emptyChain, linkEntries, type ChainEntry } from '../../consumers/chain.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { createEventDecoder } from '../../consumers/repair-messages.js'
import { loadTrustedProducers } from '../../consumers/trusted-producers.js'
import { readMessages } from '../../integrity/kafka-log-facts.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import type { Store } from '../../store/store.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { TEST_TRUSTED_PRODUCERS, testSigningKey, TRUSTED_WRITER } from '../helpers/producer-trust.js'
import { openTestStore } from '../helpers/store.js'

/**
 * A batch is one Kafka message of many events; ClickHouse may have stored
 * only the first rows of its insert when the writer crashed. The next writer
 * must re-derive those rows from the message and store the rest: no event
 * twice, none skipped, the chain unforked. And a row missing inside such a
 * message (deleted, the rows after it re-chained) must stop it.
 */
async function oneBatchOfFive(): Promise<{ topic: string; entries: ChainEntry[]; eventIds: string[] }> {
  const kafka = testKafka()
  const topic = await freshTopic(kafka, 1)
  const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'records-api', signingKey: testSigningKey('records-api'), lingerMs: 50 }, { kafka, logger: testLogger })
  deferCleanup(() => producer.close())
  const reads = await Promise.all(
    Array.from({ length: 5 }, (_, i) => producer.recordRead({ principal: { id: 'nurse.kim' }, resource: { database: 'clinic', table: 'patients' }, columns: ['id'], recordIds: [String(i)] })),
  )
  const messages: KafkaMessage[] = []
  await readMessages(kafka, topic, [{ partition: 0, from: 0n, to: 0n }], { timeoutMs: 30_000, maxMessages: 1 }, (_, m) => messages.push(m))
  const decoder = createEventDecoder({ trusted: loadTrustedProducers(TEST_TRUSTED_PRODUCERS), allowUnsigned: false })
  const entries = decoder.decode(topic, messages[0]!, 0n)
  expect(entries.map((e) => [e.index, e.events])).toEqual([[0, 5], [1, 5], [2, 5], [3, 5], [4, 5]])
  return { topic, entries, eventIds: reads.flatMap((r) => r.eventIds) }
}

function startWriter(store: Store, topic: string, onFatal: (err: unknown) => void = () => {}) {
  const kafka = testKafka()
  const groupId = `${topic}-writer`
  const writer = createChainWriter({
    trust: UNSIGNED_CHAINS,
    config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId, ...TRUSTED_WRITER }),
    kafka,
    store,
    registry: loadSchemaRegistry(),
    logger: testLogger,
    onFatal,
  })
  deferCleanup(() => writer.stop())
  return { writer, kafka, groupId }
}

describe('a batch stored in part before a crash', () => {
  it('is completed from its message: the stored rows re-derived, the rest stored after them', async () => {
    const { topic, entries, eventIds } = await oneBatchOfFive()
    const store = await openTestStore()
    // What a crash mid-insert leaves: the message's first two rows, no checkpoint, no committed offset.
    const partial = linkEntries(emptyChain(chainIdOf(topic, 0)), entries.slice(0, 2), Date.now() * 1000)
    await store.insertRowBinary('access_log', partial.rows, partial.count)
    expect(partial.head.open).toEqual({ nextIndex: 2, events: 5 })

    const { writer, kafka, groupId } = startWriter(store, topic)
    await writer.start()
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 60_000 })
    expect(writer.stats()).toMatchObject({ rederived: 2, stored: 3, deadLettered: 0 })
    await expectIntactChains(store, eventIds)
    const rows = await store.queryRows<{ seq: number; message_index: number; message_events: number }>(
      `SELECT seq, message_index, message_events FROM ${store.table('access_log')} ORDER BY seq`,
    )
    expect(rows.map((r) => [Number(r.seq), Number(r.message_index), Number(r.message_events)])).toEqual([[1, 0, 5], [2, 1, 5], [3, 2, 5], [4, 3, 5], [5, 4, 5]])
  })

  it('with a row missing inside the message and the next one re-chained onto it: the writer stops (CHAIN_UNTRUSTED) and stores nothing', async () => {
    const { topic, entries } = await oneBatchOfFive()
    const store = await openTestStore()
    // Event 1 of the message deleted, event 2 linked straight after event 0: every stored row hashes right.
    const forged = linkEntries(emptyChain(chainIdOf(topic, 0)), [entries[0]!, entries[2]!], Date.now() * 1000)
    await store.insertRowBinary('access_log', forged.rows, forged.count)

    let fatal: unknown
    const { writer } = startWriter(store, topic, (err) => (fatal = err))
    await writer.start()
    const deadline = Date.now() + 60_000
    while (fatal === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(fatal).toMatchObject({ code: 'CHAIN_UNTRUSTED' })
    expect(writer.stats().stored).toBe(0)
    const [n] = await store.queryRows<{ n: string }>(`SELECT toString(count()) AS n FROM ${store.table('access_log')}`)
    expect(n!.n).toBe('2')
  })
})
