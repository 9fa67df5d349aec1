/**
 * A soak: hooked PostgreSQL reads at a steady rate for a long time, through
 * the whole pipeline, watching memory and latency (issue 13).
 *
 *   npx tsx bench/soak.ts [--rate=2000] [--duration-s=600] [--sample-s=10]
 *     [--rows=5000] [--pool=8] [--max-in-flight=256] [--partitions=3]
 *     [--pg-port=5432] [--pg-database=postgres] [--brokers=127.0.0.1:19092]
 *
 * Two processes, so that each RSS is its own. This one runs the chain
 * writer and the checkpoint signer (createIngest, as `readtrail consume`
 * does) on a fresh topic and a fresh store. A child process
 * (bench/soak-app.ts) is the application: a pg.Pool with readtrail's pg hook
 * on a table this bench creates in the local PostgreSQL, and an SDK producer
 * signing as BENCH_SERVICE, issuing reads on an open-loop schedule (9 point
 * reads for each 100-row range).
 *
 * Every `sample-s` both processes' RSS and heap are sampled; at the end the
 * bench prints read → queryable latency (ingested_at − occurred_at of every
 * stored row), whether anything was lost (rows stored = reads acknowledged,
 * each producer's sequence complete from 1, no dead letters), the in-db
 * verifier's report, and how much each RSS grew over the last two thirds.
 *
 * The issue asks for half the capacity bench/end-to-end.ts measures; `--rate`
 * is the knob, and the default is not that figure on every machine.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { checkpointTopicOf } from '../checkpoints/checkpoint-topic.js'
import { generateKeyFiles, loadSigningKey } from '../checkpoints/keys.js'
import { createIngest, type Ingest } from '../consumers/ingest.js'
import { waitForCatchUp } from '../consumers/lag.js'
import { loadCheckpoints } from '../integrity/checkpoint-sources.js'
import { formatReport } from '../integrity/report.js'
import { verifyStore } from '../integrity/verify-store.js'
import type { Store } from '../store/store.js'
import { KAFKA_OPTIONS, benchBrokers, parseBenchArgs } from './args.js'
import { benchSigning } from './bench-signing.js'
import { benchKafka, benchKafkaConnection, benchLogger, createBenchTopic, deleteBenchTopics, machineLine, openBenchStore, printTable, sleep, timeInserts } from './bench-support.js'
import type { FromSoakApp, SoakAppSample, SoakAppSetup, ToSoakApp } from './soak-app.js'

const ARGS = parseBenchArgs('A soak at a steady rate of hooked PostgreSQL reads: application and writer RSS over time, read → queryable latency, nothing lost, verify clean.', {
  rate: { type: 'number', default: 2_000, help: 'hooked reads/s, issued on schedule (the issue asks for half the capacity bench/end-to-end.ts measures)' },
  'duration-s': { type: 'number', default: 600, help: 'how long reads are issued' },
  'sample-s': { type: 'number', default: 10, help: 'seconds between RSS samples' },
  rows: { type: 'number', default: 5_000, help: 'rows in the PostgreSQL table read' },
  pool: { type: 'number', default: 8, help: "the application's pg pool size" },
  'max-in-flight': { type: 'number', default: 256, help: 'reads in flight at most; beyond, the app falls behind schedule' },
  partitions: { type: 'number', default: 3, help: 'partitions of the bench topic (chains)' },
  'pg-port': { type: 'number', default: Number(process.env['PGPORT'] ?? 5432), help: 'port of the local PostgreSQL (PGPORT)' },
  'pg-database': { type: 'string', default: 'postgres', help: 'database the bench table is created in' },
  'catch-up-timeout-s': { type: 'number', default: 300, help: 'longest wait for the writer after the reads stop' },
  'fetch-linger-ms': { type: 'number', default: 0, help: "the writer's fetchLingerMs (0, the default: insert whatever each fetch brings at once)" },
  ...KAFKA_OPTIONS,
})

const MB = 1024 * 1024
const APP_FILE = fileURLToPath(new URL('./soak-app.ts', import.meta.url))
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
// The RSS verdict: growth over the last two thirds of the run below this share is "flat".
const FLAT_BELOW = 0.1

interface Sample {
  atS: number
  app: SoakAppSample
  writer: WriterSample
  stored: number
}

interface WriterSample {
  rssBytes: number
  /** RSS in anonymous pages (heaps, chDB's allocations) and in mapped files (mostly libchdb's code, paged in as it runs), from /proc. */
  anonBytes: number
  fileBytes: number
  heapUsedBytes: number
  cpuMs: number
  /** What chDB's own accounting says its allocations hold (system.metrics MemoryTracking), to hold against RssAnon. */
  chdbBytes: number
  /** Active parts of the bench database's tables: each holds its primary index and marks in memory until merged. */
  parts: number
}

