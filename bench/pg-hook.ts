/**
 * What auditing PostgreSQL reads costs the application: the same Node
 * workload against the same server, three ways, in one run.
 *
 *   npx tsx bench/pg-hook.ts [--duration-ms=5000] [--rounds=5] [--concurrency=16]
 *     [--pool=8] [--rows=100000] [--port=55432] [--brokers=127.0.0.1:19092] [--keep]
 *     [--variants=a,b,c,d,e] [--redis-url=redis://127.0.0.1:6379] [--cpu-prof-dir=DIR] [--linger-ms=5] [--compression=none] [--delivery-thread=main|worker]
 *
 * (a) no audit: pgaudit loaded but `pgaudit.log = none` for the session;
 * (b) pgAudit: `pgaudit.log = read` for the session (one server-log line per
 *     statement, written through the logging collector);
 * (c) readtrail: `pgaudit.log = none`, the pool instrumented by instrumentPg,
 *     every worker loop inside runWithAuditContext, events acknowledged by the
 *     local broker;
 * (d) guard, in-process: (c) plus the extraction guard (producers/guard) with
 *     a budget on the table that is never reached, counted in this process;
 * (e) guard, Redis: the same budget counted in Redis (one script call per
 *     query, the machine's Redis), as instances sharing a budget do.
 * (d) and (e) against (c) are the guard's own cost per read.
 *
 * Two query shapes: one row by primary key, and a 100-row primary-key range.
 * The server is a private cluster (scripts/pg-bench-cluster.sh, port 55432)
 * so the machine's own PostgreSQL is left as it is; it is stopped at the end
 * unless --keep.
 *
 * Each variant runs in its own worker thread with its own pool: Node 20's
 * AsyncLocalStorage turns promise hooks on for the whole isolate once
 * runWithAuditContext has run, and (a) and (b) must not pay for (c)'s context.
 * Variants are interleaved (rotating order) over several rounds after a
 * discarded warm-up, and each figure is the median over rounds.
 *
 * `--cpu-prof-dir` writes a V8 CPU profile of each measured run, taken inside
 * the variant's worker for the run's duration only (no start-up, no other
 * variant): `<variant>-<shape>-r<round>.cpuprofile`, for Chrome DevTools or
 * speedscope.
 */
import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import pg from 'pg'
import { createAuditProducer, type AuditProducer } from '../producers/audit-producer.js'
import { benchSigning, BENCH_SERVICE } from './bench-signing.js'
import { runWithAuditContext } from '../producers/context/audit-context.js'
import { instrumentPg } from '../producers/hooks/pg.js'
import { createReadRecorder, type ReadRecorderStats } from '../producers/hooks/read-recorder.js'
import type { ParsedReadInput } from '../schemas/read-input.js'
import type { Durability } from '../producers/delivery.js'
import {
  benchKafka,
  benchKafkaConnection,
  benchLogger,
  cpuSince,
  createBenchTopic,
  deleteBenchTopics,
  distribution,
  machineLine,
  median,
  printTable,
  profiled,
  sampleCpu,
  sleep,
} from './bench-support.js'
import { KAFKA_OPTIONS, parseBenchArgs } from './args.js'

const VARIANTS = ['no audit', 'pgAudit', 'readtrail', 'guard memory', 'guard redis'] as const
type Variant = (typeof VARIANTS)[number]
/** The variants whose pool carries the readtrail hook. */
function isHooked(variant: Variant): boolean {
  return variant === 'readtrail' || variant === 'guard memory' || variant === 'guard redis'
}
const SHAPES = ['1 row by id', '100-row range'] as const
type Shape = (typeof SHAPES)[number]

