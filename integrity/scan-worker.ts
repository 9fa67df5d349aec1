import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { describeError, isReadtrailError } from '../common/errors.js'
import { VerificationError } from './errors.js'
import type { ScanRequest, SegmentScan } from './independent-scan.js'
import type { CheckpointRow, Suspect } from './row-facts.js'
import { ACCESS_LOG_LAYOUT, COL, RowWalker, type RowView } from './row-walker.js'

const GENESIS = new Uint8Array(32)

/**
 * One segment of one chain, re-hashed and linked here: the work a scan worker
 * does, and the rule the in-DB verifier's SQL applies. Rows come in (seq, hash)
 * order; each row's predecessor is the row before it in the segment, genesis
 * (seq 0, 32 zero bytes) for the first row of a segment that starts at seq 0,
 * and nothing for the first row of any other segment (the caller links
 * segments with `first` and `last`). A row is a suspect when it does not hash
 * to its stored hash, its seq is not the predecessor's + 1, or its prev_hash
 * is not the predecessor's stored hash.
 *
 * The order, the chain and the seq range were asked of ClickHouse, and a
 * stream that breaks them means ClickHouse (or whoever answers for it) did
 * not do what it was asked: VERIFY_FAILED, never a finding about the data.
 */
export class SegmentScanner {
  private readonly walker: RowWalker
  private readonly chainBytes: Buffer
  private readonly lo: number
  private readonly hi: number
  private readonly checkpoints: ReadonlySet<number>
  private rows = 0
  private hasPred: boolean
  private predSeq = 0
  /**
   * Where the predecessor's stored hash is: in the chunk it was walked from
   * (kept alive by this reference; the walker never rewrites a chunk), or
   * genesis. Nothing is copied per row.
   */
  private predBuf: Uint8Array = GENESIS
  private predAt = 0
  private first: SegmentScan['first'] = null
  private readonly suspects: Suspect[] = []
  private truncated = false
  private readonly checkpointRows: CheckpointRow[] = []
  /** Rows per producer_id; the previous row's producer is kept as bytes, so a run of one producer decodes its id once. */
  private readonly producers = new Map<string, { n: number }>()
  private producerBytes: Buffer | null = null
  private producer: { n: number } = { n: 0 }

  constructor(
    private readonly request: ScanRequest,
    private readonly maxSuspects: number,
  ) {
    this.chainBytes = Buffer.from(request.chain_id, 'utf8')
    this.lo = request.lo
    this.hi = request.hi ?? Number.POSITIVE_INFINITY
    this.hasPred = request.lo === 0
    this.checkpoints = new Set(request.checkpoint_seqs)
    this.walker = new RowWalker(ACCESS_LOG_LAYOUT, (row) => this.onRow(row), {
      rehash: true,
      describe: () => `chain ${request.chain_id}, ${this.rows === 0 ? `first row at or after seq ${this.lo}` : `row after seq ${this.predSeq}`}`,
    })
  }

  /** The next bytes of the segment's RowBinary; the scanner may keep a reference, so they must not change afterwards. */
  push(chunk: Buffer): void {
    this.walker.push(chunk)
  }

  finish(): SegmentScan {
    this.walker.finish()
    const { chain_id, lo, hi } = this.request
    return {
      chain_id,
      lo,
      hi,
      rows: this.rows,
      first: this.first,
      last: this.rows === 0 ? null : { seq: this.predSeq, hash: Buffer.from(this.predBuf.subarray(this.predAt, this.predAt + 32)).toString('hex') },
      suspects: this.suspects,
      suspects_truncated: this.truncated,
      checkpoint_rows: this.checkpointRows,
      // fromEntries defines own properties: a producer named __proto__ is counted, not swallowed.
      producer_counts: Object.fromEntries([...this.producers].map(([id, c]) => [id, c.n])),
    }
  }

