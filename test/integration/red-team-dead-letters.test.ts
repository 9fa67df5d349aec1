import { generateKeyPairSync } from 'node:crypto'
import { Partitioners, type IHeaders, type Kafka, type KafkaMessage } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { keyId } from '../../checkpoints/checkpoint.js'
import { chainIdOf, linkEntries } from '../../consumers/chain.js'
import { UNSIGNED_CHAINS } from '../../consumers/chain-resume.js'
import { createChainWriter } from '../../consumers/chain-writer.js'
import { ChainWriterConfig } from '../../consumers/config.js'
import { DEAD_LETTER_HEADERS, deadLetterClaimOf, deadLetterSource, signDeadLetter, verifyDeadLetter } from '../../consumers/dead-letter-signature.js'
import type { Ingest } from '../../consumers/ingest.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { deadLetterTopicOf } from '../../consumers/topics.js'
import { REPLAY_HEADER } from '../../schemas/message-headers.js'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import { readMessages, readWatermarks } from '../../integrity/kafka-log-facts.js'
import type { Finding, VerificationReport } from '../../integrity/report.js'
import { verifyStore } from '../../integrity/verify-store.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createCodec } from '../../schemas/codec.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { testDeployment, type TestDeployment } from '../helpers/ingest.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { MIGRATING_WRITER } from '../helpers/producer-trust.js'

/**
 * Dead letters an attacker cannot forge (issue 10). The insider has SQL on
 * the store, the files under READTRAIL_HOME and the Kafka client and admin
 * API, but not the checkpoint key. Their aim: delete one stored read and
 * leave no trace. After `consume` was killed before its next checkpoint the
 * rows after the newest checkpoint are unsigned, so they delete one of them
 * and re-chain the rest (hashes need no secret): the chain alone is
 * consistent, and only the Kafka offset skipped betrays it. Then they
 * produce a dead letter naming that offset, to pass the skip off as a
 * message the writer refused.
 *
 * One partition, so the chain is `<topic>/0` and offsets are send order.
 * The query views copy rows on insert only, so deleting a row also shows as
 * view mismatches in-db: those are left out of the exact lists.
 */
const registry = loadSchemaRegistry()
// Wire-1 events, one per message (offsets are events), consumed by a writer that allows unsigned producers (a migrating deployment): these attacks are on dead letters and the chain, not on producers.
const codec = createCodec(registry)
const MODES = ['in-db', 'independent'] as const
const DERIVED = new Set(['view_mismatch'])
const located = (findings: Finding[]) => findings.filter((f) => !DERIVED.has(f.kind)).map((f) => [f.chain_id, f.seq, f.kind])
const mutate = (store: Store, sql: string) => store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })

interface Log {
  kafka: Kafka
  store: Store
  topic: string
  chainId: string
  groupId: string
  deployment: TestDeployment
  /** Every message sent to the partition, by offset. */
  sent: { key: Buffer | null; value: Buffer | null; event: AccessEvent | null }[]
}

async function newLog(): Promise<Log> {
  const kafka = testKafka()
  const topic = await freshTopic(kafka, 1)
  return { kafka, store: await openTestStore(), topic, chainId: chainIdOf(topic, 0), groupId: `${topic}-writer`, deployment: testDeployment(kafka, topic), sent: [] }
}

/** Sends events (or raw values) to partition 0; returns their offsets. */
async function send(log: Log, items: (AccessEvent | Buffer | null)[], headers?: IHeaders): Promise<bigint[]> {
  const producer = log.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    const messages = items.map((item) => ({ key: Buffer.from(`k${log.sent.length}`), value: item === null || Buffer.isBuffer(item) ? item : codec.encode(item) }))
    const [meta] = await producer.send({ topic: log.topic, acks: -1, messages: messages.map((m) => ({ ...m, partition: 0, ...(headers ? { headers } : {}) })) })
    const base = BigInt(meta!.baseOffset!)
    items.forEach((item, i) => (log.sent[Number(base) + i] = { key: messages[i]!.key, value: messages[i]!.value, event: item === null || Buffer.isBuffer(item) ? null : item }))
    return items.map((_, i) => base + BigInt(i))
  } finally {
    await producer.disconnect()
  }
}

const events = (n: number, overrides: Partial<AccessEvent> = {}) => Array.from({ length: n }, () => makeEvent(overrides))

/** `readtrail consume` until it caught up, then a clean stop: everything stored is signed. */
async function consumeSigned(log: Log): Promise<Ingest> {
  const ingest = await log.deployment.ingest({ store: log.store, topic: log.topic, groupId: log.groupId, allowUnsigned: true })
  await waitForCatchUp(log.kafka, log.groupId, log.topic, { timeoutMs: 60_000 })
  await ingest.stop()
  return ingest
}

