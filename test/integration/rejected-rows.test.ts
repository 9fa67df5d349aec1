import { afterAll, describe, expect, it } from 'vitest'
import { Partitioners } from 'kafkajs'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { deadLetterTopicOf } from '../../consumers/topics.js'
import { createCodec } from '../../schemas/codec.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { makeEvent } from '../helpers/events.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { MIGRATING_WRITER } from '../helpers/producer-trust.js'

describe('an event ClickHouse refuses does not block its partition', () => {
  const kafka = testKafka()
  const cleanups: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('stores the rest of the batch in order and dead-letters the refused event with ROW_REJECTED', async () => {
    const topic = await freshTopic(kafka, 1)
    const store = await openTestStore()
    // A real refusal by the engine: a table constraint the event breaks,
    // though it passes readtrail's own validation.
    await store.client.command({ query: `ALTER TABLE ${store.table('access_log')} ADD CONSTRAINT no_mallory CHECK principal_id != 'mallory'` })
    const registry = loadSchemaRegistry()
    // Wire-1 events, one per message, to a writer that allows unsigned producers (a migrating deployment): the test is about a row ClickHouse refuses.
    const codec = createCodec(registry)
    const groupId = `${topic}-writer`
    const events = [makeEvent(), makeEvent(), makeEvent({ principal_id: 'mallory' }), makeEvent(), makeEvent()]
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    cleanups.push(() => producer.disconnect())
    await producer.send({ topic, messages: events.map((e) => ({ value: codec.encode(e) })) })

    const writer = createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId, ...MIGRATING_WRITER }), kafka, store, registry, logger: testLogger })
    cleanups.push(() => writer.stop())
    await writer.start()
    await waitForCatchUp(kafka, groupId, topic)
    // The constraint was this test's way to make the engine refuse; verify
    // (rightly) reports an access_log definition that differs from readtrail's.
    await store.client.command({ query: `ALTER TABLE ${store.table('access_log')} DROP CONSTRAINT no_mallory` })

    await expectIntactChains(store, events.filter((e) => e.principal_id !== 'mallory').map((e) => e.event_id))
    expect(writer.stats()).toMatchObject({ stored: 4, deadLettered: 1 })

    const consumer = kafka.consumer({ groupId: `${topic}-dlq-reader` })
    await consumer.connect()
    cleanups.push(() => consumer.disconnect())
    await consumer.subscribe({ topics: [deadLetterTopicOf({ topic })], fromBeginning: true })
    const headers = await new Promise<Record<string, string>>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => resolve(Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))),
      })
    })
    expect(headers['readtrail-error-code']).toBe('ROW_REJECTED')
    expect(headers['readtrail-error']).toContain('no_mallory')
    expect(headers['readtrail-source']).toBe(`${topic}/0@2`)
  })
})