async function sampleWriter(store: Store): Promise<WriterSample> {
  const [chdb] = await store.queryRows<{ tracked: string; parts: string }>(
    `SELECT (SELECT value FROM system.metrics WHERE metric = 'MemoryTracking') AS tracked,
            (SELECT count() FROM system.parts WHERE database = {db:String} AND active) AS parts`,
    { db: store.database },
  )
  const memory = process.memoryUsage()
  const status = readFileSync('/proc/self/status', 'utf8')
  const kB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024
  const cpu = process.cpuUsage()
  return { cpuMs: (cpu.user + cpu.system) / 1000, rssBytes: memory.rss, anonBytes: kB('RssAnon'), fileBytes: kB('RssFile'), heapUsedBytes: memory.heapUsed, chdbBytes: Number(chdb?.tracked ?? Number.NaN), parts: Number(chdb?.parts ?? Number.NaN) }
}

interface SoakApp {
  call(message: ToSoakApp): Promise<FromSoakApp>
  readonly child: ChildProcess
}

/** Starts the application process; each call waits for its one reply, and rejects if the child fails or exits first. */
function startApp(): SoakApp {
  // The child inherits READTRAIL_BENCH_KEYS, so it signs with the key the writer trusts.
  const child = spawn(process.execPath, ['--import', 'tsx', APP_FILE], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let waiting: { resolve: (m: FromSoakApp) => void; reject: (e: Error) => void } | undefined
  const take = () => {
    const w = waiting
    waiting = undefined
    return w
  }
  child.on('message', (m: FromSoakApp) => (m.type === 'failed' ? take()?.reject(new Error(`soak app: ${m.message}`)) : take()?.resolve(m)))
  child.on('exit', (code, signal) => take()?.reject(new Error(`soak app exited (${signal ?? code})`)))
  return {
    child,
    call(message) {
      const reply = new Promise<FromSoakApp>((resolve, reject) => (waiting = { resolve, reject }))
      child.send(message)
      return reply
    },
  }
}

async function awaitReply<T extends FromSoakApp['type']>(reply: Promise<FromSoakApp>, type: T): Promise<Extract<FromSoakApp, { type: T }>> {
  const m = await reply
  if (m.type !== type) throw new Error(`soak app answered ${m.type}, expected ${type}`)
  return m as Extract<FromSoakApp, { type: T }>
}

function pgConnection(): SoakAppSetup['pg'] {
  return { host: process.env['PGHOST'] ?? '127.0.0.1', port: ARGS['pg-port'], user: process.env['PGUSER'] ?? 'postgres', password: process.env['PGPASSWORD'] ?? '', database: ARGS['pg-database'] }
}

async function createTable(client: pg.Client, table: string, rows: number): Promise<void> {
  await client.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, full_name text NOT NULL, birth_date date NOT NULL, address text NOT NULL, phone text NOT NULL)`)
  await client.query(
    `INSERT INTO ${table} SELECT i, 'Patient ' || i, date '1940-01-01' + (i * 7919 % 25000), (i % 400) || ' Harbour Street', '+33 6 ' || lpad(i::text, 8, '0')
     FROM generate_series(1, $1::int) AS i`,
    [rows],
  )
  await client.query(`VACUUM ANALYZE ${table}`)
}

const mb = (bytes: number) => (bytes / MB).toFixed(1)

function printSample(s: Sample, previous: Sample): void {
  const dt = s.atS - previous.atS
  const readsPerS = (s.app.completed - previous.app.completed) / dt
  const cores = (ms: number, before: number) => ((ms - before) / 1000 / dt).toFixed(2)
  console.log(
    [
      `${String(Math.round(s.atS)).padStart(5)} s`,
      `app RSS ${mb(s.app.rssBytes).padStart(7)} MB (heap ${mb(s.app.heapUsedBytes).padStart(6)}, ${cores(s.app.cpuMs, previous.app.cpuMs)} cores)`,
      `writer RSS ${mb(s.writer.rssBytes).padStart(7)} MB (anon ${mb(s.writer.anonBytes)}, file ${mb(s.writer.fileBytes)}; heap ${mb(s.writer.heapUsedBytes)}, chDB ${mb(s.writer.chdbBytes)}, ${s.writer.parts} parts, ${cores(s.writer.cpuMs, previous.writer.cpuMs)} cores)`,
      `${Math.round(readsPerS).toLocaleString('en-US').padStart(6)} reads/s`,
      `behind ${s.app.behindSchedule}`,
      `acked ${s.app.acked.toLocaleString('en-US')}`,
      `failed ${s.app.failed}`,
      `stored ${s.stored.toLocaleString('en-US')}`,
    ].join('  '),
  )
}

interface Latency {
  rows: number
  p50: number
  p99: number
  max: number
}

/** ingested_at − occurred_at in ms of the rows that occurred at or after `sinceMicros`: from the read to its row (set when the writer links it, just before the insert). */
async function latencySince(store: Store, sinceMicros: string): Promise<Latency> {
  const [row] = await store.queryRows<{ rows: string; p50: number; p99: number; max: number }>(
    `SELECT count() AS rows, quantileExact(0.5)(ms) AS p50, quantileExact(0.99)(ms) AS p99, max(ms) AS max
     FROM (SELECT toFloat64(toUnixTimestamp64Micro(ingested_at) - toUnixTimestamp64Micro(occurred_at)) / 1000 AS ms
           FROM ${store.table('access_log')} WHERE toUnixTimestamp64Micro(occurred_at) >= {since:Int64})`,
    { since: sinceMicros },
  )
  return { rows: Number(row?.rows ?? 0), p50: row?.p50 ?? Number.NaN, p99: row?.p99 ?? Number.NaN, max: row?.max ?? Number.NaN }
}

interface ProducerRun {
  producer_id: string
  rows: number
  first: number
  last: number
  distinct: number
}

async function producerRuns(store: Store): Promise<ProducerRun[]> {
  // 64-bit counts arrive as strings in JSON.
  const rows = await store.queryRows<Record<keyof ProducerRun, string>>(
    `SELECT producer_id, count() AS rows, min(producer_seq) AS first, max(producer_seq) AS last, uniqExact(producer_seq) AS distinct
     FROM ${store.table('access_log')} GROUP BY producer_id ORDER BY producer_id`,
  )
  return rows.map((r) => ({ producer_id: r.producer_id, rows: Number(r.rows), first: Number(r.first), last: Number(r.last), distinct: Number(r.distinct) }))
}

/** RSS growth from the sample at a third of the run to the last one. */
function growthOf(samples: readonly Sample[], rss: (s: Sample) => number, durationS: number): Record<string, string | number> {
  const third = samples.find((s) => s.atS >= durationS / 3) ?? samples[0]!
  const last = samples[samples.length - 1]!
  const grown = rss(last) - rss(third)
  const share = grown / rss(third)
  return {
    [`RSS at ${Math.round(third.atS)} s MB`]: rss(third) / MB,
    [`RSS at ${Math.round(last.atS)} s MB`]: rss(last) / MB,
    'growth MB': grown / MB,
    'growth %': (share * 100).toFixed(1),
    'max MB': Math.max(...samples.map(rss)) / MB,
    verdict: share < FLAT_BELOW ? 'flat' : 'GROWING',
  }
}

async function main(): Promise<void> {
  const durationS = ARGS['duration-s']
  const sampleS = ARGS['sample-s']
  console.log(`bench/soak — ${machineLine()}`)
  console.log(`${ARGS.rate.toLocaleString('en-US')} hooked reads/s for ${durationS} s (the issue asks for half the capacity bench/end-to-end.ts measures: pass it with --rate), RSS sampled every ${sampleS} s`)
  const kafka = benchKafka()
  const bench = openBenchStore()
  const topics: string[] = []
  const keyDir = mkdtempSync(join(tmpdir(), 'readtrail-bench-soak-'))
  const table = `soak_patients_${randomUUID().slice(0, 8)}`
  const admin = new pg.Client(pgConnection())
  let app: SoakApp | undefined
  let ingest: Ingest | undefined
  let tableCreated = false
  // Ctrl-C or kill: the child goes first, which fails the pending call (or the next step checks the flag), and the finally below cleans up.
  let interrupted = false
  const onSignal = () => {
    interrupted = true
    app?.child.kill('SIGKILL')
  }
  const assertRunning = () => {
    if (interrupted) throw new Error('interrupted')
  }
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
  for (const signal of signals) process.on(signal, onSignal)
  try {
    const topic = await createBenchTopic(kafka, topics, ARGS.partitions, 'soak')
    const checkpointTopic = checkpointTopicOf(topic)
    topics.push(checkpointTopic)
    const groupId = `${topic}-writer`
    const { store, timeline } = timeInserts(await bench.freshDatabase('soak'))
    const keyPath = join(keyDir, 'checkpoint.key')
    generateKeyFiles(keyPath)
    const logPath = join(keyDir, 'checkpoints.jsonl')
    ingest = createIngest({
      kafka,
      store,
      logger: benchLogger,
      writer: { kafka: benchKafkaConnection(), topic, groupId, trustedProducers: benchSigning().trustedProducers, fetchLingerMs: ARGS['fetch-linger-ms'] },
      checkpoints: { key: loadSigningKey(keyPath), logPath, topic: checkpointTopic },
    })
    await ingest.start()
    const failed = ingest.failed.then((err) => {
      throw new Error(`ingest stopped: ${(err as Error).message}`, { cause: err })
    })
    failed.catch(() => {})

    await admin.connect()
    await createTable(admin, table, ARGS.rows)
    tableCreated = true
    assertRunning()
    app = startApp()
    const setup: SoakAppSetup = { brokers: benchBrokers(), topic, table, rows: ARGS.rows, pg: pgConnection(), rate: ARGS.rate, poolSize: ARGS.pool, maxInFlight: ARGS['max-in-flight'] }
    const { producerId } = await awaitReply(app.call({ type: 'start', setup }), 'ready')
    console.log(`application pid ${app.child.pid} (producer ${producerId}), writer pid ${process.pid}; table ${table} (${ARGS.rows.toLocaleString('en-US')} rows), topic ${topic}\n`)

    const samples: Sample[] = []
    // Rates and CPU of the first sample are counted from here, not from the processes' start.
    let previous: Sample = { atS: 0, app: (await awaitReply(app.call({ type: 'sample' }), 'sample')).sample, writer: await sampleWriter(store), stored: 0 }
    app.child.send({ type: 'run' } satisfies ToSoakApp)
    const start = performance.now()
    for (let k = 1; k * sampleS <= durationS; k++) {
      await Promise.race([sleep(start + k * sampleS * 1000 - performance.now()), failed])
      assertRunning()
      const { sample } = await awaitReply(app.call({ type: 'sample' }), 'sample')
      const s: Sample = { atS: (performance.now() - start) / 1000, app: sample, writer: await sampleWriter(store), stored: ingest.stats().writer.stored }
      printSample(s, previous)
      samples.push(s)
      previous = s
    }
    const { totals } = await awaitReply(app.call({ type: 'stop' }), 'stopped')
    const stopAt = performance.now()
    await Promise.race([waitForCatchUp(kafka, groupId, topic, { timeoutMs: ARGS['catch-up-timeout-s'] * 1000, pollMs: 100 }), failed])
    const catchUpMs = performance.now() - stopAt
    // The final checkpoint covers every stored row: verify then checks all of them against it.
    await ingest.stop()
    const writer = ingest.stats().writer

    console.log(
      `\nreads stopped at ${Math.round(previous.atS)} s (${Math.round(previous.app.completed / previous.atS).toLocaleString('en-US')} reads/s on average, ${ARGS.rate.toLocaleString('en-US')} asked); the app closed its producer and the writer caught up ${(catchUpMs / 1000).toFixed(1)} s later` +
        ` (issued ${totals.issued.toLocaleString('en-US')}, completed ${totals.completed.toLocaleString('en-US')}, recorded ${totals.recorded.toLocaleString('en-US')}, acknowledged ${totals.acked.toLocaleString('en-US')}, failed ${totals.failed}; ${totals.recordIds.toLocaleString('en-US')} record ids)`,
    )
    // What bounds read → queryable: each row waits for its batch's insert, and a fetch waits for the slowest partition's batch.
    const spanMs = (timeline.lastEndAt ?? 0) - (timeline.firstStartAt ?? 0)
    console.log(
      `writer inserts: ${timeline.inserts.toLocaleString('en-US')} of ${(timeline.rows / Math.max(1, timeline.inserts)).toFixed(0)} rows on average, ${(timeline.busyMs / Math.max(1, timeline.inserts)).toFixed(0)} ms each (overlaps counted once), an insert running ${((100 * timeline.busyMs) / Math.max(1, spanMs)).toFixed(0)} % of the time`,
    )

    const [last] = await store.queryRows<{ last: string }>(`SELECT toString(toUnixTimestamp64Micro(max(occurred_at))) AS last FROM ${store.table('access_log')}`)
    const lastMinuteFrom = (BigInt(last?.last ?? '0') - 60_000_000n).toString()
    const all = await latencySince(store, '0')
    const lastMinute = await latencySince(store, lastMinuteFrom)
    printTable('read → queryable (ingested_at − occurred_at of stored rows)', [
      { rows: 'all', count: all.rows, 'p50 ms': all.p50, 'p99 ms': all.p99, 'max ms': all.max },
      { rows: 'last minute of reads', count: lastMinute.rows, 'p50 ms': lastMinute.p50, 'p99 ms': lastMinute.p99, 'max ms': lastMinute.max },
    ])

    const runs = await producerRuns(store)
    const stored = runs.reduce((n, r) => n + r.rows, 0)
    const complete = runs.length > 0 && runs.every((r) => r.first === 1 && r.last === r.rows && r.distinct === r.rows)
    printTable(
      'nothing lost (per producer: rows = max(producer_seq) = distinct seqs, from 1)',
      runs.map((r) => ({ producer: r.producer_id, rows: r.rows, 'min seq': r.first, 'max seq': r.last, 'distinct seqs': r.distinct })),
    )
    console.log(
      `\nrows stored ${stored.toLocaleString('en-US')}, reads acknowledged ${totals.acked.toLocaleString('en-US')}: ${stored === totals.acked ? 'equal' : 'DIFFERENT'}; ` +
        `producer sequences ${complete ? 'complete' : 'INCOMPLETE'}; dead letters ${writer.deadLettered}; reads failed ${totals.failed}; ` +
        `${stored === totals.acked && complete && writer.deadLettered === 0 && totals.failed === 0 ? 'nothing lost' : 'LOSS'}`,
    )

    const checkpoints = await loadCheckpoints({ database: store.database, publicKeyPath: `${keyPath}.pub`, logPath, topic: { kafka, name: checkpointTopic } })
    const verifyStart = performance.now()
    const report = await verifyStore(store, { mode: 'in-db', checkpoints, kafkaLog: { kafka, topic, groupId } })
    console.log(
      `\nverify (in-db, checkpoints and Kafka log checked): ok=${report.ok}, ${report.rows_verified.toLocaleString('en-US')} rows, ${report.findings.length} findings, ` +
        `${report.producers.in_flight.length} producer gaps in flight, ${report.warnings.length} warnings (${((performance.now() - verifyStart) / 1000).toFixed(1)} s)`,
    )
    if (!report.ok || report.findings.length > 0 || report.warnings.length > 0) console.log(formatReport(report))

    printTable(`RSS from a third of the run to the end (flat: growth < ${FLAT_BELOW * 100} %)`, [
      { process: `application (pg pool + hook + SDK), pid ${app.child.pid}`, ...growthOf(samples, (s) => s.app.rssBytes, durationS) },
      { process: `chain writer + signer + chDB, pid ${process.pid}`, ...growthOf(samples, (s) => s.writer.rssBytes, durationS) },
    ])
  } finally {
    for (const signal of signals) process.off(signal, onSignal)
    if (app && app.child.exitCode === null && app.child.signalCode === null) app.child.kill('SIGKILL')
    await ingest?.stop().catch((err: Error) => console.error(`stopping ingest: ${err.message}`))
    if (tableCreated) await admin.query(`DROP TABLE IF EXISTS ${table}`).catch((err: Error) => console.error(`dropping ${table}: ${err.message}`))
    await admin.end().catch(() => {})
    await deleteBenchTopics(kafka, topics)
    await bench.close()
    rmSync(keyDir, { recursive: true, force: true })
  }
}

await main()
