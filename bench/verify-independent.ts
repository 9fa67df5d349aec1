/**
 * Independent verification speed: rows streamed out of ClickHouse as
 * RowBinary and re-hashed in this process on worker threads.
 *
 *   npx tsx bench/verify-independent.ts [rows] [--chains=3] [--batch=20000] [--segment=50000] [--sweep=25000,100000,250000]
 *   npx tsx bench/verify-independent.ts 5000000
 *
 * Rows are chained in-process with linkEntries (realistic events, 10 record
 * ids each) and loaded into access_log as the chain writer loads
 * them; the two query-view materialised views are dropped first (this bench
 * never reads them, and they would triple the load time). Then scanSegments
 * runs with 1 and 2 workers, a single-threaded pass splits one scan's time
 * into ClickHouse streaming, parsing, hashing and linking, segment sizes are
 * swept, and one tampered row must be found.
 */
import { createHash, hash } from 'node:crypto'
import { chainIdOf } from '../consumers/chain.js'
import { planSegments, scanProducerBreaks, scanSegments, type ScanRequest, type SegmentScan } from '../integrity/independent-scan.js'
import { NO_CACHES } from '../integrity/no-caches.js'
import { ACCESS_LOG_LAYOUT, COL, RowWalker } from '../integrity/row-walker.js'
import { SegmentScanner } from '../integrity/scan-worker.js'
import { ACCESS_LOG_COLUMNS, HASH_COLUMN } from '../store/access-log-columns.js'
import type { Store } from '../store/store.js'
import { cpuSince, machineLine, openBenchStore, loadChains, perSecond, printTable, sampleCpu } from './bench-support.js'
import { parseBenchArgs } from './args.js'

