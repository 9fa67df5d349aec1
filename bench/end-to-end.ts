/**
 * Events/s from recordRead to committed chain rows, with the broker on this
 * machine, and where the time goes.
 *
 *   npx tsx bench/end-to-end.ts [--events=200000] [--sweep-events=40000]
 *     [--partitions=3] [--window=20000] [--sweep=yes|no] [--producer-thread=both|main|worker]
 *     [--cpu-prof-dir=DIR]
 *
 * Stages measured on their own: (i) produce only, (ii) consume only (writer
 * started after everything is on the topic), (iii) chain linking in TS,
 * (iv) ClickHouse insert of prepared RowBinary rows, (v) signature check,
 * batch decode and validation.
 * Then end to end, with the SDK either in this thread (competing with the
 * writer for one event loop) or in a worker thread (as when the application
 * and the writer are separate processes), and a sweep of the settings that
 * matter.
 */
import { join } from 'node:path'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import type { Kafka } from 'kafkajs'
import { nowMicros } from '../common/time.js'
import { chainIdOf, emptyChain, linkEntries, type ChainedBatch, type ChainEntry } from '../consumers/chain.js'
import { createChainWriter } from '../consumers/chain-writer.js'
import { UNSIGNED_CHAINS } from '../consumers/chain-resume.js'
import { ChainWriterConfig, type ChainWriterConfigInput } from '../consumers/config.js'
import { waitForCatchUp } from '../consumers/lag.js'
import { assertAccessEvent } from '../consumers/validate-event.js'
import { createAuditProducer } from '../producers/audit-producer.js'
import type { AuditProducerConfigInput } from '../producers/config.js'
import { createMessageTrust } from '../consumers/message-trust.js'
import { loadTrustedProducers } from '../consumers/trusted-producers.js'
import { loadProducerSigningKey } from '../producers/signing-key.js'
import { createBatchCodec } from '../schemas/batch-codec.js'
import { signBatch } from '../schemas/batch-signature.js'
import { createCodec } from '../schemas/codec.js'
import { benchSigning, BENCH_SERVICE } from './bench-signing.js'
import { loadSchemaRegistry } from '../schemas/registry.js'
import {
  benchKafka,
  benchKafkaConnection,
  benchLogger,
  cpuSince,
  createBenchTopic,
  deleteBenchTopics,
  describeCpu,
  dropDatabase,
  machineLine,
  openBenchStore,
  perSecond,
  printTable,
  profiled,
  realisticEvents,
  realisticRead,
  sampleCpu,
  timeInserts,
  yieldToLoop,
  type BenchStore,
  type CpuSpent,
} from './bench-support.js'
import { KAFKA_OPTIONS, parseBenchArgs } from './args.js'

const ARGS = parseBenchArgs(
  'Events/s from recordRead to committed chain rows, with the throughput and CPU of each stage, then a sweep of producer and writer settings.',
  {
    events: { type: 'number', default: 200_000, help: 'events of the end-to-end run (10 record ids each)' },
    'sweep-events': { type: 'number', default: 40_000, help: 'events per run of the settings sweep' },
    partitions: { type: 'number', default: 3, help: 'partitions of the bench topic (chains)' },
    window: { type: 'number', default: 20_000, help: 'reads in flight at once: enough to keep the producer batches full, bounded so memory stays flat' },
    sweep: { type: 'string', default: 'yes', help: 'yes|no: run the sweep of producer and writer settings' },
    'producer-thread': { type: 'string', default: 'both', help: 'both|main|worker: where the SDK runs' },
    'insert-batch': { type: 'number', default: 5_000, help: 'rows per ClickHouse insert in the stage timings' },
    'catch-up-timeout-ms': { type: 'number', default: 300_000, help: 'how long the writer may take to commit everything' },
    'tuned-max-bytes': { type: 'number', default: 16 * 1024 * 1024, help: 'writer fetch size of the tuned end-to-end run' },
    'cpu-prof-dir': { type: 'string', default: '', help: 'write V8 CPU profiles of stages (i) and (ii) here (produce.cpuprofile, consume.cpuprofile)' },
    ...KAFKA_OPTIONS,
  },
)
const { events: EVENTS, 'sweep-events': SWEEP_EVENTS, partitions: PARTITIONS, window: WINDOW, 'producer-thread': PRODUCER_THREAD, 'insert-batch': INSERT_BATCH, 'catch-up-timeout-ms': CATCH_UP_TIMEOUT_MS, 'tuned-max-bytes': TUNED_MAX_BYTES } = ARGS
const SWEEP = ARGS.sweep !== 'no'
const profileTo = (name: string): string | undefined => (ARGS['cpu-prof-dir'] === '' ? undefined : join(ARGS['cpu-prof-dir'], `${name}.cpuprofile`))