const SQL: Record<Shape, string> = {
  '1 row by id': 'SELECT * FROM people WHERE id = $1',
  '100-row range': 'SELECT * FROM people WHERE id BETWEEN $1 AND $1 + 99',
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
const DATABASE = 'readtrail_bench'

interface WorkerSetup {
  variant: Variant
  port: number
  topic: string
  brokers: string[]
  lingerMs: number
  compression: 'snappy' | 'gzip' | 'none'
  deliveryThread: 'main' | 'worker'
  poolSize: number
  rows: number
  redisUrl: string
}

type Request = { type: 'run'; shape: Shape; durationMs: number; concurrency: number; profileTo: string | undefined } | { type: 'close' }

interface RunResult {
  queries: number
  rows: number
  errors: number
  elapsedMs: number
  latenciesMs: Float64Array
  /** readtrail only: record ids handed to the producer during the run. */
  idsRecorded: number
  /** readtrail only: time after the run until every event was durable. */
  flushMs: number
  /** Garbage-collection pauses of this variant's thread during the run. */
  gcMinorMs: number
  gcMajorMs: number
}

interface HookTotals {
  stats: ReadRecorderStats
  acked: number
  toOutbox: number
  failed: number
  idsAcked: number
  sample: { table: string; columns: string[]; recordIds: string[]; rowCount: number | undefined } | undefined
}

type Reply = { type: 'ready' } | { type: 'ran'; result: RunResult } | { type: 'closed'; hook: HookTotals | undefined } | { type: 'failed'; message: string }

// ---------------------------------------------------------------- worker

async function runWorker(setup: WorkerSetup): Promise<void> {
  const port = parentPort!
  const pool = new pg.Pool({
    host: '127.0.0.1',
    port: setup.port,
    user: 'postgres',
    database: DATABASE,
    max: setup.poolSize,
    // Never close idle connections: the other variants' rounds leave this pool idle.
    idleTimeoutMillis: 0,
    options: `-c pgaudit.log=${setup.variant === 'pgAudit' ? 'read' : 'none'}`,
  })
  let producer: AuditProducer | undefined
  let recorderStats: (() => Readonly<ReadRecorderStats>) | undefined
  let closeRecorder: (() => Promise<void>) | undefined
  const hook: Omit<HookTotals, 'stats'> & { idsEnqueued: number } = { acked: 0, toOutbox: 0, failed: 0, idsAcked: 0, idsEnqueued: 0, sample: undefined }

  if (isHooked(setup.variant)) {
    const real = await createAuditProducer(
      // Signed batches, as a deployed producer sends them: the signing is part of what the hook costs.
      { kafka: { brokers: setup.brokers, clientId: 'bench' }, topic: setup.topic, service: BENCH_SERVICE, environment: 'bench', signingKey: benchSigning().signingKey, lingerMs: setup.lingerMs, compression: setup.compression, deliveryThread: setup.deliveryThread },
      { logger: benchLogger },
    )
    producer = real
    // Counts what the broker acknowledged, so the report can show every read
    // was recorded; one extra `then` per read, charged to this variant.
    const counting: AuditProducer = Object.freeze({
      ...real,
      enqueueParsedRead(input: ParsedReadInput, settle: (err: Error | undefined, durability?: Durability) => void) {
        const ids = input.recordIds.length
        hook.idsEnqueued += ids
        hook.sample ??= { table: input.resource.table, columns: [...input.columns], recordIds: input.recordIds.slice(0, 5).map(String), rowCount: input.rowCount }
        return real.enqueueParsedRead(input, (err, durability) => {
          if (err) hook.failed += 1
          else if (durability === 'outbox') hook.toOutbox += 1
          else {
            hook.acked += 1
            hook.idsAcked += ids
          }
          settle(err, durability)
        })
      },
    })
    // A budget far above what the bench reads: every read is checked and counted, none refused.
    const guard =
      setup.variant === 'readtrail'
        ? undefined
        : {
            budgets: { people: { tables: ['public.people'], limits: { user: { perMinute: 1_000_000_000, perHour: 1_000_000_000 } } } },
            ...(setup.variant === 'guard redis' ? { redis: { url: setup.redisUrl, keyPrefix: `readtrail-bench:${process.pid}:`, timeoutMs: 1000 } } : {}),
          }
    const recorder = createReadRecorder(counting, { tables: { 'public.people': { policy: 'fail-open' } }, guard }, { logger: benchLogger })
    closeRecorder = () => recorder.close()
    recorderStats = recorder.stats
    await instrumentPg(pool, recorder)
  }

  // Open every connection before measuring.
  const clients = await Promise.all(Array.from({ length: setup.poolSize }, () => pool.connect()))
  for (const c of clients) c.release()

  async function run(shape: Shape, durationMs: number, concurrency: number): Promise<RunResult> {
    const sql = SQL[shape]
    const span = shape === '1 row by id' ? setup.rows : setup.rows - 99
    const latencies: number[] = []
    let queries = 0
    let rows = 0
    let errors = 0
    const idsBefore = hook.idsEnqueued
    let gcMinorMs = 0
    let gcMajorMs = 0
    const gc = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if ((entry as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gcMinorMs += entry.duration
        else gcMajorMs += entry.duration
      }
    })
    gc.observe({ entryTypes: ['gc'] })
    const start = performance.now()
    const deadline = start + durationMs
    const loop = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const id = 1 + Math.floor(Math.random() * span)
        const t0 = performance.now()
        try {
          const result = await pool.query(sql, [id])
          rows += result.rowCount ?? 0
          queries += 1
          latencies.push(performance.now() - t0)
        } catch (err) {
          errors += 1
          if (errors === 1) console.error(`${setup.variant}: ${(err as Error).message}`)
        }
      }
    }
    const loops = Array.from({ length: concurrency }, () =>
      isHooked(setup.variant) ? runWithAuditContext({ principal: { id: 'clerk.bench' } }, loop) : loop(),
    )
    await Promise.all(loops)
    const elapsedMs = performance.now() - start
    gc.disconnect()
    let flushMs = 0
    if (producer) {
      const t0 = performance.now()
      await producer.flush()
      flushMs = performance.now() - t0
    }
    return { queries, rows, errors, elapsedMs, latenciesMs: Float64Array.from(latencies), idsRecorded: hook.idsEnqueued - idsBefore, flushMs, gcMinorMs, gcMajorMs }
  }

  port.on('message', (request: Request) => {
    const reply = (r: Reply, transfer: ArrayBuffer[] = []) => port.postMessage(r, transfer)
    const fail = (err: unknown) => reply({ type: 'failed', message: (err as Error).stack ?? String(err) })
    if (request.type === 'run') {
      profiled(request.profileTo, () => run(request.shape, request.durationMs, request.concurrency)).then((result) => reply({ type: 'ran', result }, [result.latenciesMs.buffer as ArrayBuffer]), fail)
    } else {
      ;(async () => {
        await pool.end()
        await closeRecorder?.()
        if (producer) await producer.close()
        const { idsEnqueued: _, ...totals } = hook
        reply({ type: 'closed', hook: recorderStats ? { stats: { ...recorderStats() }, ...totals } : undefined })
        port.close()
      })().catch(fail)
    }
  })
  port.postMessage({ type: 'ready' } satisfies Reply)
}

