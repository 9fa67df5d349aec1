/**
 * What recording a read costs the application that embeds the SDK.
 *
 *   npx tsx bench/record-read.ts [--calls=50000] [--concurrency=1,16,256,2048]
 *     [--duration-ms=3000] [--rates=1000,5000] [--partitions=3]
 *
 * (a) the synchronous part of recordRead (validate, build, fingerprint,
 *     HMAC, encode, enqueue), per call, and where it goes;
 * (b) acknowledged reads/s with N callers that each await their ack;
 * (c) ack latency at a steady, moderate open-loop rate.
 */
import { createHmac, randomBytes } from 'node:crypto'
import type avro from 'avsc'
import { uuidv7 } from '../common/uuid.js'
import { buildEvents, type EventContext } from '../producers/build-events.js'
import { createAuditProducer, type AuditProducer } from '../producers/audit-producer.js'
import { fingerprintQuery } from '../producers/query-fingerprint.js'
import { createBatchCodec } from '../schemas/batch-codec.js'
import { createCodec } from '../schemas/codec.js'
import { ReadInput } from '../schemas/read-input.js'
import { checkReadInput } from '../schemas/read-input-check.js'
import { loadSchemaRegistry } from '../schemas/registry.js'
import {
  benchKafka,
  benchKafkaConnection,
  benchLogger,
  createBenchTopic,
  deleteBenchTopics,
  distribution,
  machineLine,
  perSecond,
  printTable,
  realisticRead,
  sleep,
  yieldToLoop,
} from './bench-support.js'
import { KAFKA_OPTIONS, parseBenchArgs } from './args.js'

const { calls: CALLS, chunk: CHUNK, concurrency: CONCURRENCY, 'duration-ms': DURATION_MS, rates: RATES, 'rate-duration-ms': RATE_DURATION_MS, partitions: PARTITIONS } = parseBenchArgs(
  'What recording a read costs the application: (a) synchronous cost of recordRead, (b) acked reads/s with N callers, (c) ack latency at a steady rate.',
  {
    calls: { type: 'number', default: 50_000, help: '(a) calls timed after warm-up' },
    chunk: { type: 'number', default: 500, help: '(a) calls between yields to the event loop' },
    concurrency: { type: 'list', default: [1, 16, 256, 2048], help: '(b) callers in flight, one run each' },
    'duration-ms': { type: 'number', default: 3_000, help: '(b) length of each run' },
    rates: { type: 'list', default: [1_000, 5_000], help: '(c) reads/s of each open-loop run' },
    'rate-duration-ms': { type: 'number', default: 4_000, help: '(c) length of each run' },
    partitions: { type: 'number', default: 3, help: 'partitions of the bench topic' },
    ...KAFKA_OPTIONS,
  },
)

const sessionHashKey = randomBytes(32)

async function main(): Promise<void> {
  console.log(`bench/record-read — ${machineLine()}`)
  const kafka = benchKafka()
  const topics: string[] = []
  let producer: AuditProducer | undefined
  try {
    const topic = await createBenchTopic(kafka, topics, PARTITIONS, 'sdk')
    producer = await createAuditProducer(
      { kafka: benchKafkaConnection(), topic, service: 'registry-api', environment: 'bench', sessionHashKey },
      { kafka, logger: benchLogger },
    )
    const { lingerMs, maxBatchMessages, compression } = producer.config
    console.log(`topic ${topic} (${PARTITIONS} partitions); producer defaults: lingerMs ${lingerMs}, maxBatchMessages ${maxBatchMessages}, compression ${compression}`)

    await syncCost(producer)
    syncBreakdown(producer.producerId)
    await ackedThroughput(producer)
    await ackLatency(producer)
  } finally {
    await producer?.close()
    await deleteBenchTopics(kafka, topics)
  }
}

