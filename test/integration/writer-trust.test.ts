import { generateKeyPairSync } from 'node:crypto'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Partitioners, type Kafka } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { checkpointDigest, formatCheckpointLine, keyId, signCheckpoint } from '../../checkpoints/checkpoint.js'
import { ensureCheckpointTopic, readCheckpointTopic } from '../../checkpoints/checkpoint-topic.js'
import { loadPublicKey } from '../../checkpoints/keys.js'
import { readCheckpointLog } from '../../checkpoints/checkpoint-log.js'
import type { SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { chainIdOf, linkEntries, type ChainHead } from '../../consumers/chain.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import type { Ingest } from '../../consumers/ingest.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import { republishCheckpoints } from '../../integrity/repair-checkpoints.js'
import { verifyStore } from '../../integrity/verify-store.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createCodec } from '../../schemas/codec.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { StoreError } from '../../store/errors.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { testDeployment, type TestDeployment } from '../helpers/ingest.js'
import { expectIntactChains, findChainViolations, findDeliveryViolations, readChainPositions } from '../helpers/integrity.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { MIGRATING_WRITER } from '../helpers/producer-trust.js'

/**
 * The chain writer resumes only from what was signed (issue 10, items 1-3
 * and "rows stored while an insert was being retried are never signed").
 * Each attack is carried out as an insider with write access to ClickHouse
 * would: SQL on the store, rows forged with the project's own hashing, and
 * checkpoints forged with a key of their own. One partition per topic, so
 * the chain is `<topic>/0` and offsets are the producer's send order.
 */
const registry = loadSchemaRegistry()
// Wire-1 events, one per message (offsets are events), consumed by a writer that allows unsigned producers (a migrating deployment): these attacks are on the store and checkpoints, not on producers.
const codec = createCodec(registry)
const mutate = (store: Store, sql: string) => store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })

interface Setup {
  kafka: Kafka
  store: Store
  topic: string
  chainId: string
  groupId: string
  deployment: TestDeployment
  /** Event ids sent so far, in offset order. */
  sent: AccessEvent[]
}

async function setup(): Promise<Setup> {
  const kafka = testKafka()
  const topic = await freshTopic(kafka, 1)
  return { kafka, store: await openTestStore(), topic, chainId: chainIdOf(topic, 0), groupId: `${topic}-writer`, deployment: testDeployment(kafka, topic), sent: [] }
}

async function produce(s: Setup, count: number, overrides: Partial<AccessEvent> = {}): Promise<void> {
  const producer = s.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const events = Array.from({ length: count }, () => makeEvent(overrides))
  await producer.send({ topic: s.topic, acks: -1, messages: events.map((e) => ({ partition: 0, value: codec.encode(e) })) })
  await producer.disconnect()
  s.sent.push(...events)
}

/** Ingest as `readtrail consume` runs it, until it caught up; then a clean stop (which signs the final heads). */
async function ingestAll(s: Setup): Promise<Ingest> {
  const ingest = await s.deployment.ingest({ store: s.store, topic: s.topic, groupId: s.groupId, allowUnsigned: true })
  await waitForCatchUp(s.kafka, s.groupId, s.topic, { timeoutMs: 60_000 })
  await ingest.stop()
  return ingest
}

/**
 * What a writer killed before its next checkpoint leaves: rows stored and
 * committed after the newest checkpoint, never signed. Made with a writer
 * that has no signer, under the same group.
 */
async function crashState(s: Setup, unsignedEvents: number): Promise<void> {
  await produce(s, unsignedEvents)
  const writer = createChainWriter({
    trust: UNSIGNED_CHAINS,
    config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic: s.topic, groupId: s.groupId, ...MIGRATING_WRITER }),
    kafka: s.kafka,
    store: s.store,
    registry,
    logger: testLogger,
  })
  await writer.start()
  await waitForCatchUp(s.kafka, s.groupId, s.topic, { timeoutMs: 60_000 })
  await writer.stop()
}

async function checkpoints(s: Setup): Promise<SignedCheckpoint[]> {
  return (await readCheckpointLog(s.deployment.logPath)).entries.map((e) => e.checkpoint).filter((c) => c.chain_id === s.chainId)
}

