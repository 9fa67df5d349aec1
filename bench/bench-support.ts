import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Kafka } from 'kafkajs'
import { createKafka, KafkaConnection } from '../common/kafka.js'
import { benchBrokers } from './args.js'
import { createLogger } from '../common/logger.js'
import { uuidv7 } from '../common/uuid.js'
import { deadLetterTopicOf, ensureTopics } from '../consumers/topics.js'
import { chainIdOf, emptyChain, linkEntries, type ChainHead } from '../consumers/chain.js'
import { nowMicros } from '../common/time.js'
import type { AccessEvent } from '../schemas/access-event.js'
import type { ReadInput } from '../schemas/read-input.js'
import { StoreConfig } from '../store/config.js'
import { openStore, type Store } from '../store/store.js'

/** Benchmarks log only what goes wrong: a log line per batch would be measured too. */
export const benchLogger = createLogger({ level: 'warn' })

export interface Distribution {
  count: number
  mean: number
  p50: number
  p90: number
  p99: number
  max: number
}

/** Nearest-rank percentiles; sorts a copy. */
export function distribution(values: ArrayLike<number>): Distribution {
  const sorted = Float64Array.from(values).sort()
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN
  let sum = 0
  for (const v of sorted) sum += v
  return { count: sorted.length, mean: sum / sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN }
}

export function median(values: readonly number[]): number {
  return distribution(values).p50
}

/** Prints a Markdown table, so the output can be pasted into bench/README.md. */
export function printTable(title: string, rows: readonly Record<string, string | number>[]): void {
  const first = rows[0]
  if (!first) return
  const headers = Object.keys(first)
  const cells = rows.map((r) => headers.map((h) => formatCell(r[h])))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
  const line = (values: readonly string[]) => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`
  console.log(`\n${title}\n`)
  console.log(line(headers))
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const c of cells) console.log(line(c))
}

function formatCell(value: string | number | undefined): string {
  if (value === undefined) return ''
  if (typeof value === 'string') return value
  if (!Number.isFinite(value)) return String(value)
  if (Number.isInteger(value) || Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US')
  if (Math.abs(value) >= 100) return value.toFixed(0)
  if (Math.abs(value) >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

/** Rounded rate with thousands separators, e.g. `123,456/s`. */
export function perSecond(count: number, ms: number): number {
  return (count / ms) * 1000
}

export function machineLine(): string {
  const cpu = cpus()
  return `${new Date().toISOString().slice(0, 10)}, ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown cpu'}), Node ${process.version}`
}

/** Lets timers and I/O run; a benchmark loop that never yields starves the producer it measures. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * Runs `fn` under this thread's V8 CPU profiler and writes the profile to
 * `profileTo` (for Chrome DevTools); without a path, just runs it.
 */
