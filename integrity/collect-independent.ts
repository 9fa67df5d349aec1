import type { Store } from '../store/store.js'
import type { FactWindow } from './classify-window.js'
import { NO_CACHES } from './no-caches.js'
import { chainOffsetsStreamed, findStoredEventsByChain, type ChainOffsets } from './chain-offsets.js'
import { assembleFacts, foundEventsFacts, mergeRanges, suspectRange, type Facts, type FactsRequest } from './facts.js'
import { fetchWindowFacts, planSegments, scanProducerBreaks, scanSegments, type SegmentScan } from './independent-scan.js'
import { chainListSql } from './owner-read-sql.js'
import { completeThrough } from './producer-gaps.js'
import { producerBreaksSince, type ProducerFacts } from './producer-since.js'
import type { ChainScan, CheckpointRow, Suspect } from './row-facts.js'

/**
 * Rows per segment: one worker's unit of work. chDB returns a query's whole
 * result at once (it does not stream), so this also bounds memory: ~27 MB
 * per 50k rows, with no measurable speed difference up to 250k.
 */
const ROWS_PER_SEGMENT = 50_000

/**
 * Collects verification facts trusting nothing ClickHouse computes: the rows
 * are streamed out as RowBinary and every column is re-encoded and every hash
 * recomputed in this process, on worker threads. ClickHouse is used only to
 * list chains (to split the work; the first segment of each chain starts at
 * seq 0 and the last is open-ended, so no row can hide outside them) and to
 * sort.
 */
const GENESIS = Object.freeze({ seq: 0, hash: '0'.repeat(64) })

export async function collectIndependent(store: Store, request: FactsRequest): Promise<Facts> {
  if (request.find_events) return foundEventsFacts(await findStoredEventsByChain(store, 'independent', request.find_events))
  const log = store.table('access_log')
  const listed = await store.queryRows<{ chain_id: string; max_seq: number }>(chainListSql(log), {}, NO_CACHES)
  const checkpointSeqs = new Map(Object.entries(request.checkpoint_seqs))
  const plan = planSegments(
    listed.map((c) => ({ chain_id: c.chain_id, max_seq: Number(c.max_seq) })),
    ROWS_PER_SEGMENT,
    checkpointSeqs,
  )
  const from = (chainId: string) => request.from_seq?.[chainId] ?? 0
  // Incremental runs start each chain at its anchor: drop whole segments below it, cut the first one.
  const requests = plan
    .filter((s) => s.hi === null || s.hi >= from(s.chain_id))
    .map((s) => (from(s.chain_id) > s.lo ? { ...s, lo: from(s.chain_id) } : s))
  const scans = await scanSegments(store, requests, { workers: request.workers, maxSuspects: request.maxSuspects })

  const chains: ChainScan[] = []
  const suspects: Suspect[] = []
  const checkpointRows: CheckpointRow[] = []
  const producerCounts: Record<string, number> = {}
  let suspectsTruncated = false
  const byChain = new Map<string, SegmentScan[]>()
  for (const scan of scans) byChain.set(scan.chain_id, [...(byChain.get(scan.chain_id) ?? []), scan])
  for (const [chainId, segments] of byChain) {
    segments.sort((a, b) => a.lo - b.lo)
    let rows = 0
    let first: number | undefined
    let last: { seq: number; hash: string } | null = null
    for (const seg of segments) {
      rows += seg.rows
      suspects.push(...seg.suspects)
      suspectsTruncated ||= seg.suspects_truncated
      checkpointRows.push(...seg.checkpoint_rows)
      for (const [producer, n] of Object.entries(seg.producer_counts)) producerCounts[producer] = (producerCounts[producer] ?? 0) + n
      if (!seg.first || !seg.last) continue
      first ??= seg.first.seq
      // Segments are checked apart; a segment starting at seq 0 compared its
      // first row with genesis itself. Any other first row is checked here,
      // against the previous segment's last row, or genesis when every
      // earlier segment was empty. In incremental runs the first row of the
      // range is the anchor: only its own hash counts.
      if (seg.lo !== 0) {
        const pred = last ?? (from(chainId) === 0 ? GENESIS : null)
        const broken = pred !== null && (seg.first.seq !== pred.seq + 1 || seg.first.prev_hash !== pred.hash)
        if (!seg.first.self_ok || broken) suspects.push({ chain_id: chainId, seq: seg.first.seq, prev_seq: pred?.seq ?? seg.first.seq })
      }
      last = seg.last
    }
    if (rows > 0 && last && first !== undefined) chains.push({ chain_id: chainId, rows, first_seq: first, last_seq: last.seq, head_hash: last.hash })
  }

  const windows: FactWindow[] = []
  for (const [chainId] of byChain) {
    const ranges = mergeRanges(suspects.filter((s) => s.chain_id === chainId).map((s) => suspectRange(s.seq, s.prev_seq, from(chainId))))
    for (const range of ranges) windows.push({ chain_id: chainId, ...range, rows: await fetchWindowFacts(store, chainId, range.lo, range.hi) })
  }

  // Offsets are streamed apart from the rows the workers hash: a store that
  // answered the two scans differently would show as rows stored meanwhile.
  const chainOffsets: ChainOffsets[] = []
  if (request.offsets) {
    for (const c of listed) {
      const offsets = await chainOffsetsStreamed(store, c.chain_id, from(c.chain_id), Number(c.max_seq), request.maxSuspects)
      if (offsets) chainOffsets.push(offsets)
    }
  }

  const warnings: string[] = []
  let producers: ProducerFacts
  if (request.producer_through) {
    producers = await producerBreaksSince(store, request, Object.keys(producerCounts))
  } else {
    const scanned = await scanProducerBreaks(store, { limit: request.maxSuspects })
    const differ = Object.keys({ ...scanned.counts, ...producerCounts }).filter((p) => scanned.counts[p] !== producerCounts[p])
    if (differ.length > 0) warnings.push(`${differ.length} producers had different row counts in the chain scan and the producer scan (rows stored while verifying, or a store that answers inconsistently)`)
    producers = { breaks: scanned.breaks, truncated: scanned.truncated, checked: Object.keys(scanned.counts).length, through: completeThrough(scanned.breaks, scanned.last) }
  }
  return assembleFacts({
    chains,
    windows,
    suspectsTruncated,
    checkpointRows,
    producers,
    viewFindings: [],
    viewsChecked: false,
    warnings,
    workers: request.workers,
    ...(request.offsets ? { chainOffsets } : {}),
  })
}