async function headAt(s: Setup, seq: number): Promise<ChainHead> {
  const [row] = await s.store.queryRows<{ h: string; o: string }>(
    `SELECT hex(hash) AS h, toString(kafka_offset) AS o FROM ${s.store.table('access_log')} WHERE chain_id = {c:String} AND seq = {s:UInt64}`,
    { c: s.chainId, s: seq },
  )
  return { chainId: s.chainId, seq, hash: Buffer.from(row!.h, 'hex'), lastOffset: BigInt(row!.o) }
}

async function maxSeq(s: Setup): Promise<number> {
  const [row] = await s.store.queryRows<{ m: string }>(`SELECT toString(max(seq)) AS m FROM ${s.store.table('access_log')} WHERE chain_id = {c:String}`, { c: s.chainId })
  return Number(row?.m ?? 0)
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The error ingest stopped on, or a timeout. */
async function failure(ingest: Ingest, timeoutMs = 60_000): Promise<unknown> {
  return Promise.race([ingest.failed, new Promise((_, reject) => setTimeout(() => reject(new Error('ingest did not fail')), timeoutMs))])
}

async function verifyClean(s: Setup): Promise<void> {
  const cps = await loadCheckpoints({ database: s.store.database, publicKeyPath: s.deployment.publicKeyPath, logPath: s.deployment.logPath, topic: { kafka: s.kafka, name: s.deployment.checkpointTopic } })
  for (const mode of ['in-db', 'independent'] as const) {
    const report = await verifyStore(s.store, { mode, checkpoints: cps, workers: 1, producerGraceMs: 0 })
    expect(report.findings, mode).toEqual([])
  }
}

describe('the chain writer resumes only from what was signed', () => {

  it('after a crash it re-derives the unsigned rows from Kafka, signs them once, and continues (no false alarm)', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    expect((await checkpoints(s)).at(-1)?.seq).toBe(30)
    await crashState(s, 20)
    expect(await maxSeq(s)).toBe(50)

    const ingest = await s.deployment.ingest({ store: s.store, topic: s.topic, groupId: s.groupId, allowUnsigned: true })
    await waitUntil('the unsigned rows are re-derived', () => ingest.stats().writer.rederived === 20)
    await produce(s, 5)
    await waitForCatchUp(s.kafka, s.groupId, s.topic, { timeoutMs: 60_000 })
    await ingest.stop()

    expect(ingest.stats().writer).toMatchObject({ rederived: 20, stored: 5, restored: 0 })
    await expectIntactChains(s.store, s.sent.map((e) => e.event_id))
    const cps = await checkpoints(s)
    expect(cps.map((c) => c.index)).toEqual(cps.map((_, i) => i + 1))
    expect(cps.at(-1)?.seq).toBe(55)
    // Each checkpoint vouches for a later head than the one before: nothing signed twice.
    for (let i = 1; i < cps.length; i++) expect(cps[i]!.seq).toBeGreaterThan(cps[i - 1]!.seq)
    await verifyClean(s)
  })

  it('rows deleted from the unsigned tail after a crash are stored again from Kafka (an alert), not lost', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    await crashState(s, 20)
    await mutate(s.store, `ALTER TABLE ${s.store.table('access_log')} DELETE WHERE chain_id = '${s.chainId}' AND seq > 40`)
    expect(await maxSeq(s)).toBe(40)

    const ingest = await s.deployment.ingest({ store: s.store, topic: s.topic, groupId: s.groupId, allowUnsigned: true })
    await waitUntil('the deleted reads are stored again', () => ingest.stats().writer.restored === 10)
    await ingest.stop()
    expect(ingest.stats().writer).toMatchObject({ rederived: 10, restored: 10, stored: 10 })
    // The chain is whole again; the query views still hold the deleted rows'
    // copies beside the restored ones, which verify reports as the tampering it was.
    const positions = await readChainPositions(s.store)
    expect(findChainViolations(positions)).toEqual([])
    expect(findDeliveryViolations(positions.map((p) => p.event_id), s.sent.map((e) => e.event_id))).toEqual([])
    const report = await verifyStore(s.store, { mode: 'in-db', workers: 1, producerGraceMs: 0 })
    expect([...new Set(report.findings.map((f) => f.kind))].filter((k) => k !== 'view_mismatch')).toEqual([])
    expect((await checkpoints(s)).at(-1)?.seq).toBe(50)
  })

  it('1. forged rows appended after the newest checkpoint stop the writer: CHAIN_UNTRUSTED, nothing signed or stored over them', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    const signedBefore = await checkpoints(s)
    // Three bulk exports framing an innocent clerk, hashed exactly as the writer would, claiming the next offsets.
    const forged = linkEntries(
      await headAt(s, 30),
      [30n, 31n, 32n].map((offset) => ({ event: makeEvent({ principal_id: 'clerk.innocent', row_count: 5000 }), offset, schemaVersion: 1 })),
      Date.now() * 1000,
    )
    await s.store.insertRowBinary('access_log', forged.rows, forged.count)
    // Real reads then arrive at those offsets.
    await produce(s, 5)

    const ingest = await s.deployment.ingest({ store: s.store, topic: s.topic, groupId: s.groupId, allowUnsigned: true })
    const err = await failure(ingest)
    await ingest.stop()
    expect(err).toMatchObject({ code: 'CHAIN_UNTRUSTED', details: { chain_id: s.chainId, seq: 31 } })
    expect(String((err as Error).message)).toContain('differs from the message at offset 30')
    expect(await checkpoints(s)).toEqual(signedBefore)
    expect(await maxSeq(s)).toBe(33)
  })

  it('3. a forged head row with a huge kafka_offset is refused when the chain is taken up', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    const signedBefore = await checkpoints(s)
    const forged = linkEntries(await headAt(s, 30), [{ event: makeEvent({ principal_id: 'clerk.innocent' }), offset: 1_000_000_000_000n, schemaVersion: 1 }], Date.now() * 1000)
    await s.store.insertRowBinary('access_log', forged.rows, forged.count)
    await produce(s, 5)

    const ingest = await s.deployment.ingest({ store: s.store, topic: s.topic, groupId: s.groupId, allowUnsigned: true })
    const err = await failure(ingest)
    await ingest.stop()
    expect(err).toMatchObject({ code: 'CHAIN_UNTRUSTED', details: { chain_id: s.chainId, seq: 31, kafka_offset: '1000000000000' } })
    expect(String((err as Error).message)).toContain("beyond the partition's end")
    expect(await checkpoints(s)).toEqual(signedBefore)
    expect(await maxSeq(s)).toBe(31)
  })

  it('an unsigned row edited in place (its hash left as it was) stops the writer at that row', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    await crashState(s, 20)
    await mutate(s.store, `ALTER TABLE ${s.store.table('access_log')} UPDATE principal_id = 'mallory' WHERE chain_id = '${s.chainId}' AND seq = 45`)
    const ingest = await s.deployment.ingest({ store: s.store, topic: s.topic, groupId: s.groupId, allowUnsigned: true })
    const err = await failure(ingest)
    await ingest.stop()
    expect(err).toMatchObject({ code: 'CHAIN_UNTRUSTED', details: { chain_id: s.chainId, seq: 45 } })
    expect((await checkpoints(s)).at(-1)?.seq).toBe(30)
  })

  it('unsigned rows re-hashed consistently (a rewritten tail) differ from Kafka and stop the writer', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    await crashState(s, 10)
    // The insider replaces rows 31..40 with a consistent chain of their own over the same offsets.
    await mutate(s.store, `ALTER TABLE ${s.store.table('access_log')} DELETE WHERE chain_id = '${s.chainId}' AND seq > 30`)
    const rewritten = linkEntries(
      await headAt(s, 30),
      Array.from({ length: 10 }, (_, i) => ({ event: { ...s.sent[30 + i]!, principal_id: 'clerk.innocent' }, offset: BigInt(30 + i), schemaVersion: 1 })),
      Date.now() * 1000,
    )
    await s.store.insertRowBinary('access_log', rewritten.rows, rewritten.count)
    const ingest = await s.deployment.ingest({ store: s.store, topic: s.topic, groupId: s.groupId, allowUnsigned: true })
    const err = await failure(ingest)
    await ingest.stop()
    expect(err).toMatchObject({ code: 'CHAIN_UNTRUSTED', details: { chain_id: s.chainId, seq: 31 } })
  })

  it('rows an insert stored before it reported a failure are re-derived on the retry and signed', async () => {
    const s = await setup()
    let failOnce = true
    // ClickHouse acknowledged nothing, yet the rows landed (a timeout after the write, a full disk freed meanwhile).
    const flaky: Store = {
      ...s.store,
      async insertRowBinary(...args: Parameters<Store['insertRowBinary']>) {
        await s.store.insertRowBinary(...args)
        if (failOnce && args[2] > 0) {
          failOnce = false
          throw new StoreError('STORE_UNAVAILABLE', 'insert outcome unknown (test)')
        }
      },
    } as Store
    await produce(s, 40)
    const ingest = await s.deployment.ingest({ store: flaky, topic: s.topic, groupId: s.groupId, allowUnsigned: true })
    await waitForCatchUp(s.kafka, s.groupId, s.topic, { timeoutMs: 60_000 })
    await ingest.stop()
    const stats = ingest.stats().writer
    expect(failOnce).toBe(false)
    expect(stats.rederived).toBeGreaterThan(0)
    expect(stats.stored + stats.rederived).toBe(40)
    await expectIntactChains(s.store, s.sent.map((e) => e.event_id))
    expect((await checkpoints(s)).at(-1)?.seq).toBe(40)
  })

  it('a checkpoint another key signed, published to the topic with a higher index, is ignored on resume', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    const real = (await checkpoints(s)).at(-1)!
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    // It would make the writer resume from seq 10 and fork the chain there.
    const head10 = await headAt(s, 10)
    const forged = signCheckpoint(
      { ...real, index: real.index + 50, seq: 10, hash: head10.hash.toString('hex'), kafka_offset: '9', key_id: keyId(publicKey), signed_at: new Date().toISOString() },
      privateKey,
    )
    const producer = s.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    await producer.send({ topic: s.deployment.checkpointTopic, acks: -1, messages: [{ key: s.chainId, value: formatCheckpointLine(forged) }] })
    await producer.disconnect()

    await produce(s, 5)
    const ingest = await ingestAll(s)
    expect(ingest.stats().writer).toMatchObject({ stored: 5, rederived: 0 })
    await expectIntactChains(s.store, s.sent.map((e) => e.event_id))
    const cps = await checkpoints(s)
    expect(cps.at(-1)).toMatchObject({ index: real.index + 1, seq: 35 })
  })

  /** Starts ingest as `readtrail consume` does; the error it refused with, or null (then stopped). */
  async function consumeOnce(s: Setup): Promise<unknown> {
    return s.deployment.ingest({ store: s.store, topic: s.topic, groupId: s.groupId, allowUnsigned: true }).then(
      async (ingest) => {
        await ingest.stop()
        return null
      },
      (e: unknown) => e,
    )
  }

  async function withAdmin<T>(s: Setup, use: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
    const admin = s.kafka.admin()
    await admin.connect()
    try {
      return await use(admin)
    } finally {
      await admin.disconnect()
    }
  }

  async function deleteCheckpointTopic(s: Setup): Promise<void> {
    await withAdmin(s, async (admin) => {
      await admin.deleteTopics({ topics: [s.deployment.checkpointTopic] })
      for (let i = 0; (await admin.listTopics()).includes(s.deployment.checkpointTopic); i += 1) {
        if (i > 150) throw new Error(`${s.deployment.checkpointTopic} was not deleted`)
        await new Promise((r) => setTimeout(r, 200))
      }
    })
  }

  async function trimCheckpointTopic(s: Setup, before: string): Promise<void> {
    await withAdmin(s, async (admin) => {
      // kafkajs needs the topic's metadata loaded to find the partition leader.
      await admin.fetchTopicMetadata({ topics: [s.deployment.checkpointTopic] })
      await admin.deleteTopicRecords({ topic: s.deployment.checkpointTopic, partitions: [{ partition: 0, offset: before }] })
    })
  }

  /** The attacks on the Kafka copy, each carried out between two clean runs of consume. */
  const attacks = {
    delete: (s: Setup) => deleteCheckpointTopic(s),
    trim: (s: Setup) => trimCheckpointTopic(s, '1'),
    'trim-all': (s: Setup) => trimCheckpointTopic(s, '-1'),
    'recreate-empty': async (s: Setup) => {
      await deleteCheckpointTopic(s)
      // Created as the signer would (kept forever), so nothing but its content tells.
      await ensureCheckpointTopic(s.kafka, s.deployment.checkpointTopic)
    },
    'trim-then-delete': async (s: Setup) => {
      await trimCheckpointTopic(s, '1')
      await deleteCheckpointTopic(s)
    },
    'roll-back-file-and-delete': async (s: Setup) => {
      const lines = readFileSync(s.deployment.logPath, 'utf8').split('\n').filter(Boolean)
      writeFileSync(s.deployment.logPath, `${lines[0]}\n`)
      await deleteCheckpointTopic(s)
    },
  } as const

  it.each([
    ['deleted', 'delete'],
    ['trimmed with the delete-records admin API', 'trim'],
    ['emptied with the delete-records admin API', 'trim-all'],
    ['deleted and created again empty', 'recreate-empty'],
    ['trimmed, then deleted', 'trim-then-delete'],
    ['deleted after the file was wound back', 'roll-back-file-and-delete'],
  ] as const)('6. a checkpoint topic %s makes every restart refuse to sign (CHECKPOINT_COPY_LOST) until repair republishes the file', async (_, attack) => {
    const s = await setup()
    await produce(s, 20)
    await ingestAll(s)
    await produce(s, 10)
    await ingestAll(s)
    expect((await checkpoints(s)).length).toBeGreaterThanOrEqual(2)
    await attacks[attack](s)
    const signedBefore = await checkpoints(s)
    await produce(s, 5)

    // Regression: a refused start created the topic empty, and the second start republished the file over it.
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      const err = await consumeOnce(s)
      expect(err, `start #${attempt}`).toMatchObject({ code: 'CHECKPOINT_COPY_LOST', details: { topic: s.deployment.checkpointTopic } })
      expect(await checkpoints(s)).toEqual(signedBefore)
    }
    // A refused start leaves a deleted topic deleted: no empty copy for the next start to accept.
    if (attack === 'delete' || attack === 'trim-then-delete' || attack === 'roll-back-file-and-delete') {
      expect(await withAdmin(s, (admin) => admin.listTopics())).not.toContain(s.deployment.checkpointTopic)
    }

    // The operator's way out (its own rollback checks are repair.test.ts's).
    const key = loadPublicKey(s.deployment.publicKeyPath)
    const items = await republishCheckpoints({ kafka: s.kafka, topic: s.deployment.checkpointTopic, logPath: s.deployment.logPath, database: s.store.database, key, verifyState: null, dryRun: false, logger: testLogger })
    expect(items).toMatchObject([{ action: 'republish', outcome: 'republished' }])
    await ingestAll(s)
    const after = await checkpoints(s)
    expect(after.slice(0, signedBefore.length)).toEqual(signedBefore)
    expect(after.at(-1)).toMatchObject({ index: signedBefore.at(-1)!.index + 1, seq: s.sent.length })
  })

  it('a deleted checkpoint file is the file behind its Kafka copy: consume continues from the topic', async () => {
    const s = await setup()
    await produce(s, 20)
    await ingestAll(s)
    const before = (await readCheckpointTopic(s.kafka, s.deployment.checkpointTopic)).entries.map((e) => e.checkpoint)
    expect(before.length).toBeGreaterThanOrEqual(1)
    rmSync(s.deployment.logPath)
    await produce(s, 5)
    await ingestAll(s)
    const after = await checkpoints(s)
    expect(after[0]).toMatchObject({ index: before.at(-1)!.index + 1, prev: checkpointDigest(before.at(-1)!) })
    expect(after.at(-1)).toMatchObject({ seq: 25 })
  })

  it('the checkpoint file deleted and the topic trimmed: consume refuses (a trimmed topic is never a fresh start)', async () => {
    const s = await setup()
    await produce(s, 20)
    await ingestAll(s)
    await produce(s, 10)
    await ingestAll(s)
    rmSync(s.deployment.logPath)
    await trimCheckpointTopic(s, '1')
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      expect(await consumeOnce(s), `start #${attempt}`).toMatchObject({ code: 'CHECKPOINT_COPY_LOST', details: { reason: 'trimmed' } })
    }
  })
})