  private onRow(row: RowView): void {
    if (!row.stringEquals(COL.chain_id, this.chainBytes)) {
      throw this.lie(`ClickHouse returned a row of chain ${JSON.stringify(row.string(COL.chain_id))} when asked for chain ${this.request.chain_id}`)
    }
    const seq = row.uint64(COL.seq)
    if (seq < this.lo || seq > this.hi) {
      throw this.lie(`ClickHouse returned seq ${seq} of chain ${this.request.chain_id} when asked for seqs ${this.lo}..${this.request.hi ?? ''}`)
    }
    const selfOk = row.selfOk
    if (this.rows === 0) {
      this.first = { seq, prev_hash: row.hex(COL.prev_hash, 32), self_ok: selfOk }
    } else if (seq < this.predSeq || (seq === this.predSeq && row.compareFixed(COL.hash, this.predBuf, this.predAt, 32) < 0)) {
      throw this.lie(`ClickHouse returned chain ${this.request.chain_id} out of (seq, hash) order at seq ${seq}`)
    }
    if (this.hasPred && (!selfOk || seq !== this.predSeq + 1 || !row.fixedEquals(COL.prev_hash, this.predBuf, this.predAt, 32))) {
      if (this.suspects.length < this.maxSuspects) this.suspects.push({ chain_id: this.request.chain_id, seq, prev_seq: this.predSeq })
      else this.truncated = true
    }
    this.hasPred = true
    this.predSeq = seq
    this.predBuf = row.buf
    this.predAt = row.offsets[COL.hash]!
    this.rows++
    if (this.checkpoints.size > 0 && this.checkpoints.has(seq)) {
      this.checkpointRows.push({ chain_id: this.request.chain_id, seq, hash: row.hex(COL.hash, 32), self_ok: selfOk })
    }
    if (this.producerBytes === null || !row.stringEquals(COL.producer_id, this.producerBytes)) this.switchProducer(row)
    this.producer.n++
  }

  private switchProducer(row: RowView): void {
    const id = row.string(COL.producer_id)
    this.producerBytes = Buffer.from(row.stringBytes(COL.producer_id))
    let counter = this.producers.get(id)
    if (counter === undefined) {
      counter = { n: 0 }
      this.producers.set(id, counter)
    }
    this.producer = counter
  }

  private lie(message: string): VerificationError {
    return new VerificationError('VERIFY_FAILED', message, { details: { chain_id: this.request.chain_id, lo: this.lo, hi: this.request.hi } })
  }
}

/** Marks the workers independent-scan.ts starts, so importing this file elsewhere (a vitest worker thread) starts nothing. */
export const SCAN_WORKER_MARK = 'readtrail-scan-worker'

/**
 * Main thread → worker, per segment: `begin`, its bytes as transferred
 * ArrayBuffers in stream order, `end`. Several queries may feed one worker at
 * once, so messages of different segments can interleave.
 */
export type ToScanWorker =
  | { type: 'begin'; id: number; request: ScanRequest; max_suspects: number }
  | { type: 'chunk'; id: number; bytes: ArrayBuffer }
  | { type: 'end'; id: number }

export type FromScanWorker =
  | { type: 'done'; id: number; scan: SegmentScan }
  | { type: 'failed'; id: number; message: string; retriable: boolean; details: Record<string, unknown> | undefined }

function serve(port: NonNullable<typeof parentPort>): void {
  const scanners = new Map<number, SegmentScanner>()
  port.on('message', (msg: ToScanWorker) => {
    try {
      if (msg.type === 'begin') {
        scanners.set(msg.id, new SegmentScanner(msg.request, msg.max_suspects))
        return
      }
      const scanner = scanners.get(msg.id)
      if (scanner === undefined) return // a segment that already failed
      if (msg.type === 'chunk') {
        scanner.push(Buffer.from(msg.bytes))
        return
      }
      scanners.delete(msg.id)
      port.postMessage({ type: 'done', id: msg.id, scan: scanner.finish() } satisfies FromScanWorker)
    } catch (err) {
      scanners.delete(msg.id)
      // Class identity does not cross threads: send what rebuilds the error.
      port.postMessage({
        type: 'failed',
        id: msg.id,
        message: isReadtrailError(err) ? err.message : `scan worker failed: ${describeError(err)}`,
        retriable: isReadtrailError(err) ? err.retriable : false,
        details: isReadtrailError(err) ? err.details : undefined,
      } satisfies FromScanWorker)
    }
  })
}

if (!isMainThread && parentPort !== null && (workerData as { mark?: unknown } | null)?.mark === SCAN_WORKER_MARK) serve(parentPort)
