/**
 * The application of bench/soak.ts: a node-postgres pool with readtrail's pg
 * hook and a signing SDK producer, issuing hooked reads at a steady rate. It
 * runs in its own process so that its RSS is its own (a worker thread would
 * share the chain writer's); soak.ts starts it with an IPC channel and drives
 * it, so it is not run by hand.
 *
 * It imports nothing of the bench's store or Kafka helpers: what it holds in
 * memory is what an application embedding the SDK holds.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createLogger } from '../common/logger.js'
import { createAuditProducer, type AuditProducer } from '../producers/audit-producer.js'
import { parseAuditContext, runWithAuditContext, type AuditContext } from '../producers/context/audit-context.js'
import { instrumentPg } from '../producers/hooks/pg.js'
import { createReadRecorder, type ReadRecorder } from '../producers/hooks/read-recorder.js'
import { BENCH_SERVICE, benchSigning } from './bench-signing.js'

export interface SoakAppSetup {
  brokers: string[]
  topic: string
  /** Unqualified name of the table soak.ts created in `public`. */
  table: string
  rows: number
  pg: { host: string; port: number; user: string; password: string; database: string }
  /** Hooked reads per second, issued on schedule whether or not earlier ones returned. */
  rate: number
  poolSize: number
  /** Reads in flight at most; past it the app falls behind schedule (reported as lag) instead of queueing without bound. */
  maxInFlight: number
}

export type ToSoakApp = { type: 'start'; setup: SoakAppSetup } | { type: 'run' } | { type: 'sample' } | { type: 'stop' }

export interface SoakAppSample {
  rssBytes: number
  heapUsedBytes: number
  /** CPU time of this process so far (user + system, every thread). */
  cpuMs: number
  /** Queries handed to the pool. */
  issued: number
  /** Queries that returned rows. */
  completed: number
  /** Read events the broker acknowledged (one per read: no read here is large enough to be split). */
  acked: number
  /** Queries that failed, and reads whose event failed or was never recorded (fail-open). */
  failed: number
  /** Reads the schedule called for that were not issued yet. */
  behindSchedule: number
  inFlight: number
}

export interface SoakAppTotals extends SoakAppSample {
  producerId: string
  /** Reads the hook handed to the producer. */
  recorded: number
  /** Record ids named by those reads. */
  recordIds: number
}

export type FromSoakApp =
  | { type: 'ready'; producerId: string }
  | { type: 'sample'; sample: SoakAppSample }
  | { type: 'stopped'; totals: SoakAppTotals }
  | { type: 'failed'; message: string }

const logger = createLogger({ level: 'warn' })
// Nine point reads for one 100-row page, as a records screen with a list view reads.
const RANGE_EVERY = 10
const PRINCIPALS = ['clerk.anna', 'clerk.bruno', 'clerk.marta', 'svc.reporting']

interface App {
  producer: AuditProducer
  recorder: ReadRecorder
  pool: pg.Pool
  setup: SoakAppSetup
}

const counts = { issued: 0, completed: 0, queryErrors: 0, recordIds: 0 }
let inFlight = 0
let behindSchedule = 0
let ticker: NodeJS.Timeout | undefined
let idle: (() => void) | undefined

async function startApp(setup: SoakAppSetup): Promise<App> {
  const producer = await createAuditProducer(
    {
      kafka: { brokers: setup.brokers, clientId: 'readtrail-soak-app' },
      topic: setup.topic,
      service: BENCH_SERVICE,
      environment: 'bench',
      sessionHashKey: randomBytes(32),
      signingKey: benchSigning().signingKey,
    },
    { logger },
  )
  const pool = new pg.Pool({ ...setup.pg, max: setup.poolSize, idleTimeoutMillis: 0 })
  const recorder = createReadRecorder(producer, { tables: { [`public.${setup.table}`]: { policy: 'fail-open' } } }, { logger })
  await instrumentPg(pool, recorder)
  return { producer, recorder, pool, setup }
}

/** Issues reads on an open-loop schedule: read i is due at i / rate seconds after the start. */
function run(app: App): void {
  const { pool, setup } = app
  const point = `SELECT * FROM ${setup.table} WHERE id = $1`
  const range = `SELECT * FROM ${setup.table} WHERE id BETWEEN $1 AND $1 + 99`
  // Validated once: runWithAuditContext does not parse a context it froze before.
  const contexts: AuditContext[] = PRINCIPALS.map((id, i) => parseAuditContext({ principal: { id }, sessionId: `soak-session-${i}`, clientIp: `10.20.0.${i + 1}`, purpose: 'case-review' }))
  const settle = () => {
    inFlight -= 1
    if (inFlight === 0) idle?.()
  }
  const issue = (i: number) => {
    const isRange = i % RANGE_EVERY === RANGE_EVERY - 1
    const id = 1 + Math.floor(Math.random() * (isRange ? setup.rows - 99 : setup.rows))
    inFlight += 1
    counts.issued += 1
    runWithAuditContext(contexts[i % contexts.length]!, () => pool.query(isRange ? range : point, [id])).then(
      (result) => {
        counts.completed += 1
        counts.recordIds += result.rowCount ?? 0
        settle()
      },
      (err: Error) => {
        if (counts.queryErrors++ === 0) logger.error({ err }, 'soak read failed')
        settle()
      },
    )
  }
  const start = performance.now()
  ticker = setInterval(() => {
    const due = Math.floor(((performance.now() - start) * setup.rate) / 1000)
    while (counts.issued < due && inFlight < setup.maxInFlight) issue(counts.issued)
    behindSchedule = due - counts.issued
  }, 5)
}

function sampleOf(app: App): SoakAppSample {
  const memory = process.memoryUsage()
  const delivery = app.producer.stats()
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    cpuMs: cpuMsOf(process.cpuUsage()),
    issued: counts.issued,
    completed: counts.completed,
    acked: delivery.acked + delivery.replayed,
    failed: counts.queryErrors + delivery.failed + app.recorder.stats().unrecorded,
    behindSchedule,
    inFlight,
  }
}

/** Stops issuing, waits for the reads in flight, then closes the producer (which flushes: every read acknowledged or failed). */
async function stop(app: App): Promise<SoakAppTotals> {
  clearInterval(ticker)
  if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve))
  await app.producer.close()
  await app.pool.end()
  return { ...sampleOf(app), behindSchedule: 0, producerId: app.producer.producerId, recorded: app.recorder.stats().recorded, recordIds: counts.recordIds }
}

function cpuMsOf(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000
}

function reply(message: FromSoakApp): void {
  process.send?.(message)
}

let app: App | undefined
let stopped = false
// The bench that started this process is gone: an orphaned load generator must not keep reading.
process.on('disconnect', () => process.exit(stopped ? 0 : 1))

process.on('message', (message: ToSoakApp) => {
  const fail = (err: unknown) => reply({ type: 'failed', message: (err as Error).stack ?? String(err) })
  switch (message.type) {
    case 'start':
      startApp(message.setup).then((started) => {
        app = started
        reply({ type: 'ready', producerId: started.producer.producerId })
      }, fail)
      break
    case 'run':
      run(app!)
      break
    case 'sample':
      reply({ type: 'sample', sample: sampleOf(app!) })
      break
    case 'stop':
      stop(app!).then((totals) => {
        stopped = true
        reply({ type: 'stopped', totals })
        process.disconnect()
      }, fail)
      break
  }
})
