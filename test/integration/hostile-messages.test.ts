import { performance } from 'node:perf_hooks'
import { afterAll, describe, expect, it } from 'vitest'
import { readMessages, readWatermarks } from '../../common/kafka-read.js'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { deadLetterTopicOf } from '../../consumers/topics.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createCodec } from '../../schemas/codec.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { recordIdsCountBomb, spliceField, zigzagVarint } from '../helpers/avro-bombs.js'
import { makeEvent } from '../helpers/events.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { MIGRATING_WRITER } from '../helpers/producer-trust.js'

/**
 * Regression (issue 11): one 185-byte message declaring 2^31 record ids
 * stalled the writer for ~5 minutes, grew it to 1.8 GB and killed it, again
 * after every restart; 40 messages declaring 2^25 overran the group session.
 * Good events behind them, and on other partitions, were never stored.
 */
describe('hostile messages neither stop nor blind the chain writer', () => {
  const kafka = testKafka()
  const registry = loadSchemaRegistry()
  // Good events go as wire-1 messages beside the bombs; the writer allows unsigned producers (a migrating deployment), so only the bombs are refused.
  const codec = createCodec(registry)
  const type = registry.current.type
  const cleanups: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const PARTITIONS = 3
  const GOOD_PER_PARTITION = 20

  /** Every attack of the issue, as raw message values. */
  function bombs(): { label: string; value: Buffer; code: string }[] {
    const count = (n: bigint) => recordIdsCountBomb(codec, type, makeEvent(), n)
    const splice = (field: keyof AccessEvent, bytes: Buffer) => spliceField(codec, type, makeEvent(), field, bytes)
    return [
      { label: 'record_ids count 2^31', value: count(2n ** 31n), code: 'MESSAGE_MALFORMED' },
      ...Array.from({ length: 14 }, () => ({ label: 'record_ids count 2^25', value: count(2n ** 25n), code: 'MESSAGE_MALFORMED' })),
      { label: 'record_ids count 2^63 - 1', value: count(2n ** 63n - 1n), code: 'MESSAGE_MALFORMED' },
      { label: 'negative block count -2^31', value: splice('record_ids', Buffer.concat([zigzagVarint(-(2n ** 31n)), zigzagVarint(4n), Buffer.from([0])])), code: 'MESSAGE_MALFORMED' },
      { label: 'principal_id length 2^40', value: splice('principal_id', zigzagVarint(2n ** 40n)), code: 'MESSAGE_MALFORMED' },
      { label: 'part_count 2^31', value: splice('part_count', zigzagVarint(2n ** 31n)), code: 'MESSAGE_MALFORMED' },
      { label: 'part_count 2^31 - 1', value: splice('part_count', zigzagVarint(2n ** 31n - 1n)), code: 'EVENT_INVALID' },
    ]
  }

  it('stores every good event on every partition within seconds, dead-letters every bomb, and keeps its memory', async () => {
    const topic = await freshTopic(kafka, PARTITIONS)
    const store = await openTestStore()
    const groupId = `${topic}-writer`
    const writer = createChainWriter({ trust: UNSIGNED_CHAINS, config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic, groupId, ...MIGRATING_WRITER }), kafka, store, registry, logger: testLogger })
    cleanups.push(() => writer.stop())
    await writer.start()

    // Bombs first on every partition, then interleaved with good events: nothing good may wait behind them.
    const good: AccessEvent[] = []
    const messages: { partition: number; value: Buffer }[] = []
    const expectedCodes: string[][] = Array.from({ length: PARTITIONS }, () => [])
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const attacks = bombs()
      for (let i = 0; i < Math.max(attacks.length, GOOD_PER_PARTITION); i++) {
        const attack = attacks[i]
        if (attack) {
          messages.push({ partition, value: attack.value })
          expectedCodes[partition]!.push(attack.code)
        }
        if (i < GOOD_PER_PARTITION) {
          const event = makeEvent({ record_ids: [`r-${partition}-${i}`] })
          good.push(event)
          messages.push({ partition, value: codec.encode(event) })
        }
      }
    }
    const bombCount = expectedCodes.flat().length
    expect(messages[0]!.value.length, 'the 2^31 bomb is a small message').toBeLessThan(400)

    const baseline = process.memoryUsage()
    let peakHeap = baseline.heapUsed
    let peakRss = baseline.rss
    const sampler = setInterval(() => {
      const now = process.memoryUsage()
      peakHeap = Math.max(peakHeap, now.heapUsed)
      peakRss = Math.max(peakRss, now.rss)
    }, 10)
    cleanups.push(async () => clearInterval(sampler))

    const producer = kafka.producer()
    await producer.connect()
    cleanups.push(() => producer.disconnect())
    const sentAt = performance.now()
    await producer.send({ topic, messages })
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 60_000, pollMs: 100 })
    const tookMs = performance.now() - sentAt
    clearInterval(sampler)

    await expectIntactChains(store, good.map((e) => e.event_id))
    expect(writer.stats().deadLettered).toBe(bombCount)

    const heapGrowth = peakHeap - baseline.heapUsed
    const rssGrowth = peakRss - baseline.rss
    console.log(
      `hostile messages: ${bombCount} bombs and ${good.length} good events on ${PARTITIONS} partitions stored/dead-lettered in ${tookMs.toFixed(0)} ms; ` +
        `writer peak heap +${(heapGrowth / 2 ** 20).toFixed(1)} MiB, rss +${(rssGrowth / 2 ** 20).toFixed(1)} MiB`,
    )
    // Before the fix one 2^25 bomb alone took 1.3 s and 250 MB; the 2^31 one took minutes and 1.8 GB.
    expect(tookMs).toBeLessThan(15_000)
    expect(heapGrowth).toBeLessThan(128 * 2 ** 20)

    const letters = await readTopic(deadLetterTopicOf({ topic }))
    expect(letters.length).toBe(bombCount)
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const mine = letters.filter((l) => l.headers['readtrail-source']?.startsWith(`${topic}/${partition}@`))
      expect(mine.map((l) => l.headers['readtrail-error-code'])).toEqual(expectedCodes[partition])
      expect(mine[0]!.headers['readtrail-error']).toMatch(/record_ids: a block of 2147483648 items cannot fit in the \d+ bytes left/)
    }
  })

  /** Every message of `topic` (its dead letters), as header maps. */
  async function readTopic(topic: string): Promise<{ headers: Record<string, string> }[]> {
    const marks = (await readWatermarks(kafka, topic, 30_000)) ?? []
    const got: { headers: Record<string, string> }[] = []
    const ranges = marks.map((m) => ({ partition: m.partition, from: m.low, to: m.high - 1n }))
    await readMessages(kafka, topic, ranges, { timeoutMs: 60_000, maxMessages: 10_000 }, (_partition, message) => {
      got.push({ headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])) })
    })
    return got
  }
})
