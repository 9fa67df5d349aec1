import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { Partitioners, type Kafka } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { keyId } from '../../checkpoints/checkpoint.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import { formatReport } from '../../integrity/report.js'
import { verifyStore } from '../../integrity/verify-store.js'
import { createAuditProducer, type AuditProducer } from '../../producers/audit-producer.js'
import type { AuditProducerConfigInput } from '../../producers/config.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createBatchCodec } from '../../schemas/batch-codec.js'
import { signBatch } from '../../schemas/batch-signature.js'
import { createCodec } from '../../schemas/codec.js'
import type { ReadInput } from '../../schemas/read-input.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import type { Store } from '../../store/store.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { makeEvent } from '../helpers/events.js'
import { testDeployment } from '../helpers/ingest.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, readDeadLetters, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { testSigningKey } from '../helpers/producer-trust.js'
import { openTestStore } from '../helpers/store.js'

/**
 * Producer authentication on the real broker, with a real writer: anyone who
 * can write to the topic can frame a principal with the public schema, so
 * the chain stores only what a trusted key signed, for this topic, as
 * events of that key's service (issue 13, wire v2).
 */
const SERVICE = 'registry-api'
const batchRegistry = loadSchemaRegistry(undefined, 'access-batch')
const publicKeyOf = (service: string): KeyObject => createPublicKey(testSigningKey(service))

const read = (principal: string, i: number): ReadInput => ({
  principal: { id: principal },
  resource: { database: 'registry', table: 'applicants' },
  columns: ['id', 'full_name'],
  recordIds: [String(100_000 + i)],
  purpose: 'case-handling',
})

interface Deployed {
  kafka: Kafka
  topic: string
  groupId: string
  store: Store
  ingest: Awaited<ReturnType<ReturnType<typeof testDeployment>['ingest']>>
  deployment: ReturnType<typeof testDeployment>
}

/** A fresh one-partition topic and store, with `readtrail consume` (writer and signer) trusting every test service's key. */
async function deploy(options: { allowUnsigned?: boolean } = {}): Promise<Deployed> {
  const kafka = testKafka()
  const topic = await freshTopic(kafka, 1)
  const store = await openTestStore()
  const deployment = testDeployment(kafka, topic)
  const groupId = `${topic}-writer`
  const ingest = await deployment.ingest({ store, topic, groupId, ...options })
  return { kafka, topic, groupId, store, ingest, deployment }
}

async function producer(d: Deployed, config: Partial<AuditProducerConfigInput> & { service: string }): Promise<AuditProducer> {
  const p = await createAuditProducer({ kafka: testKafkaConnection(), topic: d.topic, ...config }, { kafka: d.kafka, logger: testLogger })
  deferCleanup(() => p.close())
  return p
}

/** A batch of `events` framed as the SDK frames it, claiming `service`, naming `keyIdNamed`, signed with `signer` (unsigned without). */
function forgedBatch(topic: string, events: AccessEvent[], o: { service: string; keyIdNamed: string; signer?: KeyObject }): Buffer {
  const framer = createBatchCodec(batchRegistry).framer({ keyId: o.keyIdNamed, producerId: 'forger:host:1', service: o.service, environment: 'test' })
  const bodies = events.map((e) => framer.encodeEvent(e))
  const message = framer.frame(bodies, bodies.reduce((n, b) => n + b.length, 0))
  if (o.signer) signBatch(topic, message, o.signer)
  return message
}

async function sendRaw(kafka: Kafka, topic: string, value: Buffer): Promise<void> {
  const p = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await p.connect()
  try {
    await p.send({ topic, acks: -1, messages: [{ partition: 0, value }] })
  } finally {
    await p.disconnect()
  }
}

async function rowsOf(store: Store): Promise<{ event_id: string; principal_id: string; producer_id: string; producer_seq: number; key_id: string; schema_version: number; message_events: number }[]> {
  const rows = await store.queryRows<{ event_id: string; principal_id: string; producer_id: string; producer_seq: string; key_id: string; schema_version: string; message_events: string }>(
    `SELECT toString(event_id) AS event_id, principal_id, producer_id, toString(producer_seq) AS producer_seq, key_id, toString(schema_version) AS schema_version,
            toString(message_events) AS message_events
     FROM ${store.table('access_log')} ORDER BY chain_id, seq`,
  )
  return rows.map((r) => ({ ...r, producer_seq: Number(r.producer_seq), schema_version: Number(r.schema_version), message_events: Number(r.message_events) }))
}

