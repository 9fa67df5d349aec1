import { afterAll, describe, expect, it } from 'vitest'
import { Partitioners } from 'kafkajs'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { createCodec } from '../../schemas/codec.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { makeEvent } from '../helpers/events.js'
import { freshTopic, readDeadLetters, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { MIGRATING_WRITER } from '../helpers/producer-trust.js'

describe('bad messages go to the dead-letter topic and never block the chain', () => {
  const kafka = testKafka()
  const registry = loadSchemaRegistry()
  // Wire-1 events, one per message: the writer allows them (a migrating deployment), so each bad message is refused for its bytes, not for lacking a signature.
  const codec = createCodec(registry)
  const cleanups: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  it('dead-letters malformed, unknown-fingerprint, invalid and empty messages with reasons; valid events keep chaining', async () => {
    const topic = await freshTopic(kafka, 1)
    const store = await openTestStore()
    const groupId = `${topic}-writer`
    const writer = createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId, ...MIGRATING_WRITER }), kafka, store, registry, logger: testLogger })
    cleanups.push(() => writer.stop())
    await writer.start()

    const before = makeEvent()
    const after = makeEvent()
    const unknownFingerprint = Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.from('0123456789abcdef', 'hex'), Buffer.from([0])])
    const invalidEvent = codec.encode({ ...makeEvent(), event_id: 'not-a-uuid-but-a-string-of-36-chars!' })
    const truncated = codec.encode(makeEvent()).subarray(0, 30)
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    cleanups.push(() => producer.disconnect())
    await producer.send({
      topic,
      messages: [
        { value: codec.encode(before) },
        { value: Buffer.from('{"json":"is not avro"}') },
        { value: unknownFingerprint },
        { value: invalidEvent },
        { value: truncated },
        { value: null },
        { value: codec.encode(after) },
      ],
    })
    await waitForCatchUp(kafka, groupId, topic)

    await expectIntactChains(store, [before.event_id, after.event_id])
    expect(writer.stats().deadLettered).toBe(5)

    const dead = await readDeadLetters(kafka, topic, 5)
    const codes = dead.map((m) => m.headers['readtrail-error-code'])
    expect(codes).toEqual(['MESSAGE_MALFORMED', 'SCHEMA_FINGERPRINT_UNKNOWN', 'EVENT_INVALID', 'MESSAGE_MALFORMED', 'MESSAGE_MALFORMED'])
    expect(dead[1]!.headers['readtrail-error']).toContain('0123456789abcdef'.match(/../g)!.reverse().join(''))
    expect(dead[2]!.headers['readtrail-error']).toContain('event_id')
    expect(dead.map((m) => m.headers['readtrail-source'])).toEqual([1, 2, 3, 4, 5].map((o) => `${topic}/0@${o}`))
    // The original bytes are kept for forensics.
    expect(dead[1]!.value).toEqual(unknownFingerprint)
  })
})