/**
 * What `consume` killed before its next checkpoint leaves: rows stored and
 * committed, never signed, and dead letters signed with the deployment's
 * key. `refuse` makes ClickHouse refuse one principal's rows meanwhile.
 */
async function consumeKilled(log: Log, refuse?: string): Promise<void> {
  const t = log.store.table('access_log')
  if (refuse) await log.store.client.command({ query: `ALTER TABLE ${t} ADD CONSTRAINT refuse_one CHECK principal_id != '${refuse}'` })
  const writer = createChainWriter({
    trust: UNSIGNED_CHAINS,
    config: ChainWriterConfig.parse({ kafka: testKafkaConnection(), topic: log.topic, groupId: log.groupId, ...MIGRATING_WRITER }),
    kafka: log.kafka,
    store: log.store,
    registry,
    logger: testLogger,
    deadLetterKey: log.deployment.key,
  })
  await writer.start()
  await waitForCatchUp(log.kafka, log.groupId, log.topic, { timeoutMs: 60_000 })
  await writer.stop()
  if (refuse) await log.store.client.command({ query: `ALTER TABLE ${t} DROP CONSTRAINT refuse_one` })
}

/** The insider's edit: the row at `seq` goes, every later row moves down one seq with its hashes recomputed. */
async function deleteAndRechain(log: Log, seq: number): Promise<bigint> {
  const t = log.store.table('access_log')
  const rows = await log.store.queryRows<{ seq: number; o: string; h: string }>(
    `SELECT seq, toString(kafka_offset) AS o, hex(hash) AS h FROM ${t} WHERE chain_id = {c:String} AND seq >= {s:UInt64} - 1 ORDER BY seq`,
    { c: log.chainId, s: seq },
  )
  const [before, deleted, ...after] = rows
  await mutate(log.store, `ALTER TABLE ${t} DELETE WHERE chain_id = '${log.chainId}' AND seq >= ${seq}`)
  const head = { chainId: log.chainId, seq: seq - 1, hash: Buffer.from(before!.h, 'hex'), lastOffset: BigInt(before!.o) }
  const relinked = linkEntries(head, after.map((r) => ({ event: log.sent[Number(r.o)]!.event!, offset: BigInt(r.o), schemaVersion: 1 })), Date.now() * 1000)
  await log.store.insertRowBinary('access_log', relinked.rows, relinked.count)
  return BigInt(deleted!.o)
}

/** The error `consume` stopped on when started over the store as it is. */
async function restartFails(log: Log): Promise<unknown> {
  const ingest = await log.deployment.ingest({ store: log.store, topic: log.topic, groupId: log.groupId, allowUnsigned: true })
  try {
    return await Promise.race([ingest.failed, new Promise((_, reject) => setTimeout(() => reject(new Error('consume did not stop')), 90_000))])
  } finally {
    await ingest.stop()
  }
}

async function verifyBoth(log: Log): Promise<VerificationReport[]> {
  const checkpoints = await loadCheckpoints({
    database: log.store.database,
    publicKeyPath: log.deployment.publicKeyPath,
    logPath: log.deployment.logPath,
    topic: { kafka: log.kafka, name: log.deployment.checkpointTopic },
  })
  const reports: VerificationReport[] = []
  for (const mode of MODES) {
    reports.push(await verifyStore(log.store, { mode, checkpoints, workers: 1, producerGraceMs: 0, kafkaLog: { kafka: log.kafka, topic: log.topic, groupId: log.groupId } }))
  }
  return reports
}

async function expectFound(log: Log, expected: (string | number)[][]): Promise<VerificationReport[]> {
  const reports = await verifyBoth(log)
  for (const report of reports) {
    expect(report.ok, report.mode).toBe(false)
    expect(located(report.findings), `${report.mode}: ${JSON.stringify(report.findings.slice(0, 8))}`).toEqual(expected)
  }
  return reports
}

/** The deleted row's offset (seq 25) is a gap no dead letter explains, and the dead letter naming it is forged for `why`. */
async function expectForgedAtDeleted(log: Log, why: string): Promise<void> {
  const reports = await expectFound(log, [
    [log.chainId, 25, 'offset_gap'],
    [log.chainId, 25, 'dead_letter_forged'],
  ])
  for (const r of reports) expect(r.findings.find((f) => f.kind === 'dead_letter_forged')!.detail).toContain(why)
}

/** Every dead letter in the topic, as read back. */
async function deadLetters(log: Log): Promise<KafkaMessage[]> {
  const topic = deadLetterTopicOf({ topic: log.topic })
  const marks = (await readWatermarks(log.kafka, topic, 30_000)) ?? []
  const out: KafkaMessage[] = []
  await readMessages(log.kafka, topic, marks.map((m) => ({ partition: m.partition, from: m.low, to: m.high - 1n })), { timeoutMs: 30_000, maxMessages: 1000 }, (_, m) => out.push(m))
  return out
}