describe('a forger with write access to the topic', () => {
  it('stores only the genuine signed reads; every forgery is dead-lettered with its code and counted unauthenticated (bytes that are no Avro: malformed), and the chain verifies clean', async () => {
    const d = await deploy()
    const genuine = await producer(d, { service: SERVICE, signingKey: testSigningKey(SERVICE) })
    const forger = generateKeyPairSync('ed25519')
    const framed = (principal: string) => [makeEvent({ principal_id: principal, service: SERVICE })]
    const forgeries: [code: string, value: Buffer][] = [
      // (a) a wire-1 event made with the public schema.
      ['MESSAGE_UNSIGNED', createCodec(loadSchemaRegistry()).encode(makeEvent({ principal_id: 'clerk.anna', service: SERVICE }))],
      // (b) a batch signed by the forger's own key, which no one trusts.
      ['PRODUCER_KEY_UNKNOWN', forgedBatch(d.topic, framed('clerk.anna'), { service: SERVICE, keyIdNamed: keyId(forger.publicKey), signer: forger.privateKey })],
      // (c) naming the service's trusted key, signed by another.
      ['SIGNATURE_INVALID', forgedBatch(d.topic, framed('clerk.anna'), { service: SERVICE, keyIdNamed: keyId(publicKeyOf(SERVICE)), signer: forger.privateKey })],
      // (d) a trusted key of billing signing events that claim registry-api.
      ['PRODUCER_NOT_AUTHORIZED', forgedBatch(d.topic, framed('clerk.anna'), { service: SERVICE, keyIdNamed: keyId(publicKeyOf('billing')), signer: testSigningKey('billing') })],
      // (e) a batch with no signature at all.
      ['MESSAGE_UNSIGNED', forgedBatch(d.topic, framed('clerk.anna'), { service: SERVICE, keyIdNamed: '' })],
      // Not Avro at all: decoded before any signature check, so malformed, and no producer was impersonated.
      ['MESSAGE_MALFORMED', Buffer.from('{"principal_id":"clerk.anna"}')],
    ]
    const unauthenticated = forgeries.filter(([code]) => code !== 'MESSAGE_MALFORMED').length
    // Genuine reads before, between and after the forgeries: each genuine read acknowledged before the next message goes out, so offsets interleave.
    const eventIds: string[] = []
    for (const [i, [, value]] of forgeries.entries()) {
      eventIds.push(...(await genuine.recordRead(read('clerk.marta', i))).eventIds)
      await sendRaw(d.kafka, d.topic, value)
    }
    eventIds.push(...(await genuine.recordRead(read('clerk.marta', forgeries.length))).eventIds)
    await waitForCatchUp(d.kafka, d.groupId, d.topic, { timeoutMs: 60_000 })

    const rows = await rowsOf(d.store)
    expect(rows.map((r) => r.event_id)).toEqual(eventIds)
    expect(rows.filter((r) => r.principal_id === 'clerk.anna')).toEqual([])
    await expectIntactChains(d.store, eventIds)
    // Each row names the key that vouched for it.
    expect(new Set(rows.map((r) => r.key_id))).toEqual(new Set([keyId(publicKeyOf(SERVICE))]))

    const dead = await readDeadLetters(d.kafka, d.topic, forgeries.length)
    expect(dead.map((l) => l.headers['readtrail-error-code'])).toEqual(forgeries.map(([code]) => code))
    expect(dead.map((l) => l.value)).toEqual(forgeries.map(([, value]) => value))
    expect(d.ingest.stats().writer).toMatchObject({ stored: eventIds.length, deadLettered: forgeries.length, unauthenticated })

    // A clean stop signs the heads; the forged offsets are gaps the signed dead letters explain.
    await d.ingest.stop()
    const checkpoints = await loadCheckpoints({
      database: d.store.database,
      publicKeyPath: d.deployment.publicKeyPath,
      logPath: d.deployment.logPath,
      topic: { kafka: d.kafka, name: d.deployment.checkpointTopic },
    })
    for (const mode of ['in-db', 'independent'] as const) {
      const report = await verifyStore(d.store, { mode, checkpoints, workers: 1, producerGraceMs: 0, kafkaLog: { kafka: d.kafka, topic: d.topic, groupId: d.groupId } })
      expect(report.findings, mode).toEqual([])
      expect(report.ok, mode).toBe(true)
      // The log is intact, but someone wrote to the topic as producers: verify says who was claimed, with which refusal.
      const byCode = (r: { code: string }) => r.code
      expect([...(report.refused_producers ?? [])].sort((a, b) => byCode(a).localeCompare(byCode(b)) || String(a.producer_id).localeCompare(String(b.producer_id))), mode).toEqual([
        { producer_id: 'forger:host:1', code: 'MESSAGE_UNSIGNED', messages: 1 },
        { producer_id: expect.stringMatching(/^test-producer-/), code: 'MESSAGE_UNSIGNED', messages: 1 },
        { producer_id: 'forger:host:1', code: 'PRODUCER_KEY_UNKNOWN', messages: 1 },
        { producer_id: 'forger:host:1', code: 'PRODUCER_NOT_AUTHORIZED', messages: 1 },
        { producer_id: 'forger:host:1', code: 'SIGNATURE_INVALID', messages: 1 },
      ])
      expect(formatReport(report), mode).toContain('ALERT: 1 message(s) refused as SIGNATURE_INVALID (no trusted producer key vouches for them), claiming producer forger:host:1')
    }
  })
})

