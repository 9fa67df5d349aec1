import { Worker } from 'node:worker_threads'
import { NO_CACHES } from './no-caches.js'
import { ConfigError, describeError, isReadtrailError } from '../common/errors.js'
import type { Store } from '../store/store.js'
import { VerificationError } from './errors.js'
import { producerScanSql, segmentBoundedSql, segmentOpenSql } from './owner-read-sql.js'
import type { CheckpointRow, ProducerBreak, RowFacts, Suspect } from './row-facts.js'
import { ACCESS_LOG_LAYOUT, COL, RowLayout, RowWalker } from './row-walker.js'
import { SCAN_WORKER_MARK, type FromScanWorker, type ToScanWorker } from './scan-worker.js'

/**
 * The data path of `verify --independent`: rows leave ClickHouse as raw
 * RowBinary and every hash, link and count is recomputed in this process.
 * ClickHouse only filters and sorts, and both are checked as the bytes arrive
 * (chain, seq range, order): what it could lie about is what it returned at
 * all, which the caller covers by scanning every seq of every chain.
 */

/** A run of one chain's rows, lo <= seq <= hi. */
export interface ScanRequest {
  chain_id: string
  lo: number
  /** null = no upper bound. */
  hi: number | null
  /** Seqs whose stored rows are reported in checkpoint_rows. */
  checkpoint_seqs: readonly number[]
}

export interface SegmentScan {
  chain_id: string
  lo: number
  hi: number | null
  rows: number
  /**
   * The first row in (seq, hash) order. A segment that does not start at seq
   * 0 has no predecessor here, so its first row is never a suspect of this
   * segment: the caller links it to the previous segment's `last`, and must
   * count it a suspect when `self_ok` is false.
   */
  first: { seq: number; prev_hash: string; self_ok: boolean } | null
  /** The last row in (seq, hash) order. */
  last: { seq: number; hash: string } | null
  suspects: Suspect[]
  suspects_truncated: boolean
  /** Every row whose seq is in checkpoint_seqs (duplicates included). */
  checkpoint_rows: CheckpointRow[]
  /** Rows per producer_id. */
  producer_counts: Record<string, number>
}

export interface ScanOptions {
  /** Worker threads re-hashing segments. */
  workers: number
  /** Most suspects reported per segment; beyond it suspects_truncated is set. */
  maxSuspects: number
  /** Called with the total rows scanned each time a segment completes. */
  onProgress?: (rowsDone: number) => void
  /**
   * Segment queries run at once. chDB runs one query at a time (two
   * concurrent single-threaded queries took as long as the two in turn), so
   * more only hold more results in memory; a server runs them in parallel.
   * @default 1 on the embedded engine, `workers` on a server
   */
  queries?: number
}

/**
 * Segments a worker may hold at once: one being hashed and the next one
 * already delivered, so it never waits for a query between segments.
 */
const SEGMENTS_AHEAD = 2

/** Bytes per message to a worker: a worker starts hashing before a large result is copied. */
const MESSAGE_BYTES = 4 * 1024 * 1024

function segmentQuery(store: Store, bounded: boolean): string {
  const log = store.table('access_log')
  return bounded ? segmentBoundedSql(log) : segmentOpenSql(log)
}

/**
 * Runs a RowBinary query and hands its bytes on as they arrive. The embedded
 * engine materialises the whole result first (chDB 3.4's exec returns one
 * buffer), a ClickHouse server streams it in chunks: the caller bounds
 * memory by asking for bounded ranges.
 */
export async function streamQuery(store: Store, query: string, params: Record<string, unknown>, what: string, onBytes: (chunk: Buffer) => void): Promise<void> {
  try {
    const result = await store.client.exec({ query, query_params: params, clickhouse_settings: NO_CACHES })
    for await (const chunk of result.stream as AsyncIterable<Buffer>) onBytes(chunk)
  } catch (err) {
    if (isReadtrailError(err)) throw err
    throw new VerificationError('VERIFY_FAILED', `reading ${what} from ClickHouse failed: ${describeError(err)}`, { cause: err, details: params })
  }
}

/**
 * Splits every chain's seq space into ranges of about `rowsPerSegment` seqs.
 * The first range of a chain starts at 0 and the last has no upper bound, so
 * no row can sit outside the ranges whatever max_seq ClickHouse reported.
 */