async function produceDeadLetter(log: Log, letter: { key: Buffer | null; value: Buffer | null; headers: IHeaders }): Promise<void> {
  const producer = log.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  await producer.send({ topic: deadLetterTopicOf({ topic: log.topic }), acks: -1, messages: [letter] })
  await producer.disconnect()
}

/** The headers a dead letter for the message at `offset` carries, unsigned. */
function plainHeaders(log: Log, offset: bigint, code: string): Record<string, string> {
  return { [DEAD_LETTER_HEADERS.code]: code, [DEAD_LETTER_HEADERS.error]: 'ClickHouse refused the event', [DEAD_LETTER_HEADERS.source]: deadLetterSource(log.topic, 0, offset) }
}

/**
 * The attack's layout: 20 events and a malformed message (offset 20, its
 * dead letter signed) are consumed and signed; `consume` is then killed after
 * 10 more events (offsets 21..30, seqs 21..30, unsigned). The insider deletes
 * seq 25 (offset 25) and re-chains 26..30 as 25..29.
 */
async function attackedLog(): Promise<{ log: Log; malformed: bigint; deleted: bigint }> {
  const log = await newLog()
  await send(log, events(20))
  const [malformed] = await send(log, [Buffer.from('not an access event')])
  await consumeSigned(log)
  await send(log, events(10))
  await consumeKilled(log)
  const deleted = await deleteAndRechain(log, 25)
  expect(deleted).toBe(25n)
  return { log, malformed: malformed!, deleted }
}