const { rows: ROWS, chains: CHAINS, batch: BATCH, segment: SEGMENT, sweep: SWEEP } = parseBenchArgs(
  'Independent verification speed: rows streamed out of ClickHouse as RowBinary and re-hashed here on worker threads.',
  {
    rows: { type: 'number', default: 5_000_000, help: 'chained rows loaded (also the positional ROWS)' },
    chains: { type: 'number', default: 3, help: 'chains they are spread over' },
    batch: { type: 'number', default: 20_000, help: 'rows per insert while loading' },
    segment: { type: 'number', default: 50_000, help: 'rows per worker segment' },
    sweep: { type: 'list', default: [25_000, 100_000, 250_000], help: 'segment sizes of the sweep' },
  }, { rowsPositional: true },
)

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`

/** Peak resident memory while `run` runs, sampled every 50 ms. */
async function withPeakRss<T>(run: () => Promise<T>): Promise<{ value: T; peakRss: number }> {
  let peakRss = process.memoryUsage.rss()
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss())
  }, 50)
  try {
    const value = await run()
    return { value, peakRss: Math.max(peakRss, process.memoryUsage.rss()) }
  } finally {
    clearInterval(timer)
  }
}

async function main(): Promise<void> {
  console.log(`bench/verify-independent — ${machineLine()}`)
  console.log(`${fmt(ROWS)} rows over ${CHAINS} chains, segments of ${fmt(SEGMENT)} rows`)
  const bench = openBenchStore()
  try {
    const store = await bench.freshDatabase('indep')
    await store.client.command({ query: `DROP VIEW ${store.table('access_by_principal_mv')}` })
    const load = await loadChains(store, { rows: ROWS, chains: CHAINS, batch: BATCH })
    printTable('Generation (not part of verification)', [
      { step: 'realisticEvents + linkEntries', ms: load.linkMs, 'rows/s': perSecond(ROWS, load.linkMs) },
      { step: 'insertRowBinary into access_log (views dropped)', ms: load.insertMs, 'rows/s': perSecond(ROWS, load.insertMs) },
    ])
    const [size] = await store.queryRows<{ rows: number; bytes: number }>(
      `SELECT sum(rows) AS rows, sum(data_uncompressed_bytes) AS bytes FROM system.parts WHERE database = {db:String} AND table = 'access_log' AND active`,
      { db: store.database },
    )
    console.log(`access_log: ${fmt(Number(size?.rows))} rows, ${mib(Number(size?.bytes))} uncompressed`)

    const chains = await store.queryRows<{ chain_id: string; max_seq: number }>(
      `SELECT chain_id, max(seq) AS max_seq FROM ${store.table('access_log')} GROUP BY chain_id ORDER BY chain_id`,
    )
    const chainList = chains.map((c) => ({ chain_id: c.chain_id, max_seq: Number(c.max_seq) }))
    const plan = planSegments(chainList, SEGMENT, new Map())

    // scanSegments, 1 and 2 workers.
    const scanRows: Record<string, string | number>[] = []
    for (const workers of [1, 2]) {
      const cpu = sampleCpu()
      const { value: scans, peakRss } = await withPeakRss(() => scanSegments(store, plan, { workers, maxSuspects: 100 }))
      const spent = cpuSince(cpu)
      scanRows.push({
        measurement: `scanSegments, ${workers} worker${workers > 1 ? 's' : ''}, ${plan.length} segments`,
        ms: spent.wallMs,
        'rows/s': perSecond(ROWS, spent.wallMs),
        cores: spent.processMs / spent.wallMs,
        'peak RSS': mib(peakRss),
        result: verdict(scans),
      })
      console.log(`  ${scanRows.at(-1)!['measurement']}: ${fmt(spent.wallMs)} ms`)
    }

    // The same work on one thread, timed stage by stage.
    const parts = await breakdown(store, plan)
    const total = parts.streamMs + parts.scanMs
    printTable(`scanSegments on ${fmt(ROWS)} rows (${CHAINS} chains), ${(parts.bytes / ROWS).toFixed(0)} bytes/row of RowBinary`, [
      ...scanRows,
      { measurement: 'ceiling: raw SHA-256 of each row’s bytes, one thread (crypto.hash)', ms: parts.shaMs, 'rows/s': perSecond(ROWS, parts.shaMs) },
      { measurement: 'ceiling: SHA-256 of all bytes as one stream (SHA extensions, no per-row calls)', ms: parts.bulkShaMs, 'rows/s': perSecond(ROWS, parts.bulkShaMs), result: `${(parts.bytes / 2 ** 20 / (parts.bulkShaMs / 1000)).toFixed(0)} MiB/s` },
    ])
    printTable('Where one scan’s time goes (one thread, stages run one after another over every segment)', [
      { stage: 'ClickHouse: query + RowBinary result (exec until the stream ends)', ms: parts.streamMs, 'µs/row': (parts.streamMs * 1000) / ROWS, share: `${((parts.streamMs / total) * 100).toFixed(0)}%` },
      { stage: 'copy into ArrayBuffers for the workers', ms: parts.copyMs, 'µs/row': (parts.copyMs * 1000) / ROWS, share: '' },
      { stage: 'walk: parse every column, canonical checks', ms: parts.parseMs, 'µs/row': (parts.parseMs * 1000) / ROWS, share: `${((parts.parseMs / total) * 100).toFixed(0)}%` },
      { stage: 'hash: SHA-256 per row + compare', ms: parts.hashMs, 'µs/row': (parts.hashMs * 1000) / ROWS, share: `${((parts.hashMs / total) * 100).toFixed(0)}%` },
      { stage: 'scanner: links, order, counts', ms: parts.linkMs, 'µs/row': (parts.linkMs * 1000) / ROWS, share: `${((parts.linkMs / total) * 100).toFixed(0)}%` },
    ])
    console.log(
      `chDB exec: ${parts.chunks} chunk(s) for ${plan.length} segments; first byte after ${((parts.firstByteMs / parts.streamMs) * 100).toFixed(0)}% of the streaming time` +
        (parts.chunks === plan.length ? ' — the whole result is materialised before the stream starts' : ''),
    )

    // Segment size: each segment's result is held in memory at once on the embedded engine.
    const sweepRows: Record<string, string | number>[] = []
    for (const rows of SWEEP) {
      const sweepPlan = planSegments(chainList, rows, new Map())
      const { value: ms, peakRss } = await withPeakRss(async () => {
        const t0 = performance.now()
        await scanSegments(store, sweepPlan, { workers: 2, maxSuspects: 100 })
        return performance.now() - t0
      })
      sweepRows.push({ 'rows/segment': rows, segments: sweepPlan.length, ms, 'rows/s': perSecond(ROWS, ms), 'peak RSS': mib(peakRss) })
    }
    printTable('Segment size (2 workers)', sweepRows)

    const producers = await withPeakRss(async () => {
      const t0 = performance.now()
      const result = await scanProducerBreaks(store, { limit: 100 })
      return { ms: performance.now() - t0, result }
    })
    console.log(
      `\nscanProducerBreaks: ${fmt(producers.value.ms)} ms = ${fmt(perSecond(ROWS, producers.value.ms))} rows/s, peak RSS ${mib(producers.peakRss)}, ` +
        `${producers.value.result.breaks.length}${producers.value.result.truncated ? '+' : ''} breaks (0 expected: each load batch is its own producer)`,
    )

    // One tampered row must be found.
    const chain = chainIdOf('rt-bench-verify', Math.min(1, CHAINS - 1))
    const seq = Math.max(1, Math.floor(ROWS / CHAINS / 2))
    await store.client.command({
      query: `ALTER TABLE ${store.table('access_log')} UPDATE principal_id = 'mallory' WHERE chain_id = {chain:String} AND seq = {seq:UInt64} SETTINGS mutations_sync = 2`,
      query_params: { chain, seq },
    })
    const t0 = performance.now()
    const tampered = await scanSegments(store, plan, { workers: 2, maxSuspects: 100 })
    const suspects = tampered.flatMap((s) => s.suspects)
    const found = suspects.some((s) => s.chain_id === chain && s.seq === seq && s.prev_seq === seq - 1)
    console.log(`After UPDATE principal_id = 'mallory' at ${chain} seq ${seq}: ${fmt(performance.now() - t0)} ms, suspects ${JSON.stringify(suspects)}${found ? '' : ' — MISSED'}`)
    if (!found) console.error('WARNING: the tampered row was not reported')
  } finally {
    await bench.close()
  }
}

function verdict(scans: readonly SegmentScan[]): string {
  const rows = scans.reduce((n, s) => n + s.rows, 0)
  const suspects = scans.reduce((n, s) => n + s.suspects.length, 0)
  if (rows !== ROWS) console.error(`WARNING: scanned ${rows} rows, expected ${ROWS}`)
  return suspects === 0 && rows === ROWS ? 'intact' : `${suspects} suspects, ${rows} rows`
}

interface Breakdown {
  bytes: number
  chunks: number
  streamMs: number
  firstByteMs: number
  copyMs: number
  parseMs: number
  hashMs: number
  linkMs: number
  scanMs: number
  shaMs: number
  bulkShaMs: number
}

/**
 * Segment by segment on this thread: stream it, then walk the same bytes
 * without and with re-hashing, then the full SegmentScanner, then raw
 * SHA-256 of each row. Differences between the passes give each stage.
 */
async function breakdown(store: Store, plan: readonly ScanRequest[]): Promise<Breakdown> {
  const b: Breakdown = { bytes: 0, chunks: 0, streamMs: 0, firstByteMs: 0, copyMs: 0, parseMs: 0, hashMs: 0, linkMs: 0, scanMs: 0, shaMs: 0, bulkShaMs: 0 }
  const columns = [...ACCESS_LOG_COLUMNS.map((c) => c.name), HASH_COLUMN.name].join(', ')
  for (const request of plan) {
    const t0 = performance.now()
    const result = await store.client.exec({
      query: `SELECT ${columns} FROM ${store.table('access_log')} WHERE chain_id = {c:String} AND seq >= {lo:UInt64}${request.hi === null ? '' : ' AND seq <= {hi:UInt64}'} ORDER BY seq, hash FORMAT RowBinary`,
      query_params: { c: request.chain_id, lo: request.lo, ...(request.hi === null ? {} : { hi: request.hi }) },
      clickhouse_settings: NO_CACHES,
    })
    const chunks: Buffer[] = []
    for await (const chunk of result.stream as AsyncIterable<Buffer>) {
      if (chunks.length === 0) b.firstByteMs += performance.now() - t0
      chunks.push(chunk)
    }
    b.streamMs += performance.now() - t0
    b.chunks += chunks.length

    let t = performance.now()
    for (const chunk of chunks) chunk.copy(Buffer.allocUnsafeSlow(chunk.length))
    b.copyMs += performance.now() - t

    const bounds: number[] = []
    t = performance.now()
    const parseOnly = new RowWalker(ACCESS_LOG_LAYOUT, (row) => void bounds.push(row.start, row.offsets[COL.hash]!), { rehash: false, describe: () => request.chain_id })
    for (const chunk of chunks) parseOnly.push(chunk)
    parseOnly.finish()
    const parseMs = performance.now() - t

    t = performance.now()
    const rehashing = new RowWalker(ACCESS_LOG_LAYOUT, () => {}, { rehash: true, describe: () => request.chain_id })
    for (const chunk of chunks) rehashing.push(chunk)
    rehashing.finish()
    const walkMs = performance.now() - t

    t = performance.now()
    const scanner = new SegmentScanner(request, 100)
    for (const chunk of chunks) scanner.push(chunk)
    scanner.finish()
    const scanMs = performance.now() - t

    b.parseMs += parseMs
    b.hashMs += walkMs - parseMs
    b.linkMs += scanMs - walkMs
    b.scanMs += scanMs

    // Row boundaries index into the one chunk chDB returns; with several
    // chunks the raw-hash ceiling is skipped for this segment.
    const only = chunks.length === 1 ? chunks[0]! : null
    t = performance.now()
    if (only) for (let i = 0; i < bounds.length; i += 2) hash('sha256', only.subarray(bounds[i]!, bounds[i + 1]!), 'binary')
    b.shaMs += performance.now() - t
    t = performance.now()
    const whole = createHash('sha256')
    for (const chunk of chunks) {
      whole.update(chunk)
      b.bytes += chunk.length
    }
    whole.digest()
    b.bulkShaMs += performance.now() - t
  }
  return b
}


await main()
