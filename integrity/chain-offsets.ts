import type { Store } from '../store/store.js'
import { VerificationError } from './errors.js'
import { fetchWindowFacts, streamQuery } from './independent-scan.js'
import { NO_CACHES } from './no-caches.js'
import { findEventsSql, offsetsBoundedSql, offsetsOpenSql } from './owner-read-sql.js'

/**
 * The Kafka offsets a chain's rows claim, reduced to where they do not run on
 * one by one. The verifier (integrity/verify.ts) holds them against the
 * partition itself: a chain is `<topic>/<partition>` and each row stores the
 * offset of the message it was made from, so the offsets of consecutive rows
 * rise, and every offset skipped is a message the writer had a reason to
 * skip (a dead letter, a replayed duplicate) or a row that is gone.
 *
 * Rows sharing a seq are the chain check's business (duplicate, inserted or
 * forked rows): each seq is represented by the lowest offset stored at it.
 */

/**
 * The row at `seq` does not hold `prev_offset + 1`. Offsets are decimal
 * strings: UInt64 and attacker-controlled, they need not fit a double.
 */
export interface OffsetBreak {
  seq: number
  prev_seq: number
  offset: string
  prev_offset: string
}

export interface ChainOffsets {
  chain_id: string
  /** First seq of the range checked (incremental runs start at the anchor). */
  first_seq: number
  /** The whole chain's newest seq and its offset, whatever range was checked. */
  head_seq: number
  head_offset: string
  /** Each seq (after the first checked) whose offset is not the previous seq's + 1. */
  breaks: OffsetBreak[]
  truncated: boolean
}

/**
 * Where `offset` falls in a chain, from its offsets alone: the seq of the
 * row that stores it (`stored`), or of the first row after it (head + 1 past
 * the head; the first checked seq before the checked range). Between two
 * breaks every seq holds the previous seq's offset + 1, which is what makes
 * this exact wherever the chain itself is intact; where it is not, other
 * findings are there already and this only places a dead-letter finding
 * near them.
 */
export function locateOffset(c: ChainOffsets, offset: bigint): { seq: number; stored: boolean } {
  const n = c.breaks.length
  const segments: { fromSeq: number; fromOff: bigint; toSeq: number; toOff: bigint }[] = []
  for (let k = 0; k <= n; k++) {
    const toSeq = k < n ? c.breaks[k]!.prev_seq : c.head_seq
    const toOff = BigInt(k < n ? c.breaks[k]!.prev_offset : c.head_offset)
    const fromSeq = k === 0 ? c.first_seq : c.breaks[k - 1]!.seq
    const fromOff = k === 0 ? toOff - BigInt(toSeq - fromSeq) : BigInt(c.breaks[k - 1]!.offset)
    segments.push({ fromSeq, fromOff, toSeq, toOff })
  }
  for (const s of segments) {
    if (offset < s.fromOff) return { seq: s.fromSeq, stored: false }
    if (offset <= s.toOff) return { seq: Math.min(s.toSeq, s.fromSeq + Number(offset - s.fromOff)), stored: true }
  }
  return { seq: c.head_seq + 1, stored: false }
}

/**
 * In ClickHouse: per seq the lowest offset, then one window over the seqs,
 * returning only the breaks. Reads two UInt64 columns in primary-key order;
 * at 10M rows the breaks, not the rows, come back.
 */
export async function chainOffsetsInDb(store: Store, chainId: string, from: number, limit: number): Promise<ChainOffsets | null> {
  const log = store.table('access_log')
  const params = { chain_id: chainId, from }
  // The head is the newest seq's lowest offset: bitNot turns the tie-break round.
  const [head] = await store.queryRows<{ first_seq: number; head_seq: number; head_offset: string; rows: number }>(
    `SELECT count() AS rows, min(seq) AS first_seq, max(seq) AS head_seq,
            toString(argMax(kafka_offset, (seq, bitNot(kafka_offset)))) AS head_offset
     FROM ${log} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64}`,
    params,
    NO_CACHES,
  )
  if (!head || Number(head.rows) === 0) return null
  const breaks = await store.queryRows<{ seq: number; prev_seq: number; offset: string; prev_offset: string }>(
    `SELECT seq, prev_seq, toString(off) AS offset, toString(prev_off) AS prev_offset FROM (
       SELECT seq, off, lagInFrame(seq, 1, toUInt64(0)) OVER w AS prev_seq, lagInFrame(off, 1, toUInt64(0)) OVER w AS prev_off,
              row_number() OVER w AS position
       FROM (SELECT seq, min(kafka_offset) AS off FROM ${log} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64} GROUP BY seq)
       WINDOW w AS (ORDER BY seq ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
     )
     WHERE position > 1 AND (off <= prev_off OR off - prev_off != 1)
     ORDER BY seq LIMIT {limit:UInt32}`,
    { ...params, limit: limit + 1 },
    NO_CACHES,
  )
  return {
    chain_id: chainId,
    first_seq: Number(head.first_seq),
    head_seq: Number(head.head_seq),
    head_offset: head.head_offset,
    breaks: breaks.slice(0, limit).map((b) => ({ seq: Number(b.seq), prev_seq: Number(b.prev_seq), offset: b.offset, prev_offset: b.prev_offset })),
    truncated: breaks.length > limit,
  }
}