describe('red team, dead letters: an offset gap is explained only by a dead letter the writer signed for exactly that message', () => {
  it('no false alarm: a malformed message, and an event ClickHouse refused in the tail a killed consume left, are explained by the signed dead letters; consume resumes over them', async () => {
    const log = await newLog()
    await send(log, events(10))
    const [malformed] = await send(log, [Buffer.from('{"json":"is not avro"}')])
    await send(log, events(9))
    await consumeSigned(log)
    // Killed before its next checkpoint, while ClickHouse refused one event between two stored rows.
    await send(log, events(3))
    const [refused] = await send(log, [makeEvent({ principal_id: 'mallory' })])
    await send(log, events(3))
    await consumeKilled(log, 'mallory')

    const letters = await deadLetters(log)
    expect(letters.map((m) => String(m.headers?.[DEAD_LETTER_HEADERS.source]))).toEqual([deadLetterSource(log.topic, 0, malformed!), deadLetterSource(log.topic, 0, refused!)])
    expect(letters.map((m) => String(m.headers?.[DEAD_LETTER_HEADERS.code]))).toEqual(['MESSAGE_MALFORMED', 'ROW_REJECTED'])
    for (const m of letters) expect(verifyDeadLetter(m, log.deployment.key.keyId, log.store.database)).toMatchObject({ ok: true })

    // The writer meets the refused event between two unsigned rows, finds its own signed dead letter and goes on.
    const ingest = await log.deployment.ingest({ store: log.store, topic: log.topic, groupId: log.groupId, allowUnsigned: true })
    await send(log, events(2))
    await waitForCatchUp(log.kafka, log.groupId, log.topic, { timeoutMs: 60_000 })
    await ingest.stop()
    expect(ingest.stats().writer).toMatchObject({ rederived: 6, stored: 2 })

    for (const report of await verifyBoth(log)) {
      expect(report.findings, report.mode).toEqual([])
      expect(report.ok).toBe(true)
      expect(report.chains[0]).toMatchObject({ last_seq: 27, unsigned_rows: 0 })
      // Said, not failed: the refusal is ClickHouse's word, which the signature cannot vouch for.
      expect(report.warnings.join('\n')).toContain('1 gap offsets hold valid events that ClickHouse refused')
    }
  })

  it('a row deleted from the unsigned tail after consume was killed, the rest re-chained: consume refuses to resume (CHAIN_UNTRUSTED), verify reports offset_gap there in both modes', async () => {
    const { log, deleted } = await attackedLog()
    const err = await restartFails(log)
    expect(err).toMatchObject({ code: 'CHAIN_UNTRUSTED', details: { chain_id: log.chainId, seq: 25, kafka_offset: deleted.toString() } })
    expect(String((err as Error).message)).toContain('has no row, and no dead letter signed by this writer')
    const [report] = await expectFound(log, [[log.chainId, 25, 'offset_gap']])
    expect(report!.findings.find((f) => f.kind === 'offset_gap')!.detail).toContain(`first ${deleted}`)
  })

  it('then an unsigned dead letter naming the deleted offset: it explains nothing, and is dead_letter_forged there besides the offset_gap', async () => {
    const { log, deleted } = await attackedLog()
    const source = log.sent[Number(deleted)]!
    await produceDeadLetter(log, { key: source.key, value: source.value, headers: plainHeaders(log, deleted, 'ROW_REJECTED') })
    await expectForgedAtDeleted(log, 'unsigned')
    expect(await restartFails(log)).toMatchObject({ code: 'CHAIN_UNTRUSTED', details: { seq: 25 } })
  })

  it('a genuine signed dead letter replayed onto the deleted offset (its signature copied, its source changed): dead_letter_forged and offset_gap', async () => {
    const { log, malformed, deleted } = await attackedLog()
    const [genuine] = await deadLetters(log)
    expect(String(genuine!.headers?.[DEAD_LETTER_HEADERS.source])).toBe(deadLetterSource(log.topic, 0, malformed))
    const source = log.sent[Number(deleted)]!
    await produceDeadLetter(log, { key: source.key, value: source.value, headers: { ...genuine!.headers, [DEAD_LETTER_HEADERS.source]: deadLetterSource(log.topic, 0, deleted) } })
    await expectForgedAtDeleted(log, 'does not hold for its source')
    expect(await restartFails(log)).toMatchObject({ code: 'CHAIN_UNTRUSTED', details: { seq: 25 } })
  })

  it('a dead letter for the deleted offset signed by a key of the attacker\'s own: dead_letter_forged and offset_gap', async () => {
    const { log, deleted } = await attackedLog()
    const source = log.sent[Number(deleted)]!
    const pair = generateKeyPairSync('ed25519')
    const own = { ...pair, keyId: keyId(pair.publicKey) }
    const signature = signDeadLetter(deadLetterClaimOf(log.store.database, deadLetterSource(log.topic, 0, deleted), source, 'ROW_REJECTED'), own)
    await produceDeadLetter(log, { key: source.key, value: source.value, headers: { ...plainHeaders(log, deleted, 'ROW_REJECTED'), ...signature } })
    await expectForgedAtDeleted(log, 'signed by another key')
  })

  it('a genuine dead letter re-sent with its error code changed: dead_letter_forged at the row after the message it names (the original still explains that gap)', async () => {
    const { log, malformed } = await attackedLog()
    const [genuine] = await deadLetters(log)
    await produceDeadLetter(log, { key: genuine!.key, value: genuine!.value, headers: { ...genuine!.headers, [DEAD_LETTER_HEADERS.code]: 'ROW_REJECTED' } })
    // The malformed message (offset 20) sits between seq 20 and seq 21.
    expect(malformed).toBe(20n)
    await expectFound(log, [
      [log.chainId, 21, 'dead_letter_forged'],
      [log.chainId, 25, 'offset_gap'],
    ])
  })

  it('a forged dead letter naming an offset that has a stored row hides nothing but is still dead_letter_forged at that row', async () => {
    const log = await newLog()
    await send(log, events(10))
    await consumeSigned(log)
    await produceDeadLetter(log, { key: log.sent[4]!.key, value: log.sent[4]!.value, headers: plainHeaders(log, 4n, 'MESSAGE_MALFORMED') })
    const reports = await expectFound(log, [[log.chainId, 5, 'dead_letter_forged']])
    for (const r of reports) expect(r.findings[0]!.detail).toContain('which has a stored row')
  })

  it('no false alarm: a replayed duplicate of a stored event between two unsigned rows is explained by its original; consume resumes', async () => {
    const log = await newLog()
    const first = events(10)
    await send(log, first)
    await consumeSigned(log)
    await send(log, events(3))
    await send(log, [first[4]!], { [REPLAY_HEADER]: '1' })
    await send(log, events(3))
    await consumeKilled(log)
    const ingest = await log.deployment.ingest({ store: log.store, topic: log.topic, groupId: log.groupId, allowUnsigned: true })
    await send(log, events(1))
    await waitForCatchUp(log.kafka, log.groupId, log.topic, { timeoutMs: 60_000 })
    await ingest.stop()
    expect(ingest.stats().writer).toMatchObject({ rederived: 6, stored: 1 })
    for (const report of await verifyBoth(log)) expect(report.findings, report.mode).toEqual([])
  })

  it('a replayed event that was no duplicate, its row deleted from the unsigned tail and the rest re-chained: CHAIN_UNTRUSTED, and offset_gap', async () => {
    const log = await newLog()
    await send(log, events(10))
    await consumeSigned(log)
    await send(log, events(3))
    const [replayed] = await send(log, [makeEvent()], { [REPLAY_HEADER]: '1' })
    await send(log, events(3))
    await consumeKilled(log)
    expect(await deleteAndRechain(log, 14)).toBe(replayed)
    expect(await restartFails(log)).toMatchObject({ code: 'CHAIN_UNTRUSTED', details: { chain_id: log.chainId, seq: 14, kafka_offset: replayed!.toString() } })
    await expectFound(log, [[log.chainId, 14, 'offset_gap']])
  })
})
