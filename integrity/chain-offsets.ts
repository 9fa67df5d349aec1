import type { Store } from '../store/store.js'
import { VerificationError } from './errors.js'
import { fetchWindowFacts, streamQuery } from './independent-scan.js'
import { NO_CACHES } from './no-caches.js'
import { findEventsSql, offsetsBoundedSql, offsetsOpenSql } from './owner-read-sql.js'

/**
 * The Kafka positions a chain's rows claim, reduced to where they do not run
 * on one by one. The verifier (integrity/verify.ts) holds them against the
 * partition itself: a chain is `<topic>/<partition>` and each row stores the
 * offset of the message it was made from and its place among that message's
 * events (`message_index` of `message_events`: a wire-2 batch is one message
 * of many events, a wire-1 message one event). Consecutive rows therefore
 * either take the next event of the same message or the first event of the
 * next offset, and every offset skipped is a message the writer had a reason
 * to skip (a dead letter, a replayed duplicate) or rows that are gone. The
 * writer stores or refuses a message whole, so nothing explains a row
 * missing inside a message.
 *
 * Rows sharing a seq are the chain check's business (duplicate, inserted or
 * forked rows): each seq is represented by the lowest position stored at it.
 */

/** Where a row sits in Kafka: its message's offset (a decimal string: UInt64 and attacker-controlled), and its event's place in that message. */
export interface RowPosition {
  offset: string
  index: number
  events: number
}

/** The row at `seq` does not follow the row at `prev_seq`. */
export interface OffsetBreak {
  seq: number
  prev_seq: number
  offset: string
  prev_offset: string
  /** The row's event index and its message's event count; the previous row's. */
  index: number
  events: number
  prev_index: number
  prev_events: number
}

export interface ChainOffsets {
  chain_id: string
  /** First seq of the range checked (incremental runs start at the anchor), and where its row sits. */
  first_seq: number
  first: RowPosition
  /** The whole chain's newest seq and its position, whatever range was checked. */
  head_seq: number
  head_offset: string
  head: RowPosition
  /** Each seq (after the first checked) whose row does not follow the previous seq's. */
  breaks: OffsetBreak[]
  truncated: boolean
}

/** Whether a row at `pos` is its message's last event (the writer moves on to the next offset after it). */
export const endsMessage = (pos: { index: number; events: number }): boolean => pos.index + 1 >= pos.events

/**
 * What a break means: `offset_gap` when whole messages were skipped between
 * two complete ones (a dead letter or a replayed duplicate may explain
 * each); `message_incomplete` when rows are missing inside a message (or a
 * message's rows disagree on its event count), which nothing explains;
 * `offset_invalid` when the position goes back or stays: a lower offset, the
 * same offset after a message's last event, or inside a message an event
 * index that does not rise (a row repeated or moved, not one missing).
 */
export function breakKind(b: OffsetBreak): 'offset_gap' | 'message_incomplete' | 'offset_invalid' {
  const offset = BigInt(b.offset)
  const prev = BigInt(b.prev_offset)
  const prevEnds = endsMessage({ index: b.prev_index, events: b.prev_events })
  // After a message's last event the next row must take a later offset; inside one, a later event.
  if (offset < prev || (offset === prev && (prevEnds || b.index <= b.prev_index))) return 'offset_invalid'
  if (offset === prev || !prevEnds || b.index !== 0) return 'message_incomplete'
  return 'offset_gap'
}

/**
 * Where `offset` falls in a chain, from its positions alone: whether a row
 * stores (part of) the message at `offset`, and the seq of that row or of
 * the first row after it (head + 1 past the head; the first checked seq
 * before the checked range). Between two breaks every message has rows, so
 * `stored` is exact wherever the chain itself is intact; the seq is exact
 * for one-event messages and otherwise the nearest one can tell without
 * reading rows: it only places a dead-letter finding.
 */
