import { createHash } from 'node:crypto'
import { Writable } from 'node:stream'
import { Partitioners, type Kafka, type KafkaMessage } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import { DEAD_LETTER_HEADERS, verifyDeadLetter } from '../../consumers/dead-letter-signature.js'
import { createIngest, type Ingest } from '../../consumers/ingest.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { deadLetterTopicOf, ensureTopics, EVENT_MAX_MESSAGE_BYTES, readMaxMessageBytes } from '../../consumers/topics.js'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import { readMessages, readWatermarks } from '../../integrity/kafka-log-facts.js'
import { collectFacts } from '../../integrity/verify-store.js'
import { verifyLog, type VerifyOptions, type VerifyOutcome } from '../../integrity/verify.js'
import { nextVerifyState, type VerifyState } from '../../integrity/verify-state.js'
import { assessProvenance } from '../../queries/provenance.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createCodec } from '../../schemas/codec.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { testDeployment, type TestDeployment } from '../helpers/ingest.js'
import { freshTopic, testKafka, testKafkaConnection } from '../helpers/kafka.js'
import { openTestStore } from '../helpers/store.js'
import { MIGRATING_WRITER } from '../helpers/producer-trust.js'

/**
 * Issue 11: hostile input can neither stop nor blind the pipeline. Each
 * attack is a hand-made Kafka message among good events, sent while
 * `consume` runs: a garbage value under a 256 KiB and a 2 MB key (kafkajs's
 * murmur2 over them froze the writer for minutes when it partitioned the
 * dead letter by key), a garbage value just under the event topic's
 * max.message.bytes (its copy plus headers did not fit the dead-letter
 * topic: the writer crashed and rejoined over it forever), and a message
 * naming a producer and seq (its dead letter left a producer_gap that
 * failed every answer from then on).
 */
const registry = loadSchemaRegistry()
// Good events go as wire-1 messages, to a writer that allows unsigned producers (a migrating deployment): the test is about hostile keys and values.
const codec = createCodec(registry)
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

interface Log {
  kafka: Kafka
  store: Store
  topic: string
  groupId: string
  deployment: TestDeployment
}

/** Pino lines of the ingest under test, to count group joins and crashes. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: { msg?: string }[] } {
  const lines: { msg?: string }[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as { msg?: string })
      done()
    },
  })
  return { logger: createLogger({ level: 'info' }, stream), lines }
}

async function startIngest(log: Log): Promise<{ ingest: Ingest; lines: { msg?: string }[] }> {
  const { logger, lines } = capturingLogger()
  const d = log.deployment
  const ingest = createIngest({
    kafka: log.kafka,
    store: log.store,
    logger,
    writer: { kafka: testKafkaConnection(), topic: log.topic, groupId: log.groupId, ...MIGRATING_WRITER },
    checkpoints: { key: d.key, logPath: d.logPath, topic: d.checkpointTopic, intervalMs: 3_600_000 },
  })
  afterAll(() => ingest.stop())
  await ingest.start()
  return { ingest, lines }
}

/** Sends each message on its own (a 4 MiB one fills a request), always to partition 0: the sender hashes no key either. */
async function send(log: Log, messages: { key?: Buffer | null; value: Buffer | null }[]): Promise<bigint[]> {
  const producer = log.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    const offsets: bigint[] = []
    for (const m of messages) {
      const [meta] = await producer.send({ topic: log.topic, acks: -1, messages: [{ key: m.key ?? null, value: m.value, partition: 0 }] })
      offsets.push(BigInt(meta!.baseOffset!))
    }
    return offsets
  } finally {
    await producer.disconnect()
  }
}

async function deadLetters(log: Log): Promise<KafkaMessage[]> {
  const topic = deadLetterTopicOf({ topic: log.topic })
  const marks = (await readWatermarks(log.kafka, topic, 30_000)) ?? []
  const out: KafkaMessage[] = []
  await readMessages(log.kafka, topic, marks.map((m) => ({ partition: m.partition, from: m.low, to: m.high - 1n })), { timeoutMs: 30_000, maxMessages: 1000 }, (_, m) => out.push(m))
  return out
}

async function storedEventIds(log: Log): Promise<string[]> {
  const rows = await log.store.queryRows<{ id: string }>(`SELECT toString(event_id) AS id FROM ${log.store.table('access_log')} ORDER BY seq`, {})
  return rows.map((r) => r.id)
}