/** (a) Time until recordRead returns its promise, per call. */
async function syncCost(producer: AuditProducer): Promise<void> {
  const inputs = Array.from({ length: 1000 }, (_, i) => realisticRead(i, 10))
  const run = async (calls: number): Promise<Float64Array> => {
    const micros = new Float64Array(calls)
    const acks: Promise<unknown>[] = []
    for (let i = 0; i < calls; i++) {
      const input = inputs[i % inputs.length]!
      const t0 = performance.now()
      const ack = producer.recordRead(input)
      micros[i] = (performance.now() - t0) * 1000
      acks.push(ack)
      // A real caller yields between requests; so does this loop, or the
      // producer could never send and the queue would only grow.
      if (i % CHUNK === CHUNK - 1) await yieldToLoop()
    }
    await Promise.all(acks)
    return micros
  }
  await run(Math.min(10_000, CALLS)) // JIT warm-up
  const t0 = performance.now()
  const micros = await run(CALLS)
  const wall = performance.now() - t0
  const d = distribution(micros)
  printTable(`(a) synchronous cost of recordRead (10 record ids, 5 columns, SQL with literals, sessionId, clientIp), ${CALLS.toLocaleString('en-US')} calls`, [
    { 'mean µs': d.mean, 'p50 µs': d.p50, 'p90 µs': d.p90, 'p99 µs': d.p99, 'max µs': d.max, 'calls/s of one core (1/mean)': 1e6 / d.mean },
  ])
  console.log(`(all ${CALLS.toLocaleString('en-US')} acked ${Math.round(wall)} ms after the first call, ${Math.round(perSecond(CALLS, wall)).toLocaleString('en-US')} reads/s, one core also sending)`)
}

/** Where the synchronous time goes: the same steps, timed one by one. */
function syncBreakdown(producerId: string): void {
  const iterations = Math.max(10_000, CALLS)
  const registry = loadSchemaRegistry()
  const codec = createCodec(registry)
  const ctx: EventContext = {
    service: 'registry-api',
    environment: 'bench',
    producerId,
    sessionHashKey,
    sqlDialect: 'postgres',
    recordIdBudget: () => 900_000 - 16 * 1024,
    maxMessageBytes: 900_000,
    // As the producer keeps it: 97 sessions among the 1,000 inputs.
    sessionHashes: new Map(),
  }
  const inputs = Array.from({ length: 1000 }, (_, i) => realisticRead(i, 10))
  const parsed = inputs.map((r) => ReadInput.parse(r))
  const drafts = parsed.map((p) => buildEvents(p, ctx)[0]!)
  const events = drafts.map((d, i) => ({ ...d, event_id: uuidv7(), producer_seq: i + 1 }))
  const queries = inputs.map((r) => r.query!)

  let sink = 0
  const time = (fn: (i: number) => unknown): number => {
    for (let i = 0; i < 5_000; i++) fn(i % 1000)
    const t0 = performance.now()
    for (let i = 0; i < iterations; i++) {
      if (fn(i % 1000) === undefined) sink += 1
    }
    return ((performance.now() - t0) * 1000) / iterations
  }
  const validate = time((i) => checkReadInput(inputs[i]))
  const validateZod = time((i) => ReadInput.safeParse(inputs[i]))
  const build = time((i) => buildEvents(parsed[i]!, ctx))
  const fingerprint = time((i) => fingerprintQuery(queries[i]!, 'postgres'))
  const hmac = time((i) => createHmac('sha256', sessionHashKey).update(inputs[i]!.sessionId!).digest())
  const ids = time(() => uuidv7())
  // Wire 3 (the SDK's default) encodes each event with the framer, now the
  // event writer; avsc's toBuffer of the same item type is what it replaced.
  const batchRegistry = loadSchemaRegistry(undefined, 'access-batch')
  const framer = createBatchCodec(batchRegistry).framer({ keyId: '', producerId, service: ctx.service, environment: ctx.environment })
  const eventType = ((batchRegistry.current.type as avro.types.RecordType).fields.find((f) => f.name === 'events')!.type as avro.types.ArrayType).itemsType
  const events100 = inputs.map((_, i) => ({ ...buildEvents(ReadInput.parse(realisticRead(i, 100)), ctx)[0]!, event_id: uuidv7(), producer_seq: i + 1 }))
  const encode = time((i) => framer.encodeEvent(events[i]!))
  const encodeAvsc = time((i) => eventType.toBuffer(events[i]))
  const encode100 = time((i) => framer.encodeEvent(events100[i]!))
  const encodeAvsc100 = time((i) => eventType.toBuffer(events100[i]))
  const encodeWire1 = time((i) => codec.encode(events[i]))
  const total = validate + build + ids + encode
  printTable('(a) breakdown of the synchronous cost (mean µs per call, each step timed alone on the same inputs)', [
    { step: 'validate: checkReadInput (the hand check)', 'µs/call': validate, share: pct(validate, total) },
    { step: '  (ReadInput.safeParse, for reads it leaves to zod)', 'µs/call': validateZod, share: '' },
    { step: 'build: buildEvents (all of it)', 'µs/call': build, share: pct(build, total) },
    { step: '  of which fingerprintQuery', 'µs/call': fingerprint, share: pct(fingerprint, total) },
    { step: '  (HMAC-SHA256(sessionId) uncached; the producer caches it per session)', 'µs/call': hmac, share: '' },
    { step: '  rest: cached session hash, read_id uuidv7, event object, clock, id split', 'µs/call': build - fingerprint, share: pct(build - fingerprint, total) },
    { step: 'event_id: uuidv7', 'µs/call': ids, share: pct(ids, total) },
    { step: 'encode: framer.encodeEvent (wire 3, schemas/event-writer.ts)', 'µs/call': encode, share: pct(encode, total) },
    { step: '  (avsc eventType.toBuffer, the same events)', 'µs/call': encodeAvsc, share: '' },
    { step: '  (100 record ids: event writer)', 'µs/call': encode100, share: '' },
    { step: '  (100 record ids: avsc eventType.toBuffer)', 'µs/call': encodeAvsc100, share: '' },
    { step: '  (wire 1: codec.encode, avsc + header)', 'µs/call': encodeWire1, share: '' },
    { step: 'sum', 'µs/call': total, share: '100%' },
  ])
  if (sink < 0) console.log(sink)
}