export function planSegments(
  chains: readonly { chain_id: string; max_seq: number }[],
  rowsPerSegment: number,
  checkpointSeqs: ReadonlyMap<string, readonly number[]>,
): ScanRequest[] {
  if (!Number.isSafeInteger(rowsPerSegment) || rowsPerSegment < 1) {
    throw new ConfigError(`rowsPerSegment must be a positive integer (got ${rowsPerSegment})`, { details: { key: 'rowsPerSegment', value: rowsPerSegment } })
  }
  const requests: ScanRequest[] = []
  for (const { chain_id, max_seq } of chains) {
    const checkpoints = checkpointSeqs.get(chain_id) ?? []
    const maxSeq = Number.isFinite(max_seq) && max_seq > 0 ? Math.floor(max_seq) : 0
    const count = Math.max(1, Math.ceil(maxSeq / rowsPerSegment))
    for (let k = 0; k < count; k++) {
      const lo = k === 0 ? 0 : k * rowsPerSegment + 1
      const hi = k === count - 1 ? null : (k + 1) * rowsPerSegment
      requests.push({ chain_id, lo, hi, checkpoint_seqs: checkpoints.filter((s) => s >= lo && (hi === null || s <= hi)) })
    }
  }
  return requests
}

/**
 * The worker runs from the compiled .js under Node, or from the .ts sources
 * under vitest or tsx. Node 20 does not apply the parent's loader hooks (nor
 * an `--import tsx` in execArgv) to a worker's entry module, so a source
 * worker starts from a small script that registers tsx in the worker and
 * then imports the entry. tsx is a devDependency: only source runs need it.
 */