async function verify(log: Log, options: Pick<VerifyOptions, 'acknowledgements' | 'acknowledge'> = {}): Promise<VerifyOutcome> {
  const checkpoints = await loadCheckpoints({
    database: log.store.database,
    publicKeyPath: log.deployment.publicKeyPath,
    logPath: log.deployment.logPath,
    topic: { kafka: log.kafka, name: log.deployment.checkpointTopic },
  })
  return verifyLog((request) => collectFacts(log.store, request), log.store.database, {
    checkpoints,
    producerGraceMs: 0,
    kafkaLog: { kafka: log.kafka, topic: log.topic, groupId: log.groupId },
    ...options,
  })
}

/** The longest the event loop was held while `work` ran: a frozen writer shows here. */
async function maxLoopStall<T>(work: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  let last = performance.now()
  let stallMs = 0
  const timer = setInterval(() => {
    const now = performance.now()
    stallMs = Math.max(stallMs, now - last - 20)
    last = now
  }, 20)
  try {
    return { result: await work(), stallMs }
  } finally {
    clearInterval(timer)
  }
}

async function newLog(kafka: Kafka, topic: string): Promise<Log> {
  return { kafka, store: await openTestStore(), topic, groupId: `${topic}-writer`, deployment: testDeployment(kafka, topic) }
}