export async function profiled<T>(profileTo: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (profileTo === undefined) return fn()
  const session = new Session()
  session.connect()
  try {
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
    const result = await fn()
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(profileTo, JSON.stringify(profile))
    return result
  } finally {
    session.disconnect()
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

// ---------------------------------------------------------------- cpu

export interface CpuSample {
  wallMs: number
  process: NodeJS.CpuUsage
  /** The local broker's CPU time in ms, when its pid file is readable. */
  brokerMs: number | undefined
}

export interface CpuSpent {
  wallMs: number
  /** This process, every thread (event loop, workers, chDB's engine threads). */
  processMs: number
  brokerMs: number | undefined
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
// Linux reports /proc/<pid>/stat times in clock ticks of 1/100 s.
const CLOCK_TICKS_PER_SECOND = 100

function brokerCpuMs(): number | undefined {
  try {
    const home = process.env['READTRAIL_KAFKA_HOME'] ?? join(REPO_ROOT, '.cache', 'kafka')
    const pid = readFileSync(join(home, 'kafka.pid'), 'utf8').trim()
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

export function sampleCpu(): CpuSample {
  return { wallMs: performance.now(), process: process.cpuUsage(), brokerMs: brokerCpuMs() }
}

export function cpuSince(start: CpuSample): CpuSpent {
  const now = sampleCpu()
  const used = process.cpuUsage(start.process)
  return {
    wallMs: now.wallMs - start.wallMs,
    processMs: (used.user + used.system) / 1000,
    brokerMs: now.brokerMs !== undefined && start.brokerMs !== undefined ? now.brokerMs - start.brokerMs : undefined,
  }
}

/** `bench 1.62 + broker 0.40 of 2 cores` style summary of where CPU went. */
export function describeCpu(spent: CpuSpent, events: number): string {
  const cores = (ms: number | undefined) => (ms === undefined ? '?' : (ms / spent.wallMs).toFixed(2))
  const usPer = (ms: number | undefined) => (ms === undefined ? '?' : ((ms * 1000) / events).toFixed(0))
  return `CPU: bench process ${cores(spent.processMs)} cores (${usPer(spent.processMs)} µs/event), broker ${cores(spent.brokerMs)} cores (${usPer(spent.brokerMs)} µs/event)`
}

// ---------------------------------------------------------------- workload

const COLUMNS = ['id', 'full_name', 'birth_date', 'phone', 'address'] as const
const PRINCIPALS = ['clerk.anna', 'clerk.bruno', 'clerk.marta', 'svc.reporting'] as const

/**
 * A read as a registry backend would record it: `rows` applicant ids, five
 * columns, the SQL as executed (with literals the fingerprint must strip), a
 * session id (hashed by the SDK) and the client address.
 */
export function realisticRead(i: number, rows = 10): ReadInput {
  const first = 100_001 + ((i * 7919) % 50_000)
  const ids = Array.from({ length: rows }, (_, k) => String(first + k * 13))
  return {
    principal: { id: PRINCIPALS[i % PRINCIPALS.length]! },
    sessionId: `sess-${(i % 97).toString(36)}-9f2c4b7e1d`,
    clientIp: `10.20.${i % 16}.${1 + (i % 200)}`,
    resource: { database: 'registry', table: 'applicants' },
    columns: [...COLUMNS],
    recordIds: ids,
    query: `SELECT ${COLUMNS.join(', ')} FROM applicants WHERE id IN (${ids.join(', ')}) AND status = 'active' AND full_name <> 'Rossi' LIMIT ${rows}`,
    purpose: 'case-review',
  }
}

/**
 * Realistic decoded events (what the SDK would have produced for realisticRead)
 * without going through Kafka: for the stages that start after the broker.
 */
export function realisticEvents(count: number, options: { recordIds?: number; producerId?: string; startMicros?: number } = {}): AccessEvent[] {
  const rows = options.recordIds ?? 10
  const producerId = options.producerId ?? `bench:${randomUUID().slice(0, 8)}`
  const start = options.startMicros ?? Date.UTC(2026, 10, 26, 9) * 1000
  const sessionHash = randomBytes(32)
  const events: AccessEvent[] = []
  for (let i = 0; i < count; i++) {
    const first = 100_001 + ((i * 7919) % 50_000)
    const ids = Array.from({ length: rows }, (_, k) => String(first + k * 13))
    events.push({
      event_id: uuidv7(),
      read_id: uuidv7(),
      part_index: 0,
      part_count: 1,
      occurred_at: start + i * 1000,
      principal_id: PRINCIPALS[i % PRINCIPALS.length]!,
      principal_type: 'user',
      on_behalf_of: null,
      session_hash: sessionHash,
      client_ip: `10.20.${i % 16}.${1 + (i % 200)}`,
      service: 'registry-api',
      environment: 'bench',
      action: 'read',
      db_name: 'registry',
      table_name: 'applicants',
      columns: [...COLUMNS],
      record_ids: ids,
      record_ids_complete: true,
      row_count: rows,
      query_fingerprint: 'SELECT id, full_name, birth_date, phone, address FROM applicants WHERE id IN (?+) AND status = ? AND full_name <> ? LIMIT ?',
      db_session: String(4000 + (i % 32)),
      statement_digest: 'ab'.repeat(32),
      purpose: 'case-review',
      trace_id: null,
      outcome: 'success',
      producer_id: producerId,
      producer_seq: i + 1,
    })
  }
  return events
}

// ---------------------------------------------------------------- kafka

export function benchKafkaConnection(): KafkaConnection {
  return KafkaConnection.parse({
    brokers: benchBrokers(),
    clientId: `readtrail-bench-${process.pid}`,
  })
}

export function benchKafka(): Kafka {
  return createKafka(benchKafkaConnection(), benchLogger)
}

/**
 * Creates a fresh topic (and its dead-letter topic) and remembers both, so
 * deleteBenchTopics removes every topic this process made.
 */
export async function createBenchTopic(kafka: Kafka, topics: string[], partitions: number, label = 'bench'): Promise<string> {
  const topic = `rt-bench-${label}-${randomUUID().slice(0, 8)}`
  topics.push(topic, deadLetterTopicOf({ topic }))
  await ensureTopics(kafka, { topic, partitions })
  return topic
}

export async function deleteBenchTopics(kafka: Kafka, topics: readonly string[]): Promise<void> {
  if (topics.length === 0) return
  const admin = kafka.admin()
  try {
    await admin.connect()
    await admin.deleteTopics({ topics: [...topics] })
  } catch (err) {
    console.error(`could not delete bench topics ${topics.join(', ')}: ${(err as Error).message}`)
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

// ---------------------------------------------------------------- store

export interface InsertTimeline {
  inserts: number
  rows: number
  /** Time at least one insert was running (overlapping inserts counted once). */
  busyMs: number
  firstStartAt: number | undefined
  lastEndAt: number | undefined
}

/**
 * The same store with insertRowBinary timed: how long the writer spends
 * waiting for ClickHouse, measured from outside the writer.
 */
export function timeInserts(store: Store): { store: Store; timeline: InsertTimeline } {
  const timeline: InsertTimeline = { inserts: 0, rows: 0, busyMs: 0, firstStartAt: undefined, lastEndAt: undefined }
  let running = 0
  let busySince = 0
  const timed: Store = Object.freeze({
    ...store,
    async insertRowBinary(table: string, rows: Buffer, rowCount: number, columns?: readonly string[]) {
      const start = performance.now()
      timeline.firstStartAt ??= start
      if (running++ === 0) busySince = start
      try {
        await store.insertRowBinary(table, rows, rowCount, columns)
      } finally {
        const end = performance.now()
        if (--running === 0) timeline.busyMs += end - busySince
        timeline.inserts += 1
        timeline.rows += rowCount
        timeline.lastEndAt = end
      }
    },
  })
  return { store: timed, timeline }
}

export interface BenchStore {
  /** The connection on `default`; use freshDatabase for each measurement. */
  readonly store: Store
  readonly dataDir: string
  /** A fresh database with the readtrail schema, on the same connection. */
  freshDatabase(label: string): Promise<Store>
  close(): Promise<void>
}

/**
 * libchdb binds one data directory per process: one temporary directory and
 * one connection per bench file, a fresh database per measurement.
 */
export function openBenchStore(): BenchStore {
  const dataDir = mkdtempSync(join(tmpdir(), 'readtrail-bench-'))
  const store = openStore(StoreConfig.parse({ dataDir, database: 'default' }), { command: `bench ${process.argv[1] ?? ''}`, logger: benchLogger })
  let closed = false
  return {
    store,
    dataDir,
    async freshDatabase(label: string) {
      const db = store.withDatabase(`bench_${label}_${randomUUID().replace(/-/g, '').slice(0, 8)}`)
      await db.ensureSchema()
      return db
    },
    async close() {
      if (closed) return
      closed = true
      try {
        await store.close()
      } finally {
        rmSync(dataDir, { recursive: true, force: true })
      }
    },
  }
}

/** Drops a bench database; a failure only leaves it for the store's removal. */
export async function dropDatabase(client: BenchStore['store']['client'], database: string): Promise<void> {
  await client.command({ query: `DROP DATABASE IF EXISTS \`${database}\` SYNC` }).catch(() => {})
}

/**
 * Chains `rows` realistic events over `chains` chains round-robin, `batch`
 * rows at a time, inserting each batch into access_log as the chain
 * writer would; prints progress every quarter. Returns the time spent linking
 * and inserting, apart.
 */
export async function loadChains(store: Store, plan: { rows: number; chains: number; batch: number }): Promise<{ linkMs: number; insertMs: number }> {
  const heads: ChainHead[] = Array.from({ length: plan.chains }, (_, c) => emptyChain(chainIdOf('rt-bench-verify', c)))
  let linkMs = 0
  let insertMs = 0
  let offset = 0
  let nextReport = plan.rows / 4
  for (let done = 0, b = 0; done < plan.rows; b++) {
    const c = b % plan.chains
    const n = Math.min(plan.batch, plan.rows - done)
    const t0 = performance.now()
    // Each batch is its own producer numbered from 1: the log has no producer holes or repeats.
    const events = realisticEvents(n, { producerId: `bench-verify-${b}`, startMicros: Date.UTC(2026, 10, 1) * 1000 + done * 1000 })
    const linked = linkEntries(heads[c]!, events.map((event, i) => ({ event, offset: BigInt(offset + i), schemaVersion: 1 })), nowMicros())
    const t1 = performance.now()
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    insertMs += performance.now() - t1
    linkMs += t1 - t0
    heads[c] = linked.head
    if (c === plan.chains - 1) offset += n
    done += n
    if (done >= nextReport || done === plan.rows) {
      console.log(`  loaded ${Math.round(done).toLocaleString('en-US')} rows (${Math.round(perSecond(done, linkMs + insertMs)).toLocaleString('en-US')} rows/s so far)`)
      nextReport += plan.rows / 4
    }
  }
  return { linkMs, insertMs }
}