describe('producers migrating from wire 1', () => {
  /** A wire-1 and a wire-2 producer recording at the same time on one topic; their event ids. */
  async function recordBoth(d: Deployed): Promise<{ v1: string[]; v2: string[]; v1Producer: string; v2Producer: string }> {
    const v1 = await producer(d, { service: 'svc', wireVersion: 1 })
    // wireVersion 2 explicitly (v3 is the default): a v3 writer still stores what a producer not upgraded sends.
    const v2 = await producer(d, { service: SERVICE, signingKey: testSigningKey(SERVICE), wireVersion: 2 })
    const [a, b] = await Promise.all([
      Promise.all(Array.from({ length: 30 }, (_, i) => v1.recordRead(read('clerk.old', i)))),
      Promise.all(Array.from({ length: 30 }, (_, i) => v2.recordRead(read('clerk.new', i)))),
    ])
    await waitForCatchUp(d.kafka, d.groupId, d.topic, { timeoutMs: 60_000 })
    return { v1: a.flatMap((r) => r.eventIds), v2: b.flatMap((r) => r.eventIds), v1Producer: v1.producerId, v2Producer: v2.producerId }
  }

  it('with allowUnsigned and trusted keys: both stored, wire-1 rows with no key and schema 1, wire-2 rows with the key and schema 2', async () => {
    const d = await deploy({ allowUnsigned: true })
    const sent = await recordBoth(d)
    await expectIntactChains(d.store, [...sent.v1, ...sent.v2])
    const rows = await rowsOf(d.store)
    const v1 = rows.filter((r) => r.producer_id === sent.v1Producer)
    const v2 = rows.filter((r) => r.producer_id === sent.v2Producer)
    expect(v1.map((r) => r.event_id).sort()).toEqual([...sent.v1].sort())
    expect(v2.map((r) => r.event_id).sort()).toEqual([...sent.v2].sort())
    expect(v1.every((r) => r.key_id === '' && r.schema_version === 1 && r.message_events === 1)).toBe(true)
    expect(v2.every((r) => r.key_id === keyId(publicKeyOf(SERVICE)) && r.schema_version === 2)).toBe(true)
    expect(d.ingest.stats().writer).toMatchObject({ deadLettered: 0, unauthenticated: 0 })
  })

  it('without allowUnsigned: the wire-1 events are dead-lettered as MESSAGE_UNSIGNED, the signed ones stored', async () => {
    const d = await deploy({ allowUnsigned: false })
    const sent = await recordBoth(d)
    await expectIntactChains(d.store, sent.v2)
    expect((await rowsOf(d.store)).filter((r) => r.producer_id === sent.v1Producer)).toEqual([])
    // Wire 1 sends one event per message: one dead letter per event.
    const dead = await readDeadLetters(d.kafka, d.topic, sent.v1.length)
    expect(dead.map((l) => l.headers['readtrail-error-code'])).toEqual(sent.v1.map(() => 'MESSAGE_UNSIGNED'))
    expect(d.ingest.stats().writer).toMatchObject({ stored: sent.v2.length, deadLettered: sent.v1.length, unauthenticated: sent.v1.length })
  })
})

describe('a signed batch holding many events', () => {
  it('200 reads recorded at once share messages: every event stored once, in order, the producer sequence complete', async () => {
    const d = await deploy()
    const p = await producer(d, { service: SERVICE, signingKey: testSigningKey(SERVICE) })
    const recorded = await Promise.all(Array.from({ length: 200 }, (_, i) => p.recordRead(read('clerk.busy', i))))
    const eventIds = recorded.flatMap((r) => r.eventIds)
    await waitForCatchUp(d.kafka, d.groupId, d.topic, { timeoutMs: 60_000 })

    const [shape] = await d.store.queryRows<{ most: string; messages: string; events: string }>(
      `SELECT toString(max(message_events)) AS most, toString(uniqExact(kafka_offset)) AS messages, toString(count()) AS events FROM ${d.store.table('access_log')}`,
    )
    expect(Number(shape!.most)).toBeGreaterThan(1)
    expect(Number(shape!.messages)).toBeLessThan(200)
    expect(Number(shape!.events)).toBe(200)
    await expectIntactChains(d.store, eventIds)
    const seqs = (await rowsOf(d.store)).filter((r) => r.producer_id === p.producerId).map((r) => r.producer_seq)
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
  })
})