function pct(part: number, whole: number): string {
  return `${Math.round((part / whole) * 100)}%`
}

/** (b) N callers, each awaiting its own ack before the next read, for a fixed time. */
async function ackedThroughput(producer: AuditProducer): Promise<void> {
  const rows: Record<string, string | number>[] = []
  for (const recordIds of [1, 100]) {
    const inputs = Array.from({ length: 1000 }, (_, i) => realisticRead(i, recordIds))
    for (const callers of CONCURRENCY) {
      let done = 0
      const latencies: number[] = []
      const deadline = performance.now() + DURATION_MS
      const t0 = performance.now()
      await Promise.all(
        Array.from({ length: callers }, async (_, c) => {
          let i = c
          while (performance.now() < deadline) {
            const s = performance.now()
            await producer.recordRead(inputs[i % inputs.length]!)
            latencies.push(performance.now() - s)
            done += 1
            i += callers
          }
        }),
      )
      const wall = performance.now() - t0
      const d = distribution(latencies)
      rows.push({
        'record ids/read': recordIds,
        callers,
        'acked reads/s (= events/s)': perSecond(done, wall),
        'record ids/s': perSecond(done * recordIds, wall),
        'ack p50 ms': d.p50,
        'ack p99 ms': d.p99,
        reads: done,
      })
      await sleep(200)
    }
  }
  printTable(`(b) acknowledged throughput: N concurrent callers, each awaiting its ack, ${DURATION_MS} ms per row`, rows)
}

/** (c) Open loop: reads issued at a steady rate whatever the acks do. */
async function ackLatency(producer: AuditProducer): Promise<void> {
  const inputs = Array.from({ length: 1000 }, (_, i) => realisticRead(i, 10))
  const rows: Record<string, string | number>[] = []
  for (const rate of RATES) {
    const latencies: number[] = []
    const acks: Promise<void>[] = []
    const t0 = performance.now()
    let issued = 0
    while (performance.now() - t0 < RATE_DURATION_MS) {
      const due = Math.floor(((performance.now() - t0) * rate) / 1000)
      while (issued < due) {
        const s = performance.now()
        acks.push(producer.recordRead(inputs[issued % inputs.length]!).then(() => void latencies.push(performance.now() - s)))
        issued += 1
      }
      await sleep(1)
    }
    await Promise.all(acks)
    const d = distribution(latencies)
    rows.push({ 'reads/s offered': rate, reads: issued, 'ack p50 ms': d.p50, 'ack p90 ms': d.p90, 'ack p99 ms': d.p99, 'ack max ms': d.max })
  }
  printTable(`(c) ack latency at a steady rate (10 record ids/read, ${RATE_DURATION_MS} ms each; producer defaults)`, rows)
}

await main()