/** Seqs per streamed query: 16 bytes a row, so a segment is at most ~16 MB in chDB's one-buffer result. */
const SEQS_PER_SEGMENT = 1_000_000
const RECORD = 16

/**
 * The same facts computed here from `seq, kafka_offset` streamed as
 * RowBinary: ClickHouse only filters and sorts, and both are checked as
 * the bytes arrive. Segments cover every seq from `from` on (the last one is
 * open-ended), so no row can sit outside them.
 */
export async function chainOffsetsStreamed(store: Store, chainId: string, from: number, maxSeq: number, limit: number): Promise<ChainOffsets | null> {
  const lie = (message: string) => new VerificationError('VERIFY_FAILED', message, { details: { chain_id: chainId } })
  const out: ChainOffsets = { chain_id: chainId, first_seq: 0, head_seq: 0, head_offset: '0', breaks: [], truncated: false }
  let rows = 0
  let prevSeq = -1n
  let prevOffset = 0n
  /** The lowest offset of the seq being read (its first row in (seq, offset) order). */
  let seqOffset = 0n
  let carry = Buffer.alloc(0)
  const onRecord = (seq: bigint, offset: bigint, lo: bigint, hi: bigint | null) => {
    if (seq < lo || (hi !== null && seq > hi)) throw lie(`ClickHouse returned seq ${seq} of chain ${chainId} when asked for seqs ${lo}..${hi ?? ''}`)
    if (seq < prevSeq || (seq === prevSeq && offset < seqOffset)) throw lie(`ClickHouse returned chain ${chainId} out of (seq, kafka_offset) order at seq ${seq}`)
    rows++
    if (seq === prevSeq) return
    if (prevSeq >= 0n && offset !== prevOffset + 1n) {
      if (out.breaks.length < limit) out.breaks.push({ seq: Number(seq), prev_seq: Number(prevSeq), offset: offset.toString(), prev_offset: prevOffset.toString() })
      else out.truncated = true
    }
    if (prevSeq < 0n) out.first_seq = Number(seq)
    prevSeq = seq
    prevOffset = offset
    seqOffset = offset
  }
  const last = Math.max(from, Number.isSafeInteger(maxSeq) ? maxSeq : from)
  const log = store.table('access_log')
  for (let lo = from; ; lo += SEQS_PER_SEGMENT) {
    const open = lo + SEQS_PER_SEGMENT > last
    const hi = open ? null : lo + SEQS_PER_SEGMENT - 1
    const query = open ? offsetsOpenSql(log) : offsetsBoundedSql(log)
    const loBig = BigInt(lo)
    const hiBig = hi === null ? null : BigInt(hi)
    await streamQuery(store, query, { c: chainId, lo, ...(hi === null ? {} : { hi }) }, `offsets of chain ${chainId} from seq ${lo}`, (chunk) => {
      const buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk
      const whole = buf.length - (buf.length % RECORD)
      for (let at = 0; at < whole; at += RECORD) onRecord(buf.readBigUInt64LE(at), buf.readBigUInt64LE(at + 8), loBig, hiBig)
      carry = Buffer.from(buf.subarray(whole))
    })
    if (carry.length > 0) throw lie(`ClickHouse returned a partial row of chain ${chainId}'s offsets`)
    if (open) break
  }
  if (rows === 0) return null
  out.head_seq = Number(prevSeq)
  out.head_offset = seqOffset.toString()
  return out
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * Which of `ids` a chain stores. `independent`: ClickHouse only says where
 * to look; each row it names is re-hashed here and counts only if its own
 * hash holds and it carries the id.
 */
export async function findStoredEvents(store: Store, mode: 'in-db' | 'independent', chainId: string, ids: readonly string[]): Promise<string[]> {
  const wanted = [...new Set(ids.map((id) => id.toLowerCase()).filter((id) => UUID.test(id)))]
  if (wanted.length === 0) return []
  const rows = await store.queryRows<{ id: string; seq: number }>(findEventsSql(store.table('access_log')), { chain_id: chainId, ids: wanted }, NO_CACHES)
  if (mode === 'in-db') return [...new Set(rows.map((r) => r.id))]
  const found = new Set<string>()
  const want = new Set(wanted)
  for (const seq of new Set(rows.map((r) => Number(r.seq)))) {
    for (const row of await fetchWindowFacts(store, chainId, seq, seq)) if (row.self_ok && want.has(row.event_id)) found.add(row.event_id)
  }
  return [...found]
}

/** findStoredEvents for every chain of a find_events request. */
export async function findStoredEventsByChain(store: Store, mode: 'in-db' | 'independent', find: Record<string, string[]>): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {}
  for (const [chainId, ids] of Object.entries(find)) found[chainId] = await findStoredEvents(store, mode, chainId, ids)
  return found
}