export function locateOffset(c: ChainOffsets, offset: bigint): { seq: number; stored: boolean } {
  const n = c.breaks.length
  for (let k = 0; k <= n; k++) {
    const toSeq = k < n ? c.breaks[k]!.prev_seq : c.head_seq
    const toOff = BigInt(k < n ? c.breaks[k]!.prev_offset : c.head.offset)
    const fromSeq = k === 0 ? c.first_seq : c.breaks[k - 1]!.seq
    const fromOff = BigInt(k === 0 ? c.first.offset : c.breaks[k - 1]!.offset)
    if (offset < fromOff) return { seq: fromSeq, stored: false }
    if (offset <= toOff) return { seq: Math.min(toSeq, fromSeq + Number(offset - fromOff)), stored: true }
  }
  return { seq: c.head_seq + 1, stored: false }
}

interface PositionRow {
  seq: number
  off_text: string
  idx: number
  n: number
}

/**
 * In ClickHouse: per seq the lowest position, then one window over the
 * seqs, returning only the breaks. Reads four columns in primary-key order;
 * at 10M rows the breaks, not the rows, come back.
 */
export async function chainOffsetsInDb(store: Store, chainId: string, from: number, limit: number): Promise<ChainOffsets | null> {
  const log = store.table('access_log')
  const params = { chain_id: chainId, from }
  // UInt64 arithmetic wraps (18446744073709551615 + 1 = 0), so "the next offset" is asked as off > prev_off AND off - prev_off = 1, as the streamed path's bigints answer it.
  const perSeq = `SELECT seq, min((kafka_offset, message_index, message_events)) AS pos, pos.1 AS off, pos.2 AS idx, pos.3 AS n
       FROM ${log} WHERE chain_id = {chain_id:String} AND seq >= {from:UInt64} GROUP BY seq`
  const [ends] = await store.queryRows<{ rows: number; first_seq: number; first_off: string; first_idx: number; first_n: number; head_seq: number; head_off: string; head_idx: number; head_n: number }>(
    `SELECT count() AS rows, min(seq) AS first_seq, toString(argMin(off, seq)) AS first_off, argMin(idx, seq) AS first_idx, argMin(n, seq) AS first_n,
            max(seq) AS head_seq, toString(argMax(off, seq)) AS head_off, argMax(idx, seq) AS head_idx, argMax(n, seq) AS head_n
     FROM (${perSeq})`,
    params,
    NO_CACHES,
  )
  if (!ends || Number(ends.rows) === 0) return null
  // Output aliases differ from the inner names: ClickHouse would otherwise compare the String alias in WHERE.
  const breaks = await store.queryRows<PositionRow & { prev_seq: number; prev_off_text: string; prev_idx: number; prev_n: number }>(
    `SELECT seq, prev_seq, toString(off) AS off_text, toString(prev_off) AS prev_off_text, idx, prev_idx, n, prev_n FROM (
       SELECT seq, off, idx, n,
              lagInFrame(seq, 1, toUInt64(0)) OVER w AS prev_seq, lagInFrame(off, 1, toUInt64(0)) OVER w AS prev_off,
              lagInFrame(idx, 1, toUInt32(0)) OVER w AS prev_idx, lagInFrame(n, 1, toUInt32(0)) OVER w AS prev_n,
              row_number() OVER w AS position
       FROM (${perSeq})
       WINDOW w AS (ORDER BY seq ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
     )
     WHERE position > 1 AND NOT if(toUInt64(prev_idx) + 1 < prev_n, off = prev_off AND idx = prev_idx + 1 AND n = prev_n, off > prev_off AND off - prev_off = 1 AND idx = 0)
     ORDER BY seq LIMIT {limit:UInt32}`,
    { ...params, limit: limit + 1 },
    NO_CACHES,
  )
  return {
    chain_id: chainId,
    first_seq: Number(ends.first_seq),
    first: { offset: ends.first_off, index: Number(ends.first_idx), events: Number(ends.first_n) },
    head_seq: Number(ends.head_seq),
    head_offset: ends.head_off,
    head: { offset: ends.head_off, index: Number(ends.head_idx), events: Number(ends.head_n) },
    breaks: breaks.slice(0, limit).map((b) => ({
      seq: Number(b.seq),
      prev_seq: Number(b.prev_seq),
      offset: b.off_text,
      prev_offset: b.prev_off_text,
      index: Number(b.idx),
      events: Number(b.n),
      prev_index: Number(b.prev_idx),
      prev_events: Number(b.prev_n),
    })),
    truncated: breaks.length > limit,
  }
}