describe('hostile messages cost their partition milliseconds and never a rejoin', () => {
  it('a 256 KiB key, a 2 MB key and a value just under the topic limit: every good event is stored within seconds, one join, bounded memory, letters signed and verified', async () => {
    const kafka = testKafka()
    const log = await newLog(kafka, await freshTopic(kafka, 1))
    const dlqLimit = await withAdmin(kafka, (admin) => readMaxMessageBytes(admin, deadLetterTopicOf({ topic: log.topic })))
    expect(dlqLimit).toBeGreaterThan(EVENT_MAX_MESSAGE_BYTES)
    const { ingest, lines } = await startIngest(log)
    const good = Array.from({ length: 8 }, () => makeEvent())
    const key256k = Buffer.alloc(256 * 1024, 0x5a)
    const key2m = Buffer.alloc(2 * 1024 * 1024, 0xa5)
    // Just under the event topic's limit, with room for the record's own overhead.
    const huge = Buffer.alloc(EVENT_MAX_MESSAGE_BYTES - 4096, 0x33)
    const heapBefore = process.memoryUsage().heapUsed
    const t0 = performance.now()
    const { stallMs } = await maxLoopStall(async () => {
      await send(log, [
        { value: codec.encode(good[0]!) },
        { key: key256k, value: Buffer.from('garbage under a 256 KiB key') },
        { value: codec.encode(good[1]!) },
        { value: codec.encode(good[2]!) },
        { key: key2m, value: Buffer.from('garbage under a 2 MB key') },
        { value: codec.encode(good[3]!) },
        { value: codec.encode(good[4]!) },
        { key: Buffer.from('big'), value: huge },
        { value: codec.encode(good[5]!) },
        { value: codec.encode(good[6]!) },
        { value: codec.encode(good[7]!) },
      ])
      await waitForCatchUp(kafka, log.groupId, log.topic, { timeoutMs: 20_000, pollMs: 100 })
    })
    const elapsedMs = performance.now() - t0
    expect(await storedEventIds(log)).toEqual(good.map((e) => e.event_id))
    expect(elapsedMs).toBeLessThan(20_000)
    // The writer runs in this process: a murmur2 over the 2 MB key held the loop for minutes.
    expect(stallMs).toBeLessThan(1_000)
    expect(ingest.stats().writer).toMatchObject({ stored: 8, deadLettered: 3 })
    expect(lines.filter((l) => l.msg === 'joined consumer group')).toHaveLength(1)
    expect(lines.filter((l) => l.msg === 'consumer crashed' || l.msg === 'rejoining the consumer group with a new consumer')).toEqual([])
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(256 * 1024 * 1024)

    const letters = await deadLetters(log)
    expect(letters.map((m) => String(m.headers?.[DEAD_LETTER_HEADERS.source]))).toEqual([1, 4, 7].map((o) => `${log.topic}/0@${o}`))
    // Long keys are replaced by their hash; the value just under the event topic's limit is copied whole (the dead-letter topic is larger).
    expect(letters.map((m) => m.key?.length ?? null)).toEqual([null, null, 3])
    expect(letters.map((m) => String(m.headers?.[DEAD_LETTER_HEADERS.keySha256] ?? ''))).toEqual([sha(key256k), sha(key2m), ''])
    expect(letters[2]!.value!.equals(huge)).toBe(true)
    for (const m of letters) expect(verifyDeadLetter(m, log.deployment.key.keyId, log.store.database)).toMatchObject({ ok: true })

    await ingest.stop()
    const { report } = await verify(log)
    // The signed letters (replaced keys included) match the messages Kafka holds and explain the skipped offsets.
    expect(report.findings).toEqual([])
    expect(report.ok).toBe(true)
  })

  it('a copy that does not fit an existing, smaller dead-letter topic is a truncated letter (source, size, SHA-256 of the value, reason), signed; verify accepts it', async () => {
    const kafka = testKafka()
    const topic = `rt-test-trunc-${Math.random().toString(36).slice(2, 10)}`
    // A dead-letter topic made before this change, no larger than 1 MiB.
    await withAdmin(kafka, (admin) =>
      admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: deadLetterTopicOf({ topic }), numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: String(1024 * 1024) }] }],
      }),
    )
    await ensureTopics(kafka, { topic, partitions: 1 })
    afterAll(() => withAdmin(kafka, (admin) => admin.deleteTopics({ topics: [topic, deadLetterTopicOf({ topic })] })).catch(() => {}))
    const log = await newLog(kafka, topic)
    const { ingest, lines } = await startIngest(log)
    const good = Array.from({ length: 3 }, () => makeEvent())
    const big = Buffer.alloc(2 * 1024 * 1024, 0x44)
    await send(log, [{ value: codec.encode(good[0]!) }, { value: big }, { value: codec.encode(good[1]!) }, { value: codec.encode(good[2]!) }])
    await waitForCatchUp(kafka, log.groupId, log.topic, { timeoutMs: 20_000, pollMs: 100 })
    expect(await storedEventIds(log)).toEqual(good.map((e) => e.event_id))
    expect(lines.filter((l) => l.msg === 'joined consumer group')).toHaveLength(1)
    expect(lines.filter((l) => l.msg === 'consumer crashed')).toEqual([])

    const [letter] = await deadLetters(log)
    expect(letter!.value).toBeNull()
    expect(letter!.headers).toMatchObject({ [DEAD_LETTER_HEADERS.source]: Buffer.from(`${topic}/0@1`) })
    expect(String(letter!.headers![DEAD_LETTER_HEADERS.valueSha256])).toBe(sha(big))
    expect(String(letter!.headers![DEAD_LETTER_HEADERS.valueSize])).toBe(String(big.length))
    expect(String(letter!.headers![DEAD_LETTER_HEADERS.error])).toContain('not Avro')
    expect(verifyDeadLetter(letter!, log.deployment.key.keyId, log.store.database)).toMatchObject({ ok: true })

    await ingest.stop()
    const { report } = await verify(log)
    expect(report.findings).toEqual([])
  })
  it('a dead-letter topic whose limit was lowered after the writer read it: the broker refuses the copy, the writer sends it without its value, no crash', async () => {
    const kafka = testKafka()
    const log = await newLog(kafka, await freshTopic(kafka, 1))
    const { ingest, lines } = await startIngest(log)
    const good = Array.from({ length: 3 }, () => makeEvent())
    // A first bad message makes the writer read the dead-letter topic's limit (5 MiB).
    await send(log, [{ value: codec.encode(good[0]!) }, { value: Buffer.from('small garbage') }])
    await waitForCatchUp(kafka, log.groupId, log.topic, { timeoutMs: 20_000, pollMs: 100 })
    const dlq = deadLetterTopicOf({ topic: log.topic })
    await withAdmin(kafka, (admin) => admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: dlq, configEntries: [{ name: 'max.message.bytes', value: String(512 * 1024) }] }] }))
    const big = Buffer.alloc(1024 * 1024, 0x21)
    await send(log, [{ value: big }, { value: codec.encode(good[1]!) }, { value: codec.encode(good[2]!) }])
    await waitForCatchUp(kafka, log.groupId, log.topic, { timeoutMs: 20_000, pollMs: 100 })
    expect(await storedEventIds(log)).toEqual(good.map((e) => e.event_id))
    expect(lines.filter((l) => l.msg === 'joined consumer group')).toHaveLength(1)
    expect(lines.filter((l) => l.msg === 'consumer crashed')).toEqual([])
    expect(lines.filter((l) => l.msg?.startsWith('the dead-letter topic refused letters as too large'))).toHaveLength(1)
    const letters = await deadLetters(log)
    expect(letters).toHaveLength(2)
    expect(letters[1]!.value).toBeNull()
    expect(String(letters[1]!.headers![DEAD_LETTER_HEADERS.valueSha256])).toBe(sha(big))
    expect(verifyDeadLetter(letters[1]!, log.deployment.key.keyId, log.store.database)).toMatchObject({ ok: true })
    await ingest.stop()
    expect((await verify(log)).report.findings).toEqual([])
  })
})