type ProducerSettings = Pick<AuditProducerConfigInput, 'lingerMs' | 'maxBatchMessages' | 'compression'>
type WriterSettings = Pick<ChainWriterConfigInput, 'partitionsConsumedConcurrently' | 'maxBytesPerPartition'>

interface ProduceResult {
  /** Wall-clock ms (timeOrigin-based, comparable across threads). */
  firstCallAt: number
  lastAckAt: number
  events: number
}

interface ProduceJob {
  topic: string
  events: number
  window: number
  settings: ProducerSettings
}

/** Wall-clock milliseconds with sub-ms precision, comparable between threads. */
function wallNow(): number {
  return performance.timeOrigin + performance.now()
}

/**
 * Produces `events` reads of 10 record ids with the SDK, at most `window` in
 * flight, issuing in small chunks so the producer's sends interleave.
 */
async function produceReads(kafka: Kafka | undefined, job: ProduceJob): Promise<ProduceResult> {
  const producer = await createAuditProducer(
    { kafka: benchKafkaConnection(), topic: job.topic, service: BENCH_SERVICE, environment: 'bench', sessionHashKey: Buffer.alloc(32, 7), signingKey: benchSigning().signingKey, ...job.settings },
    { logger: benchLogger, ...(kafka ? { kafka } : {}) },
  )
  try {
    const inputs = Array.from({ length: 1000 }, (_, i) => realisticRead(i, 10))
    const chunk = 500
    const inFlight: Promise<unknown>[] = []
    const firstCallAt = wallNow()
    for (let issued = 0; issued < job.events; ) {
      const n = Math.min(chunk, job.events - issued)
      const acks: Promise<unknown>[] = []
      for (let k = 0; k < n; k++) acks.push(producer.recordRead(inputs[(issued + k) % inputs.length]!))
      issued += n
      inFlight.push(Promise.all(acks))
      if (inFlight.length * chunk >= job.window) await inFlight.shift()
      else await yieldToLoop()
    }
    await Promise.all(inFlight)
    return { firstCallAt, lastAckAt: wallNow(), events: job.events }
  } finally {
    await producer.close()
  }
}