/** Seqs per streamed query: 24 bytes a row, so a segment is at most ~24 MB in chDB's one-buffer result. */
const SEQS_PER_SEGMENT = 1_000_000
const RECORD = 24

/**
 * The same facts computed here from `seq, kafka_offset, message_index,
 * message_events` streamed as RowBinary: ClickHouse only filters and sorts,
 * and both are checked as the bytes arrive. Segments cover every seq from
 * `from` on (the last one is open-ended), so no row can sit outside them.
 */
export async function chainOffsetsStreamed(store: Store, chainId: string, from: number, maxSeq: number, limit: number): Promise<ChainOffsets | null> {
  const lie = (message: string) => new VerificationError('VERIFY_FAILED', message, { details: { chain_id: chainId } })
  const none: RowPosition = { offset: '0', index: 0, events: 1 }
  const out: ChainOffsets = { chain_id: chainId, first_seq: 0, first: none, head_seq: 0, head_offset: '0', head: none, breaks: [], truncated: false }
  let rows = 0
  let prevSeq = -1n
  /** The lowest position of the seq being read (its first row in (seq, offset, index, events) order). */
  let prevOff = 0n
  let prevIdx = 0
  let prevN = 1
  let carry = Buffer.alloc(0)
  const onRecord = (seq: bigint, off: bigint, idx: number, n: number, lo: bigint, hi: bigint | null) => {
    if (seq < lo || (hi !== null && seq > hi)) throw lie(`ClickHouse returned seq ${seq} of chain ${chainId} when asked for seqs ${lo}..${hi ?? ''}`)
    if (seq < prevSeq || (seq === prevSeq && (off < prevOff || (off === prevOff && (idx < prevIdx || (idx === prevIdx && n < prevN)))))) {
      throw lie(`ClickHouse returned chain ${chainId} out of (seq, kafka_offset, message_index, message_events) order at seq ${seq}`)
    }
    rows++
    if (seq === prevSeq) return
    if (prevSeq >= 0n) {
      const follows = prevIdx + 1 < prevN ? off === prevOff && idx === prevIdx + 1 && n === prevN : off === prevOff + 1n && idx === 0
      if (!follows) {
        const b = { seq: Number(seq), prev_seq: Number(prevSeq), offset: off.toString(), prev_offset: prevOff.toString(), index: idx, events: n, prev_index: prevIdx, prev_events: prevN }
        if (out.breaks.length < limit) out.breaks.push(b)
        else out.truncated = true
      }
    } else {
      out.first_seq = Number(seq)
      out.first = { offset: off.toString(), index: idx, events: n }
    }
    prevSeq = seq
    prevOff = off
    prevIdx = idx
    prevN = n
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
      for (let at = 0; at < whole; at += RECORD) onRecord(buf.readBigUInt64LE(at), buf.readBigUInt64LE(at + 8), buf.readUInt32LE(at + 16), buf.readUInt32LE(at + 20), loBig, hiBig)
      carry = Buffer.from(buf.subarray(whole))
    })
    if (carry.length > 0) throw lie(`ClickHouse returned a partial row of chain ${chainId}'s offsets`)
    if (open) break
  }
  if (rows === 0) return null
  out.head_seq = Number(prevSeq)
  out.head_offset = prevOff.toString()
  out.head = { offset: prevOff.toString(), index: prevIdx, events: prevN }
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