describe('a dead-lettered producer hole is accounted for, fails no other answer, and is acknowledged exactly', () => {
  /** A message that decodes but fails validation: the writer refuses it, and can still read its producer and seq. */
  const invalid = (e: AccessEvent) => codec.encode({ ...e, client_ip: 'not an address' })

  it('verify classifies the hole as dead_lettered at its source; answers stay verified; an acknowledgement clears that hole and no later one', async () => {
    const kafka = testKafka()
    const log = await newLog(kafka, await freshTopic(kafka, 1))
    const P = 'billing-api'
    const byP = (producer_seq: number) => makeEvent({ producer_id: P, producer_seq })
    const hostile = byP(3)
    const sent = await send(log, [
      { value: codec.encode(byP(1)) },
      { value: codec.encode(byP(2)) },
      { value: codec.encode(makeEvent()) },
      { value: invalid(hostile) },
      { value: codec.encode(byP(4)) },
      { value: codec.encode(makeEvent()) },
    ])
    const { ingest } = await startIngest(log)
    await waitForCatchUp(kafka, log.groupId, log.topic, { timeoutMs: 20_000, pollMs: 100 })
    await ingest.stop()
    const [letter] = await deadLetters(log)
    expect(letter!.headers).toMatchObject({ [DEAD_LETTER_HEADERS.producerId]: Buffer.from(P), [DEAD_LETTER_HEADERS.producerSeq]: Buffer.from('3') })

    const chainId = `${log.topic}/0`
    const first = await verify(log)
    // The row after the hostile message (offset 3) is seq 4.
    expect(first.report.findings.map((f) => [f.chain_id, f.seq, f.kind, f.producer])).toEqual([[chainId, 4, 'dead_lettered', { producer_id: P, from_seq: 3, to_seq: 3 }]])
    expect(first.report.findings[0]!.dead_letters).toEqual([{ producer_seq: 3, source: `${log.topic}/0@${sent[3]}`, code: 'EVENT_INVALID' }])
    expect(first.report.ok).toBe(false)

    // Answers over the chain, and an empty answer, are not failed by it.
    let state: VerifyState = nextVerifyState(null, first.report, first.producerThrough, { kafka: true, acknowledgements: first.acknowledgements })
    expect(state.chains[chainId]!.failures).toMatchObject([{ check: 'dead_lettered', from_seq: 4 }])
    expect(assessProvenance([{ chain_id: chainId, first_seq: 1, last_seq: 5, events: 5 }], state).status).toBe('verified')
    expect(assessProvenance([], state).status).toBe('verified')

    // Acknowledged: reported apart, the run is ok, and later runs keep it so from the signed state.
    const acked = await verify(log, { acknowledgements: state.acknowledgements ?? [], acknowledge: [{ target: { producer_id: P, seq: 3 }, by: 'ops', reason: 'INC-7: a hostile test message' }] })
    expect(acked.report.ok).toBe(true)
    expect(acked.report.findings).toEqual([])
    expect(acked.report.acknowledged).toMatchObject([{ kind: 'dead_lettered', producer: { producer_id: P, from_seq: 3, to_seq: 3 }, acknowledged: { by: 'ops', reason: 'INC-7: a hostile test message' } }])
    state = nextVerifyState(state, acked.report, acked.producerThrough, { kafka: true, acknowledgements: acked.acknowledgements })
    expect(state.chains[chainId]!.failures).toEqual([])
    expect((await verify(log, { acknowledgements: state.acknowledgements ?? [] })).report.ok).toBe(true)

    // A later hole of the same producer is a finding again: the acknowledgement covered exactly seq 3.
    await send(log, [{ value: invalid(byP(5)) }, { value: codec.encode(byP(6)) }])
    const again = await startIngest(log)
    await waitForCatchUp(kafka, log.groupId, log.topic, { timeoutMs: 20_000, pollMs: 100 })
    await again.ingest.stop()
    const later = await verify(log, { acknowledgements: state.acknowledgements ?? [] })
    expect(later.report.findings.map((f) => [f.kind, f.producer])).toEqual([['dead_lettered', { producer_id: P, from_seq: 5, to_seq: 5 }]])
    expect(later.report.acknowledged?.map((f) => f.producer)).toEqual([{ producer_id: P, from_seq: 3, to_seq: 3 }])

    // Nothing to acknowledge there: refused, nothing recorded.
    await expect(verify(log, { acknowledge: [{ target: { producer_id: P, seq: 4 }, by: 'ops', reason: 'x' }] })).rejects.toMatchObject({ code: 'USAGE' })
  })
})

async function withAdmin<T>(kafka: Kafka, use: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return await use(admin)
  } finally {
    await admin.disconnect()
  }
}