function startScanWorker(): Worker {
  const options = { workerData: { mark: SCAN_WORKER_MARK } }
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./scan-worker.js', import.meta.url), options)
  const entry = new URL('./scan-worker.ts', import.meta.url).href
  const tsx = import.meta.resolve('tsx/esm/api')
  const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}) })`
  return new Worker(boot, { ...options, eval: true })
}

/** One worker thread and the segments it owes answers for. */
class ScanWorker {
  private readonly worker = startScanWorker()
  private readonly waiting = new Map<number, { resolve: (scan: SegmentScan) => void; reject: (err: Error) => void }>()
  private failure: Error | null = null

  constructor() {
    this.worker.on('message', (msg: FromScanWorker) => {
      const waiter = this.waiting.get(msg.id)
      if (!waiter) return
      this.waiting.delete(msg.id)
      if (msg.type === 'done') waiter.resolve(msg.scan)
      else waiter.reject(new VerificationError('VERIFY_FAILED', msg.message, { details: msg.details }))
    })
    this.worker.on('error', (err) => this.fail(new VerificationError('VERIFY_FAILED', `a scan worker crashed: ${describeError(err)}`, { cause: err })))
    this.worker.on('exit', (code) => this.fail(new VerificationError('VERIFY_FAILED', `a scan worker exited (code ${code}) with segments unfinished`)))
  }

  /** The answer for a segment whose bytes follow with chunk() and end(). */
  begin(id: number, request: ScanRequest, maxSuspects: number): Promise<SegmentScan> {
    const answer = new Promise<SegmentScan>((resolve, reject) => {
      if (this.failure) reject(this.failure)
      else this.waiting.set(id, { resolve, reject })
    })
    // Awaited later, after more I/O: mark it handled now so a failure in
    // between is not an unhandled rejection; the awaiting caller still sees it.
    answer.catch(() => {})
    this.post({ type: 'begin', id, request, max_suspects: maxSuspects })
    return answer
  }

  /** Copies bytes into ArrayBuffers the worker then owns (a Buffer may share a pooled or engine-owned allocation). */
  chunk(id: number, chunk: Buffer): void {
    for (let at = 0; at < chunk.length; at += MESSAGE_BYTES) {
      const piece = chunk.subarray(at, at + MESSAGE_BYTES)
      // Not zero-filled: every byte is overwritten by the copy.
      const { buffer: bytes } = Buffer.allocUnsafeSlow(piece.length)
      piece.copy(new Uint8Array(bytes))
      this.post({ type: 'chunk', id, bytes }, [bytes])
    }
  }

  end(id: number): void {
    this.post({ type: 'end', id })
  }

  async terminate(): Promise<void> {
    this.fail(new VerificationError('VERIFY_FAILED', 'the scan was stopped'))
    await this.worker.terminate()
  }

  private post(msg: ToScanWorker, transfer: ArrayBuffer[] = []): void {
    if (!this.failure) this.worker.postMessage(msg, transfer)
  }

  private fail(err: Error): void {
    this.failure ??= err
    for (const waiter of this.waiting.values()) waiter.reject(err)
    this.waiting.clear()
  }
}

/**
 * Scans segments on `workers` worker threads; results come back in request
 * order. The main thread only runs queries and copies bytes: the next query
 * runs while workers hash earlier segments, and each worker holds at most
 * SEGMENTS_AHEAD segments, which bounds memory.
 */
export async function scanSegments(store: Store, requests: readonly ScanRequest[], options: ScanOptions): Promise<SegmentScan[]> {
  const queries = options.queries ?? (store.kind === 'embedded' ? 1 : options.workers)
  const issues: string[] = []
  if (!Number.isSafeInteger(options.workers) || options.workers < 1) issues.push(`workers must be a positive integer (got ${options.workers})`)
  if (!Number.isSafeInteger(options.maxSuspects) || options.maxSuspects < 0) issues.push(`maxSuspects must be a non-negative integer (got ${options.maxSuspects})`)
  if (!Number.isSafeInteger(queries) || queries < 1) issues.push(`queries must be a positive integer (got ${queries})`)
  if (issues.length > 0) throw new ConfigError(issues.join('; '), { details: { issues } })
  if (requests.length === 0) return []

  const results: (SegmentScan | undefined)[] = new Array<SegmentScan | undefined>(requests.length)
  const pool = Array.from({ length: Math.min(options.workers, requests.length) }, () => new ScanWorker())
  /** Segments each worker has been sent and not answered. */
  const held = pool.map(() => 0)
  const waiting: (() => void)[] = []
  const wake = () => {
    for (const resolve of waiting.splice(0)) resolve()
  }
  let next = 0
  let rowsDone = 0
  let firstError: unknown = null
  const stop = (err: unknown) => {
    if (firstError !== null) return
    firstError = err
    for (const w of pool) void w.terminate()
    wake()
  }
  /** The worker holding the fewest segments, once one has room. */
  const acquire = async (): Promise<number> => {
    for (;;) {
      let best = 0
      for (let w = 1; w < pool.length; w++) if (held[w]! < held[best]!) best = w
      if (held[best]! < SEGMENTS_AHEAD || firstError !== null) {
        held[best]!++
        return best
      }
      await new Promise<void>((resolve) => waiting.push(resolve))
    }
  }
  const release = (w: number) => {
    held[w]!--
    wake()
  }

  const answers: Promise<void>[] = []
  const queryLoop = async (): Promise<void> => {
    for (;;) {
      const w = await acquire()
      if (firstError !== null || next >= requests.length) {
        release(w)
        return
      }
      const id = next++
      const request = requests[id]!
      const worker = pool[w]!
      const answered = worker
        .begin(id, request, options.maxSuspects)
        .then((scan) => {
          results[id] = scan
          rowsDone += scan.rows
          options.onProgress?.(rowsDone)
        })
        .finally(() => release(w))
      answered.catch(stop)
      answers.push(answered)
      await streamQuery(
        store,
        segmentQuery(store, request.hi !== null),
        { c: request.chain_id, lo: request.lo, ...(request.hi !== null ? { hi: request.hi } : {}) },
        `chain ${request.chain_id} seqs ${request.lo}..${request.hi ?? ''}`,
        (chunk) => worker.chunk(id, chunk),
      )
      worker.end(id)
    }
  }

  try {
    await Promise.all(Array.from({ length: Math.min(queries, requests.length) }, () => queryLoop().catch(stop)))
    await Promise.allSettled(answers)
  } finally {
    await Promise.all(pool.map((w) => w.terminate()))
  }
  if (firstError !== null) throw firstError
  return results.map((scan, i) => {
    if (!scan) throw new VerificationError('VERIFY_FAILED', `segment ${i} of the scan has no result`)
    return scan
  })
}

/**
 * Every row of a chain with lo <= seq <= hi, in (seq, hash) order, each
 * re-hashed here: for the few windows around suspects, on this thread.
 */
export async function fetchWindowFacts(store: Store, chainId: string, lo: number, hi: number): Promise<RowFacts[]> {
  const facts: RowFacts[] = []
  const chainBytes = Buffer.from(chainId, 'utf8')
  const lie = (message: string) => new VerificationError('VERIFY_FAILED', message, { details: { chain_id: chainId, lo, hi } })
  let prevSeq = -1
  let prevHash = ''
  const walker = new RowWalker(
    ACCESS_LOG_LAYOUT,
    (row) => {
      const seq = row.uint64(COL.seq)
      const hash = row.hex(COL.hash, 32)
      if (!row.stringEquals(COL.chain_id, chainBytes)) throw lie(`ClickHouse returned a row of chain ${JSON.stringify(row.string(COL.chain_id))} when asked for chain ${chainId}`)
      if (seq < lo || seq > hi) throw lie(`ClickHouse returned seq ${seq} of chain ${chainId} when asked for seqs ${lo}..${hi}`)
      // Lowercase hex sorts as the bytes do.
      if (seq < prevSeq || (seq === prevSeq && hash < prevHash)) throw lie(`ClickHouse returned chain ${chainId} out of (seq, hash) order at seq ${seq}`)
      prevSeq = seq
      prevHash = hash
      facts.push({ seq, prev_hash: row.hex(COL.prev_hash, 32), hash, self_ok: row.selfOk, event_id: row.uuid(COL.event_id) })
    },
    { rehash: true, describe: () => `chain ${chainId}, ${prevSeq < 0 ? `first row at or after seq ${lo}` : `row after seq ${prevSeq}`}` },
  )
  await streamQuery(store, segmentQuery(store, true), { c: chainId, lo, hi }, `chain ${chainId} seqs ${lo}..${hi}`, (chunk) => walker.push(chunk))
  walker.finish()
  return facts
}

const PRODUCER_LAYOUT = new RowLayout([
  { name: 'producer_id', type: 'String' },
  { name: 'producer_seq', type: 'UInt64' },
  { name: 'chain_id', type: 'String' },
  { name: 'seq', type: 'UInt64' },
  { name: 'ingested_at_us', type: 'Int64' },
])
const P = Object.freeze({
  producer_id: PRODUCER_LAYOUT.indexOf('producer_id'),
  producer_seq: PRODUCER_LAYOUT.indexOf('producer_seq'),
  chain_id: PRODUCER_LAYOUT.indexOf('chain_id'),
  seq: PRODUCER_LAYOUT.indexOf('seq'),
  ingested_at_us: PRODUCER_LAYOUT.indexOf('ingested_at_us'),
})

/**
 * Every stored event, ordered by (producer_id, producer_seq): a producer
 * numbers its events 1, 2, 3…, so a hole is a lost or deleted event and a
 * repeat a duplicate, wherever the chain put them. ClickHouse only sorts; the
 * order is checked (bytewise, as ClickHouse compares strings) and the
 * verdict computed here. `counts` lets the caller check this scan saw the
 * same rows as scanSegments.
 *
 * One query over the whole table: on the embedded engine its result (~50
 * bytes a row) is held in memory at once.
 */
export async function scanProducerBreaks(
  store: Store,
  options: { limit: number },
): Promise<{ breaks: ProducerBreak[]; truncated: boolean; counts: Record<string, number>; last: Record<string, number> }> {
  const breaks: ProducerBreak[] = []
  let truncated = false
  const counts = new Map<string, number>()
  /** Highest producer_seq per producer. */
  const last = new Map<string, number>()
  let producerBytes: Buffer | null = null
  let producerId = ''
  let prevSeq = 0
  let n = 0
  // Keyed by the decoded id; added, not set, in case two byte strings decode alike.
  const countRun = () => {
    counts.set(producerId, (counts.get(producerId) ?? 0) + n)
    last.set(producerId, Math.max(last.get(producerId) ?? 0, prevSeq))
  }
  const walker = new RowWalker(
    PRODUCER_LAYOUT,
    (row) => {
      const producerSeq = row.uint64(P.producer_seq)
      const bytes = row.stringBytes(P.producer_id)
      const order = producerBytes === null ? 1 : Buffer.compare(bytes, producerBytes)
      if (order < 0 || (order === 0 && producerSeq < prevSeq)) {
        throw new VerificationError('VERIFY_FAILED', `ClickHouse returned events out of (producer_id, producer_seq) order at producer ${JSON.stringify(row.string(P.producer_id))} seq ${producerSeq}`)
      }
      if (order !== 0) {
        if (producerBytes !== null) countRun()
        producerBytes = Buffer.from(bytes)
        producerId = row.string(P.producer_id)
        prevSeq = 0
        n = 0
      }
      n++
      if (producerSeq !== prevSeq + 1) {
        if (breaks.length < options.limit) {
          breaks.push({
            producer_id: producerId,
            producer_seq: producerSeq,
            prev_producer_seq: prevSeq,
            chain_id: row.string(P.chain_id),
            seq: row.uint64(P.seq),
            ingested_at_us: row.int64(P.ingested_at_us),
          })
        } else truncated = true
      }
      prevSeq = producerSeq
    },
    { rehash: false, describe: () => (producerBytes === null ? 'first producer row' : `producer ${JSON.stringify(producerId)}, row after producer_seq ${prevSeq}`) },
  )
  await streamQuery(
    store,
    producerScanSql(store.table('access_log')),
    {},
    'producer sequences',
    (chunk) => walker.push(chunk),
  )
  walker.finish()
  if (producerBytes !== null) countRun()
  return { breaks, truncated, counts: Object.fromEntries(counts), last: Object.fromEntries(last) }
}
