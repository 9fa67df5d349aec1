import { Partitioners } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { createCodec } from '../../schemas/codec.js'
import { REPLAY_HEADER } from '../../schemas/message-headers.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { makeEvent } from '../helpers/events.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { MIGRATING_WRITER } from '../helpers/producer-trust.js'

describe('events replayed from an outbox', () => {
  it('are stored once when the broker already had them (acknowledgement lost, or the app killed before it marked the outbox)', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const store = await openTestStore()
    const registry = loadSchemaRegistry()
    // Wire-1 events with the replay header, stored by a writer that allows unsigned producers (a migrating deployment): these tests are about replay dedupe.
    const codec = createCodec(registry)
    const events = Array.from({ length: 30 }, () => makeEvent())
    const message = (e: (typeof events)[number], replay: boolean) => ({
      key: e.read_id,
      value: codec.encode(e),
      ...(replay ? { headers: { [REPLAY_HEADER]: '1' } } : {}),
    })
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    // Direct copies of the first 20, then the outbox replays 10..29: 10..19
    // twice (one replayed copy in the same batch as its original, the rest in
    // a later batch), 20..29 only from the outbox.
    await producer.send({ topic, acks: -1, messages: events.slice(0, 20).map((e) => message(e, false)) })
    const groupId = `${topic}-w`
    const writer = createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId, ...MIGRATING_WRITER }), kafka, store, registry, logger: testLogger })
    await writer.start()
    await waitForCatchUp(kafka, groupId, topic)
    await producer.send({ topic, acks: -1, messages: [...events.slice(10, 30).map((e) => message(e, true)), message(events[29]!, true)] })
    await producer.disconnect()
    await waitForCatchUp(kafka, groupId, topic)
    await writer.stop()

    expect(writer.stats()).toMatchObject({ stored: 30, redelivered: 11 })
    await expectIntactChains(store, events.map((e) => e.event_id))
  })

  it('without the replay header a repeated event id is not looked up (direct sends pay nothing)', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const store = await openTestStore()
    const registry = loadSchemaRegistry()
    const queries: string[] = []
    const watched = { ...store, queryRows: (q: string, p?: Record<string, unknown>) => (queries.push(q), store.queryRows(q, p)) } as typeof store
    const codec = createCodec(registry)
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    await producer.send({ topic, acks: -1, messages: Array.from({ length: 5 }, () => makeEvent()).map((e) => ({ key: e.read_id, value: codec.encode(e) })) })
    await producer.disconnect()
    const groupId = `${topic}-w`
    const writer = createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId, ...MIGRATING_WRITER }), kafka, store: watched, registry, logger: testLogger })
    await writer.start()
    await waitForCatchUp(kafka, groupId, topic)
    await writer.stop()
    expect(writer.stats().stored).toBe(5)
    expect(queries.filter((q) => q.includes('event_id IN'))).toEqual([])
  })
})