/** The same, in a worker thread: its own event loop, like an application process. */
function produceInWorker(job: ProduceJob): Promise<ProduceResult> {
  // tsx does not hook a worker's entry module on Node 20: register it first, then load this file.
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}) })`
  return new Promise((resolve, reject) => {
    // The worker parses the same options (its own process.argv is empty).
    const worker = new Worker(boot, { eval: true, workerData: job, argv: process.argv.slice(2) })
    let result: ProduceResult | undefined
    worker.once('message', (m: ProduceResult) => (result = m))
    worker.once('error', reject)
    worker.once('exit', (code) => (result ? resolve(result) : reject(new Error(`producer worker exited with ${code} before reporting`))))
  })
}

interface ConsumeResult {
  /** writer.start() → the group has committed everything. */
  totalMs: number
  /** writer.start() → first insert begins: group join, first fetch, first batch decoded and linked. */
  startupMs: number
  /** Share of the time after start-up during which an insert was running. */
  insertBusy: number
  stored: number
  batches: number
  deadLettered: number
  cpu: CpuSpent
}

/**
 * Starts a chain writer (fresh group, fresh database) on `topic` and waits
 * until it has committed everything on the topic.
 */
async function consumeAll(kafka: Kafka, bench: BenchStore, topic: string, settings: WriterSettings, label: string): Promise<ConsumeResult> {
  const fresh = await bench.freshDatabase(label)
  const { store, timeline } = timeInserts(fresh)
  const groupId = `${topic}-${label}-${Date.now().toString(36)}`
  const writer = createChainWriter({ trust: UNSIGNED_CHAINS,
    config: ChainWriterConfig.parse({ kafka: benchKafkaConnection(), topic, groupId, trustedProducers: benchSigning().trustedProducers, ...settings }),
    kafka,
    store,
    registry: loadSchemaRegistry(),
    logger: benchLogger,
  })
  const cpu = sampleCpu()
  const t0 = performance.now()
  try {
    await writer.start()
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: CATCH_UP_TIMEOUT_MS, pollMs: 50 })
    const t1 = performance.now()
    const spent = cpuSince(cpu)
    const stats = writer.stats()
    const firstInsert = timeline.firstStartAt ?? t1
    return {
      totalMs: t1 - t0,
      startupMs: firstInsert - t0,
      insertBusy: timeline.busyMs / Math.max(1, (timeline.lastEndAt ?? t1) - firstInsert),
      stored: stats.stored,
      batches: stats.batches,
      deadLettered: stats.deadLettered,
      cpu: spent,
    }
  } finally {
    await writer.stop()
    await dropDatabase(fresh.client, fresh.database)
  }
}

interface EndToEndResult {
  cpu: CpuSpent
  producerAckedPerSec: number
  endToEndPerSec: number
  endToEndMs: number
  stored: number
  deadLettered: number
}

/** Writer running first, then the SDK produces; done when the group has committed everything. */
async function endToEnd(
  kafka: Kafka,
  bench: BenchStore,
  topics: string[],
  options: { events: number; partitions: number; producer: ProducerSettings; writer: WriterSettings; thread: 'main' | 'worker'; label: string },
): Promise<EndToEndResult> {
  const topic = await createBenchTopic(kafka, topics, options.partitions, options.label)
  const store = await bench.freshDatabase(options.label)
  const groupId = `${topic}-writer`
  const writer = createChainWriter({ trust: UNSIGNED_CHAINS,
    config: ChainWriterConfig.parse({ kafka: benchKafkaConnection(), topic, groupId, trustedProducers: benchSigning().trustedProducers, ...options.writer }),
    kafka,
    store,
    registry: loadSchemaRegistry(),
    logger: benchLogger,
  })
  try {
    await writer.start()
    const cpu = sampleCpu()
    const job: ProduceJob = { topic, events: options.events, window: WINDOW, settings: options.producer }
    const produced = options.thread === 'worker' ? await produceInWorker(job) : await produceReads(kafka, job)
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: CATCH_UP_TIMEOUT_MS, pollMs: 50 })
    const doneAt = wallNow()
    const stats = writer.stats()
    return {
      cpu: cpuSince(cpu),
      producerAckedPerSec: perSecond(produced.events, produced.lastAckAt - produced.firstCallAt),
      endToEndPerSec: perSecond(produced.events, doneAt - produced.firstCallAt),
      endToEndMs: doneAt - produced.firstCallAt,
      stored: stats.stored,
      deadLettered: stats.deadLettered,
    }
  } finally {
    await writer.stop()
    await dropDatabase(store.client, store.database)
  }
}

// ---------------------------------------------------------------- in-memory stages

/** Entries as the writer holds them: events decoded from the SDK's Avro encoding, BATCH_EVENTS to a message. */
function entriesOf(count: number): ChainEntry[] {
  const codec = createCodec(loadSchemaRegistry())
  return realisticEvents(count).map((e, i) => {
    const event = codec.decode(codec.encode(e)).event
    assertAccessEvent(event)
    return { event, offset: BigInt(Math.floor(i / BATCH_EVENTS)), index: i % BATCH_EVENTS, events: BATCH_EVENTS, keyId: 'b'.repeat(64), schemaVersion: 2 }
  })
}

/** Events per message in the in-memory stages: what a loaded producer's batches hold. */
const BATCH_EVENTS = 100

/** (iii) linkEntries over batches, as the writer calls it; returns the rows for (iv). */
function linkRate(entries: readonly ChainEntry[], batch: number): { perSec: number; bytesPerRow: number; batches: ChainedBatch[] } {
  linkEntries(emptyChain('warm/0'), entries.slice(0, 5_000), nowMicros())
  let head = emptyChain(chainIdOf('bench', 0))
  const batches: ChainedBatch[] = []
  const t0 = performance.now()
  for (let i = 0; i < entries.length; i += batch) {
    const linked = linkEntries(head, entries.slice(i, i + batch), nowMicros())
    head = linked.head
    batches.push(linked)
  }
  const ms = performance.now() - t0
  const bytesPerRow = batches.reduce((n, b) => n + b.rows.length / b.count, 0) / batches.length
  return { perSec: perSecond(entries.length, ms), bytesPerRow, batches }
}

/** (iv) ClickHouse inserts of prepared RowBinary rows (access_log and its materialised views). */
async function insertRate(bench: BenchStore, batches: readonly ChainedBatch[]): Promise<number> {
  const store = await bench.freshDatabase('insert')
  try {
    const rows = batches.reduce((n, b) => n + b.count, 0)
    const t0 = performance.now()
    for (const b of batches) await store.insertRowBinary('access_log', b.rows, b.count)
    return perSecond(rows, performance.now() - t0)
  } finally {
    await dropDatabase(store.client, store.database)
  }
}

/**
 * (v) What the writer does per event before linking: check the batch's
 * signature, decode it, validate each event; over signed batches of
 * BATCH_EVENTS events framed and signed as the SDK does.
 */
function decodeValidateRate(events: number): { decode: number; validate: number; both: number } {
  const { signingKey, trustedProducers } = benchSigning()
  const trust = createMessageTrust({ trusted: loadTrustedProducers(trustedProducers), allowUnsigned: false })
  const key = loadProducerSigningKey(signingKey)
  const all = realisticEvents(events, { producerId: 'bench' }).map((e) => ({ ...e, service: BENCH_SERVICE, environment: 'bench' }))
  const framer = createBatchCodec(loadSchemaRegistry(undefined, 'access-batch')).framer({ keyId: key.keyId, producerId: 'bench', service: BENCH_SERVICE, environment: 'bench' })
  const messages: Buffer[] = []
  for (let i = 0; i < all.length; i += BATCH_EVENTS) {
    const bodies = all.slice(i, i + BATCH_EVENTS).map((e) => framer.encodeEvent(e))
    const message = framer.frame(bodies, bodies.reduce((n, b) => n + b.length, 0))
    signBatch('bench', message, key.privateKey)
    messages.push(message)
  }
  const time = (fn: (m: Buffer) => void): number => {
    for (let i = 0; i < Math.min(100, messages.length); i++) fn(messages[i]!)
    const t0 = performance.now()
    for (const m of messages) fn(m)
    return perSecond(all.length, performance.now() - t0)
  }
  const decoded = messages.flatMap((m) => trust.read('bench', m).events)
  const decode = time((m) => void trust.read('bench', m))
  const t0 = performance.now()
  for (const e of decoded) assertAccessEvent(e)
  const validate = perSecond(decoded.length, performance.now() - t0)
  const both = time((m) => {
    for (const e of trust.read('bench', m).events) assertAccessEvent(e)
  })
  return { decode, validate, both }
}

// ---------------------------------------------------------------- main

const us = (perSec: number) => 1e6 / perSec
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

async function main(): Promise<void> {
  const started = performance.now()
  console.log(`bench/end-to-end — ${machineLine()}`)
  console.log(
    `events ${fmt(EVENTS)} (10 record ids each), ${PARTITIONS} partitions, ${fmt(WINDOW)} reads in flight; sweep ${SWEEP ? `on ${fmt(SWEEP_EVENTS)} events` : 'off'}`,
  )
  const kafka = benchKafka()
  const bench = openBenchStore()
  const topics: string[] = []
  try {
    // In-memory stages first, while nothing else runs.
    const link = linkRate(entriesOf(EVENTS), INSERT_BATCH)
    const dv = decodeValidateRate(Math.min(EVENTS, 100_000))
    const insert = await insertRate(bench, link.batches)
    link.batches.length = 0

    // (i) produce only, then (ii) consume only from the same topic.
    const topic = await createBenchTopic(kafka, topics, PARTITIONS, 'stages')
    const produceCpu = sampleCpu()
    const produced = await profiled(profileTo('produce'), () => produceReads(kafka, { topic, events: EVENTS, window: WINDOW, settings: {} }))
    const produceSpent = cpuSince(produceCpu)
    const producePerSec = perSecond(EVENTS, produced.lastAckAt - produced.firstCallAt)
    const consumed = await profiled(profileTo('consume'), () => consumeAll(kafka, bench, topic, {}, 'consume'))
    assertComplete('consume-only', consumed.stored, EVENTS, consumed.deadLettered)
    const consumePerSec = perSecond(EVENTS, consumed.totalMs)
    const loopUs = us(link.perSec) + us(dv.both)

    printTable(`Stages, each alone (${fmt(EVENTS)} events, default settings; link and insert in batches of ${fmt(INSERT_BATCH)})`, [
      { stage: '(i) produce only: recordRead → broker ack (SDK defaults)', 'events/s': producePerSec, 'µs/event': us(producePerSec), note: describeCpu(produceSpent, EVENTS) },
      {
        stage: '(ii) consume only: writer start → fetch, decode, validate, link, insert, commit → caught up',
        'events/s': consumePerSec,
        'µs/event': us(consumePerSec),
        note:
          `${fmt(consumed.totalMs)} ms, of which ${fmt(consumed.startupMs)} ms to the first insert (join, fetch, first batch); then ${fmt(perSecond(EVENTS, consumed.totalMs - consumed.startupMs))}/s ` +
          `with an insert running ${Math.round(consumed.insertBusy * 100)}% of the time; ${consumed.batches} batches of ~${fmt(EVENTS / consumed.batches)}; ${describeCpu(consumed.cpu, EVENTS)}`,
      },
      { stage: '(iii) linkEntries (RowBinary + SHA-256)', 'events/s': link.perSec, 'µs/event': us(link.perSec), note: `one thread; ${Math.round(link.bytesPerRow)} B per RowBinary row` },
      { stage: '(iv) insertRowBinary → access_log (projections, indexes) + access_by_principal', 'events/s': insert, 'µs/event': us(insert), note: 'chDB engine threads' },
      { stage: `(v) signature check + batch decode + validate (${BATCH_EVENTS} events/message)`, 'events/s': dv.both, 'µs/event': us(dv.both), note: `one thread; check+decode alone ${fmt(dv.decode)}/s, validate alone ${fmt(dv.validate)}/s` },
      {
        stage: '(iii)+(iv)+(v) back to back',
        'events/s': 1e6 / (loopUs + us(insert)),
        'µs/event': loopUs + us(insert),
        note: `(iii)+(v) run on the writer’s event loop: ${loopUs.toFixed(1)} µs/event; (iv) on engine threads, which the writer overlaps with the next batch`,
      },
    ])

    // End to end.
    const e2eRows: Record<string, string | number>[] = []
    const threads: ('main' | 'worker')[] = PRODUCER_THREAD === 'both' ? ['worker', 'main'] : [PRODUCER_THREAD === 'worker' ? 'worker' : 'main']
    for (const thread of threads) {
      const r = await endToEnd(kafka, bench, topics, { events: EVENTS, partitions: PARTITIONS, producer: {}, writer: {}, thread, label: `e2e${thread}` })
      assertComplete(`end-to-end (${thread})`, r.stored, EVENTS, r.deadLettered)
      e2eRows.push(endToEndRow(thread === 'main' ? 'defaults; SDK in the writer’s thread' : 'defaults; SDK in a worker thread', r))
    }
    if (SWEEP) await sweep(kafka, bench, topics, e2eRows)
    printTable(`End to end (${fmt(EVENTS)} events; first recordRead → waitForCatchUp; goal 100,000 events/s)`, e2eRows)
    console.log(`\n(bench took ${fmt((performance.now() - started) / 1000)} s)`)
  } finally {
    await bench.close()
    await deleteBenchTopics(kafka, topics)
  }
}

function endToEndRow(label: string, r: EndToEndResult): Record<string, string | number> {
  return {
    run: label,
    'producer acked events/s': r.producerAckedPerSec,
    'end-to-end events/s': r.endToEndPerSec,
    'ms': r.endToEndMs,
    'of goal': `${Math.round(r.endToEndPerSec / 1000)}%`,
    'cores used (bench process + broker)': `${(r.cpu.processMs / r.cpu.wallMs).toFixed(2)} + ${r.cpu.brokerMs === undefined ? '?' : (r.cpu.brokerMs / r.cpu.wallMs).toFixed(2)}`,
  }
}

/** One setting changed at a time against the defaults, then the best combination end to end. */
async function sweep(kafka: Kafka, bench: BenchStore, topics: string[], e2eRows: Record<string, string | number>[]): Promise<void> {
  const n = SWEEP_EVENTS
  const producerRows: Record<string, string | number>[] = []
  const producerVariants: [string, ProducerSettings][] = [
    ['defaults (lingerMs 0, maxBatchMessages 5000, no compression)', {}],
    ["compression 'snappy'", { compression: 'snappy' }],
    ['lingerMs 2', { lingerMs: 2 }],
    ['lingerMs 20', { lingerMs: 20 }],
    ['maxBatchMessages 20000', { maxBatchMessages: 20_000 }],
  ]
  const topicBy = new Map<string, string>()
  for (const [label, settings] of producerVariants) {
    const topic = await createBenchTopic(kafka, topics, PARTITIONS, 'sweep')
    topicBy.set(label, topic)
    const cpu = sampleCpu()
    const r = await produceReads(kafka, { topic, events: n, window: WINDOW, settings })
    const spent = cpuSince(cpu)
    producerRows.push({ 'producer setting': label, 'acked events/s': perSecond(n, r.lastAckAt - r.firstCallAt), cpu: describeCpu(spent, n) })
  }
  printTable(`Sweep: produce only (${fmt(n)} events, ${PARTITIONS} partitions, one setting changed at a time)`, producerRows)

  const plainTopic = topicBy.get(producerVariants[0]![0])!
  const snappyTopic = topicBy.get(producerVariants[1]![0])!
  const writerRows: Record<string, string | number>[] = []
  const writerVariants: [string, string, WriterSettings][] = [
    ['none', 'defaults (partitionsConsumedConcurrently 3, maxBytesPerPartition 4 MiB)', {}],
    ['none', 'partitionsConsumedConcurrently 1', { partitionsConsumedConcurrently: 1 }],
    ['none', 'maxBytesPerPartition 1 MiB', { maxBytesPerPartition: 1024 * 1024 }],
    ['none', 'maxBytesPerPartition 16 MiB', { maxBytesPerPartition: 16 * 1024 * 1024 }],
    ['snappy', 'defaults', {}],
  ]
  for (const [compression, label, settings] of writerVariants) {
    const r = await consumeAll(kafka, bench, compression === 'snappy' ? snappyTopic : plainTopic, settings, 'sweep')
    assertComplete(`consume ${label}`, r.stored, n, r.deadLettered)
    writerRows.push(consumeRow(compression, PARTITIONS, label, n, r))
  }
  // Partitions: each is a chain, written by its own batches.
  for (const partitions of [1, 6]) {
    const topic = await createBenchTopic(kafka, topics, partitions, `p${partitions}`)
    await produceReads(kafka, { topic, events: n, window: WINDOW, settings: {} })
    const r = await consumeAll(kafka, bench, topic, { partitionsConsumedConcurrently: partitions }, 'sweep')
    assertComplete(`consume ${partitions} partitions`, r.stored, n, r.deadLettered)
    writerRows.push(consumeRow('none', partitions, `partitionsConsumedConcurrently ${partitions}`, n, r))
  }
  printTable(`Sweep: consume only (${fmt(n)} events already on the topic; writer start → caught up)`, writerRows)

  // The combination the sweeps favour, end to end.
  const tuned = {
    producer: {} satisfies ProducerSettings,
    writer: { maxBytesPerPartition: TUNED_MAX_BYTES } satisfies WriterSettings,
  }
  const r = await endToEnd(kafka, bench, topics, { events: EVENTS, partitions: PARTITIONS, ...tuned, thread: 'worker', label: 'e2etuned' })
  assertComplete('end-to-end (tuned)', r.stored, EVENTS, r.deadLettered)
  e2eRows.push(endToEndRow(`maxBytesPerPartition ${TUNED_MAX_BYTES / 1024 / 1024} MiB; SDK in a worker thread`, r))
}

function consumeRow(compression: string, partitions: number, label: string, n: number, r: ConsumeResult): Record<string, string | number> {
  return {
    topic: `${partitions}p, ${compression}`,
    'writer setting': label,
    'events/s': perSecond(n, r.totalMs),
    'to 1st insert ms': r.startupMs,
    'events/batch': Math.round(r.stored / Math.max(1, r.batches)),
    'insert busy': `${Math.round(r.insertBusy * 100)}%`,
    'cores (bench + broker)': `${(r.cpu.processMs / r.cpu.wallMs).toFixed(2)} + ${r.cpu.brokerMs === undefined ? '?' : (r.cpu.brokerMs / r.cpu.wallMs).toFixed(2)}`,
  }
}

function assertComplete(what: string, stored: number, expected: number, deadLettered: number): void {
  if (stored !== expected || deadLettered !== 0) {
    console.error(`WARNING ${what}: stored ${stored} of ${expected} events, ${deadLettered} dead-lettered`)
  }
}

if (isMainThread) {
  await main()
} else {
  const job = workerData as ProduceJob
  const result = await produceReads(undefined, job)
  parentPort!.postMessage(result)
}