// ---------------------------------------------------------------- main thread

interface VariantWorker {
  call(request: Request): Promise<Reply>
  terminate(): Promise<number>
}

function startWorker(setup: WorkerSetup): Promise<VariantWorker> {
  // tsx does not hook a worker's entry module on Node 20: register it first, then load this file.
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}) })`
  const worker = new Worker(boot, { eval: true, workerData: setup })
  let waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void } | undefined
  const settle = (fn: (w: NonNullable<typeof waiting>) => void) => {
    const w = waiting
    waiting = undefined
    if (w) fn(w)
  }
  worker.on('message', (reply: Reply) => settle((w) => (reply.type === 'failed' ? w.reject(new Error(`${setup.variant} worker: ${reply.message}`)) : w.resolve(reply))))
  worker.on('error', (err) => settle((w) => w.reject(err)))
  worker.on('exit', (code) => settle((w) => w.reject(new Error(`${setup.variant} worker exited with ${code}`))))
  const next = () => new Promise<Reply>((resolve, reject) => (waiting = { resolve, reject }))
  const handle: VariantWorker = {
    call(request) {
      const reply = next()
      worker.postMessage(request)
      return reply
    },
    terminate: () => worker.terminate(),
  }
  return next().then(() => handle)
}

function cluster(command: 'start' | 'stop', port: number): string {
  return execFileSync('bash', [join(REPO_ROOT, 'scripts', 'pg-bench-cluster.sh'), command], {
    encoding: 'utf8',
    env: { ...process.env, READTRAIL_PG_BENCH_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
}

async function seed(client: pg.Client, rows: number): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS people (
    id bigint PRIMARY KEY,
    full_name text NOT NULL,
    birth_date date NOT NULL,
    address text NOT NULL,
    phone text NOT NULL
  )`)
  const { rows: found } = await client.query<{ n: string; max: string | null }>('SELECT count(*) AS n, max(id) AS max FROM people')
  if (Number(found[0]?.n) === rows && Number(found[0]?.max) === rows) return
  const t0 = performance.now()
  await client.query('TRUNCATE people')
  await client.query(
    `INSERT INTO people (id, full_name, birth_date, address, phone)
     SELECT i,
            (ARRAY['Anna','Bruno','Marta','Luca','Giulia','Paolo'])[1 + i % 6] || ' ' || (ARRAY['Rossi','Bianchi','Esposito','Romano','Colombo'])[1 + i % 5] || ' ' || i,
            date '1940-01-01' + (i * 7919 % 25000),
            (i % 400) || ' Via Garibaldi, ' || (ARRAY['Milano','Torino','Napoli','Bologna'])[1 + i % 4],
            '+39 02 ' || lpad((i * 31 % 10000000)::text, 7, '0')
     FROM generate_series(1, $1::int) AS i`,
    [rows],
  )
  await client.query('VACUUM ANALYZE people')
  console.log(`seeded people with ${rows.toLocaleString('en-US')} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

/** CPU time (ms) of the postmaster and every backend, from /proc; Linux ticks are 1/100 s. */
function serverCpuMs(postmasterPid: number): number {
  let ticks = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // After the command name: state, ppid, …, utime (11), stime (12).
      if (Number(entry) === postmasterPid || Number(fields[1]) === postmasterPid) ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // The process exited while we read /proc.
    }
  }
  return ticks * 10
}

/** Busy CPU time (ms) of the whole machine, from the first line of /proc/stat (user … steal, without idle and iowait). */
function machineBusyMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields
  return (user + nice + system + irq + softirq + steal) * 10
}

/** pgAudit's lines for the bench table written to the log since `from`, and one of them. */
function countAuditLines(file: string, from: number): { lines: number; sample: string | undefined } {
  const fd = openSync(file, 'r')
  try {
    const chunk = Buffer.alloc(8 * 1024 * 1024)
    let position = from
    let carry = ''
    let lines = 0
    let sample: string | undefined
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, position)
      if (n === 0) break
      position += n
      const text = carry + chunk.toString('utf8', 0, n)
      const cut = text.lastIndexOf('\n')
      carry = text.slice(cut + 1)
      for (const line of text.slice(0, cut).split('\n')) {
        if (line.includes('AUDIT: SESSION,') && line.includes('FROM people')) {
          lines += 1
          sample ??= line
        }
      }
    }
    return { lines, sample }
  } finally {
    closeSync(fd)
  }
}

interface Measured {
  run: RunResult
  nodeCores: number
  pgCores: number
  brokerCores: number | undefined
  /** Everything else on the machine: other processes, kernel threads, interrupts. */
  otherCores: number
}

async function main(): Promise<void> {
  const args = parseBenchArgs('What auditing PostgreSQL reads costs the application: the same workload against the same server, without readtrail and with its pg hook.', {
    'duration-ms': { type: 'number', default: 5_000, help: 'length of each measured round per shape and variant' },
    rounds: { type: 'number', default: 5, help: 'measured rounds (after one warm-up round)' },
    concurrency: { type: 'number', default: 16, help: 'query loops in flight' },
    pool: { type: 'number', default: 8, help: 'pg pool size' },
    rows: { type: 'number', default: 100_000, help: 'rows seeded into the bench table' },
    port: { type: 'number', default: 55_432, help: 'port of the bench PostgreSQL cluster (scripts/pg-bench-cluster.sh)' },
    keep: { type: 'flag', help: 'leave the bench PostgreSQL cluster running' },
    variants: { type: 'string', default: 'a,b,c,d,e', help: 'which variants to run, some of a,b,c,d,e' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379', help: 'Redis of variant (e), the guard counting in Redis' },
    'cpu-prof-dir': { type: 'string', default: '', help: 'write CPU profiles of the workers here' },
    'linger-ms': { type: 'number', default: 5, help: 'producer lingerMs' },
    compression: { type: 'string', default: 'none', help: 'none|snappy|gzip (none: the SDK default)' },
    'delivery-thread': { type: 'string', default: 'main', help: 'main|worker: where the SDK delivers' },
    ...KAFKA_OPTIONS,
  })
  const durationMs = args['duration-ms']
  const rounds = args.rounds
  const concurrency = args.concurrency
  const poolSize = args.pool
  const rows = args.rows
  const pgPort = args.port
  const keep = args.keep
  const variantLetters = args.variants.split(',')
  const variants = VARIANTS.filter((_, i) => variantLetters.includes('abcde'[i]!))
  if (variants.length === 0) throw new RangeError(`option variants must name some of a, b, c, d, e (got '${variantLetters.join(',')}')`)
  const profileDir = args['cpu-prof-dir'] || undefined
  const lingerMs = args['linger-ms']
  const compression = args.compression
  const deliveryThread = args['delivery-thread']
  if (deliveryThread !== 'main' && deliveryThread !== 'worker') throw new RangeError(`option delivery-thread must be main or worker (got '${deliveryThread}')`)
  if (compression !== 'snappy' && compression !== 'gzip' && compression !== 'none') throw new RangeError(`option compression must be snappy, gzip or none (got '${compression}')`)
  if (profileDir) mkdirSync(profileDir, { recursive: true })
  const warmupMs = Math.min(3_000, durationMs)
  console.log(`bench/pg-hook — ${machineLine()}`)
  console.log(
    `${rounds} rounds × ${SHAPES.length} shapes × ${variants.length} variants × ${durationMs} ms (+1 warm-up round of ${warmupMs} ms, discarded); ${concurrency} loops in flight on a pool of ${poolSize}`,
  )

  const brokersGiven = args.brokers !== '' || process.env['READTRAIL_KAFKA_BROKERS'] !== undefined
  if (!brokersGiven) console.log(execFileSync('bash', [join(REPO_ROOT, 'scripts', 'kafka.sh'), 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim())
  console.log(cluster('start', pgPort))

  const kafka = benchKafka()
  const topics: string[] = []
  const workers: VariantWorker[] = []
  try {
    const admin = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', database: DATABASE })
    await admin.connect()
    let auditFile: string
    let auditFrom: number
    let postmasterPid: number
    try {
      await seed(admin, rows)
      const { rows: info } = await admin.query<{ log: string; data: string; version: string }>(
        "SELECT pg_current_logfile() AS log, current_setting('data_directory') AS data, current_setting('server_version') AS version",
      )
      const dataDir = info[0]!.data
      auditFile = info[0]!.log.startsWith('/') ? info[0]!.log : join(dataDir, info[0]!.log)
      auditFrom = statSync(auditFile).size
      postmasterPid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
      console.log(`PostgreSQL ${info[0]!.version}, pgaudit loaded; server log ${auditFile}`)
    } finally {
      await admin.end()
    }

    const topic = await createBenchTopic(kafka, topics, 2, 'pg-hook')
    const brokers = [...benchKafkaConnection().brokers]
    console.log(`readtrail events go to ${topic} (2 partitions) on ${brokers.join(',')}, lingerMs ${lingerMs}, compression ${compression}, policy fail-open`)
    for (const variant of variants) workers.push(await startWorker({ variant, port: pgPort, topic, brokers, lingerMs, compression, deliveryThread, poolSize, rows, redisUrl: args['redis-url'] }))

    const results = new Map<string, Measured[]>()
    const key = (shape: Shape, variant: Variant) => `${shape}|${variant}`
    let pgAuditQueries = 0
    for (let round = 0; round <= rounds; round++) {
      const warmup = round === 0
      const ms = warmup ? warmupMs : durationMs
      // Rotate which variant goes first, so none always follows the same one.
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!)
      const line: string[] = []
      for (const shape of SHAPES) {
        for (const variant of order) {
          const cpu = sampleCpu()
          const machineBefore = machineBusyMs()
          const pgBefore = serverCpuMs(postmasterPid)
          const profileTo = profileDir && !warmup ? join(profileDir, `${variant.replace(/\W+/g, '-')}-${shape.replace(/\W+/g, '-')}-r${round}.cpuprofile`) : undefined
          const reply = await workers[variants.indexOf(variant)]!.call({ type: 'run', shape, durationMs: ms, concurrency, profileTo })
          if (reply.type !== 'ran') throw new Error(`unexpected reply ${reply.type}`)
          const spent = cpuSince(cpu)
          const machine = machineBusyMs() - machineBefore
          const run = reply.result
          const pgMs = serverCpuMs(postmasterPid) - pgBefore
          const measured: Measured = {
            run,
            nodeCores: spent.processMs / spent.wallMs,
            pgCores: pgMs / spent.wallMs,
            brokerCores: spent.brokerMs === undefined ? undefined : spent.brokerMs / spent.wallMs,
            otherCores: Math.max(0, machine - spent.processMs - pgMs - (spent.brokerMs ?? 0)) / spent.wallMs,
          }
          if (variant === 'pgAudit') pgAuditQueries += run.queries
          if (run.errors > 0) console.error(`WARNING ${variant} ${shape}: ${run.errors} queries failed`)
          if (!warmup) results.set(key(shape, variant), [...(results.get(key(shape, variant)) ?? []), measured])
          line.push(`${variant} ${shape} ${Math.round((run.queries / run.elapsedMs) * 1000).toLocaleString('en-US')} q/s`)
        }
      }
      console.log(`${warmup ? 'warm-up' : `round ${round}`}: ${line.join(', ')}`)
    }

    const closed = await Promise.all(workers.splice(0).map((w) => w.call({ type: 'close' })))
    const hookOf = (v: Variant) => {
      const r = closed[variants.indexOf(v)]
      return r?.type === 'closed' ? r.hook : undefined
    }
    const hook = hookOf('readtrail')

    // The logging collector writes asynchronously: let it catch up.
    await sleep(1_000)
    const audit = countAuditLines(auditFile, auditFrom)

    const offsets = await (async () => {
      const a = kafka.admin()
      await a.connect()
      try {
        return (await a.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0)
      } finally {
        await a.disconnect()
      }
    })()

    // ---------------------------------------------------------------- report
    const qps = (m: Measured) => (m.run.queries / m.run.elapsedMs) * 1000
    const p = (m: Measured, q: 'p50' | 'p99') => distribution(m.run.latenciesMs)[q]
    const summary = (shape: Shape, variant: Variant) => {
      const ms = results.get(key(shape, variant)) ?? []
      return {
        qps: median(ms.map(qps)),
        qpsMin: Math.min(...ms.map(qps)),
        qpsMax: Math.max(...ms.map(qps)),
        p50: median(ms.map((m) => p(m, 'p50'))),
        p99: median(ms.map((m) => p(m, 'p99'))),
        node: median(ms.map((m) => m.nodeCores)),
        pg: median(ms.map((m) => m.pgCores)),
        broker: ms.some((m) => m.brokerCores === undefined) ? Number.NaN : median(ms.map((m) => m.brokerCores!)),
        other: median(ms.map((m) => m.otherCores)),
        gcUs: median(ms.map((m) => ((m.run.gcMinorMs + m.run.gcMajorMs) * 1000) / m.run.queries)),
        gcMajorShare: median(ms.map((m) => m.run.gcMajorMs / Math.max(1e-9, m.run.gcMinorMs + m.run.gcMajorMs))),
        idsPerSecond: median(ms.map((m) => (m.run.idsRecorded / m.run.elapsedMs) * 1000)),
        flushMs: Math.max(...ms.map((m) => m.run.flushMs)),
      }
    }
    const letter: Record<Variant, string> = { 'no audit': '(a) no audit', pgAudit: '(b) pgAudit read', readtrail: '(c) readtrail hook', 'guard memory': '(d) hook + guard, in-process', 'guard redis': '(e) hook + guard, Redis' }
    for (const shape of SHAPES) {
      printTable(
        `${shape}: median of ${rounds} rounds of ${durationMs / 1000} s (${concurrency} in flight, pool ${poolSize})`,
        variants.map((variant) => {
          const s = summary(shape, variant)
          return {
            variant: letter[variant],
            'queries/s': s.qps,
            'min–max': `${Math.round(s.qpsMin).toLocaleString('en-US')}–${Math.round(s.qpsMax).toLocaleString('en-US')}`,
            'p50 ms': s.p50,
            'p99 ms': s.p99,
            'node cores': s.node,
            'pg cores': s.pg,
            'broker cores': s.broker,
            'other cores': s.other,
            'GC µs/query': s.gcUs,
            'GC major': `${Math.round(s.gcMajorShare * 100)} %`,
          }
        }),
      )
    }
    const pct = (x: number) => `${(x * 100).toFixed(1)} %`
    const paired = (shape: Shape, variant: Variant) => {
      const base = results.get(key(shape, 'no audit')) ?? []
      const other = results.get(key(shape, variant)) ?? []
      return median(other.map((m, i) => qps(m) / qps(base[i]!)))
    }
    if (variants.includes('no audit') && variants.length > 1) {
      const others = variants.filter((v) => v !== 'no audit')
      const short: Record<Variant, string> = { 'no audit': 'a', pgAudit: 'b', readtrail: 'c', 'guard memory': 'd', 'guard redis': 'e' }
      printTable(
        'Ratios against (a): throughput as ratio of medians (median of per-round ratios in brackets), p99 as ratio of medians; goal: c/a ≥ 95 %',
        SHAPES.map((shape) => {
          const a = summary(shape, 'no audit')
          const row: Record<string, string> = { shape }
          for (const v of others) row[`${short[v]}/a throughput`] = `${pct(summary(shape, v).qps / a.qps)} (${pct(paired(shape, v))})`
          for (const v of others) row[`${short[v]}/a p99`] = `${(summary(shape, v).p99 / a.p99).toFixed(2)}×`
          if (others.includes('readtrail')) row['goal'] = summary(shape, 'readtrail').qps / a.qps >= 0.95 ? 'met' : 'missed'
          return row
        }),
      )
    }

    const guards = variants.filter((v) => v === 'guard memory' || v === 'guard redis')
    if (variants.includes('readtrail') && guards.length > 0) {
      const c = (shape: Shape) => summary(shape, 'readtrail')
      // CPU the application's thread spends per query: what the guard adds to every read.
      const cpuUs = (shape: Shape, v: Variant) => (summary(shape, v).node * 1e6) / summary(shape, v).qps
      printTable(
        'The guard\'s own cost, against (c): throughput ratio, added p50 and node CPU per query',
        SHAPES.map((shape) => {
          const row: Record<string, string> = { shape }
          for (const v of guards) {
            const g = summary(shape, v)
            const tag = v === 'guard memory' ? 'd' : 'e'
            row[`${tag}/c throughput`] = pct(g.qps / c(shape).qps)
            row[`${tag}−c p50`] = `${((g.p50 - c(shape).p50) * 1000).toFixed(0)} µs`
            row[`${tag}−c node CPU/query`] = `${(cpuUs(shape, v) - cpuUs(shape, 'readtrail')).toFixed(0)} µs`
          }
          return row
        }),
      )
      for (const v of guards) {
        const g = hookOf(v)?.stats.guard
        if (g) console.log(`  ${letter[v]}: ${g.checked.toLocaleString('en-US')} budget checks, ${g.refused} refused, ${g.unchecked} unchecked, ${g.unavailable} unavailable`)
      }
    }

    console.log('\nWhat each audit recorded (every round, warm-up included)')
    if (variants.includes('pgAudit')) {
      console.log(`  (b) pgAudit: ${audit.lines.toLocaleString('en-US')} AUDIT lines for ${pgAuditQueries.toLocaleString('en-US')} queries; the statement with $1, no row keys:`)
      console.log(`      ${audit.sample ?? '(none found: is pgaudit loaded?)'}`)
    }
    if (hook) {
      const { stats } = hook
      console.log(
        `  (c) readtrail: ${stats.recorded.toLocaleString('en-US')} reads recorded, ${hook.acked.toLocaleString('en-US')} acknowledged by the broker, ${hook.toOutbox} to the outbox, ${hook.failed} failed (unrecorded ${stats.unrecorded}, without context ${stats.withoutContext}, refused ${stats.refused}); ${offsets.toLocaleString('en-US')} messages (signed batches) in the topic; ${hook.idsAcked.toLocaleString('en-US')} record ids acknowledged`,
      )
      for (const shape of SHAPES) {
        const c = summary(shape, 'readtrail')
        console.log(`      ${shape}: ${Math.round(c.idsPerSecond).toLocaleString('en-US')} record ids recorded per second (median); longest wait for the last acks after a round ${c.flushMs.toFixed(0)} ms`)
      }
      if (stats.withoutContext > 0) {
        console.log(`      WARNING: every bench read ran inside runWithAuditContext, yet ${stats.withoutContext.toLocaleString('en-US')} were recorded without a context (principal type system)`)
      }
      if (hook.sample) console.log(`      e.g. ${hook.sample.table} columns [${hook.sample.columns.join(', ')}], record ids [${hook.sample.recordIds.join(', ')}${(hook.sample.rowCount ?? 0) > 5 ? ', …' : ''}]`)
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
    await deleteBenchTopics(kafka, topics)
    if (keep) console.log(`\nleft the private cluster running on port ${pgPort} (--keep); stop it with: bash scripts/pg-bench-cluster.sh stop`)
    else cluster('stop', pgPort)
  }
}

if (isMainThread) {
  await main()
} else {
  await runWorker(workerData as WorkerSetup)
}
