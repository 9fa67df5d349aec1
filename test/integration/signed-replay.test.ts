import type { KafkaMessage } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { waitForCatchUp } from '../../consumers/lag.js'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import { readMessages } from '../../integrity/kafka-log-facts.js'
import { verifyStore } from '../../integrity/verify-store.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { testDeployment } from '../helpers/ingest.js'
import { freshTopic, readDeadLetters, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { testSigningKey } from '../helpers/producer-trust.js'
import { openTestStore } from '../helpers/store.js'

/**
 * The attack a signature cannot stop: whoever can write to the topic copies
 * a genuine signed batch and sends it again. Nothing is forged, so the
 * writer stores it; what must not happen is that the copy passes unnoticed.
 */
describe('a genuine signed batch sent again by someone with topic write access', () => {
  it('is stored a second time and verify reports the repeated producer sequence (producer_duplicate), in both modes', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const store = await openTestStore()
    const deployment = testDeployment(kafka, topic)
    const groupId = `${topic}-writer`
    const ingest = await deployment.ingest({ store, topic, groupId })
    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'records-api', signingKey: testSigningKey('records-api') }, { kafka, logger: testLogger })
    deferCleanup(() => producer.close())
    for (let i = 0; i < 3; i++) await producer.recordRead({ principal: { id: 'dr.lee' }, resource: { database: 'clinic', table: 'patients' }, columns: ['id'], recordIds: [String(i)] })

    // The attacker reads the first message off the topic and produces its bytes again, unchanged: the signature still holds.
    const copied: KafkaMessage[] = []
    await readMessages(kafka, topic, [{ partition: 0, from: 0n, to: 0n }], { timeoutMs: 30_000, maxMessages: 1 }, (_, m) => copied.push(m))
    const replayer = kafka.producer()
    await replayer.connect()
    await replayer.send({ topic, acks: -1, messages: [{ partition: 0, value: copied[0]!.value }] })
    await replayer.disconnect()
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 60_000 })

    const [counts] = await store.queryRows<{ rows: string; events: string }>(`SELECT toString(count()) AS rows, toString(uniqExact(event_id)) AS events FROM ${store.table('access_log')}`)
    expect(counts).toEqual({ rows: '4', events: '3' })
    expect(ingest.stats().writer).toMatchObject({ stored: 4, unauthenticated: 0 })

    await ingest.stop()
    const checkpoints = await loadCheckpoints({ database: store.database, publicKeyPath: deployment.publicKeyPath, logPath: deployment.logPath, topic: { kafka, name: deployment.checkpointTopic } })
    for (const mode of ['in-db', 'independent'] as const) {
      const report = await verifyStore(store, { mode, checkpoints, workers: 1, producerGraceMs: 0, kafkaLog: { kafka, topic, groupId } })
      expect(report.ok, mode).toBe(false)
      expect(report.findings.map((f) => [f.kind, f.producer?.from_seq]), mode).toEqual([['producer_duplicate', 1]])
    }
  })

  it('copied into another readtrail topic it is refused there: the signature names the topic it was made for (SIGNATURE_INVALID, nothing stored)', async () => {
    const kafka = testKafka()
    const source = await freshTopic(kafka, 1)
    const target = await freshTopic(kafka, 1)
    const store = await openTestStore()
    const deployment = testDeployment(kafka, target)
    const groupId = `${target}-writer`
    const ingest = await deployment.ingest({ store, topic: target, groupId })
    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic: source, service: 'records-api', signingKey: testSigningKey('records-api') }, { kafka, logger: testLogger })
    deferCleanup(() => producer.close())
    await producer.recordRead({ principal: { id: 'dr.lee' }, resource: { database: 'clinic', table: 'patients' }, columns: ['id'], recordIds: ['7'] })

    const copied: KafkaMessage[] = []
    await readMessages(kafka, source, [{ partition: 0, from: 0n, to: 0n }], { timeoutMs: 30_000, maxMessages: 1 }, (_, m) => copied.push(m))
    const replayer = kafka.producer()
    await replayer.connect()
    await replayer.send({ topic: target, acks: -1, messages: [{ partition: 0, value: copied[0]!.value }] })
    await replayer.disconnect()
    await waitForCatchUp(kafka, groupId, target, { timeoutMs: 60_000 })

    expect(ingest.stats().writer).toMatchObject({ stored: 0, deadLettered: 1, unauthenticated: 1 })
    const dead = await readDeadLetters(kafka, target, 1)
    expect(dead.map((l) => l.headers['readtrail-error-code'])).toEqual(['SIGNATURE_INVALID'])
    const [n] = await store.queryRows<{ n: string }>(`SELECT toString(count()) AS n FROM ${store.table('access_log')}`)
    expect(n!.n).toBe('0')
  })
})

