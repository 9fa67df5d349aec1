import { RowBinaryWriter } from '../store/row-binary.js'
import { linkEntries, type ChainEntry, type ChainedBatch, type ChainHead } from './chain.js'

/** Where a gap of missing signed rows sits, from what is trusted around it. */
export interface GapAnchors {
  /** The stored row before the gap (emptyChain for a gap that starts the chain). */
  left: ChainHead
  /** ingested_at (µs) of `left`; null at the chain's start. */
  leftIngestedAt: number | null
  /** Rows missing: seqs left.seq+1 … left.seq+missing. */
  missing: number
  /** What the last missing row hashes to: the next stored row's prev_hash, or the checkpoint's hash. */
  rightHash: Buffer
  /** The Kafka offset the last missing row must have (the gap ends at the checkpoint's row); null otherwise. */
  rightOffset: bigint | null
  /** ingested_at (µs) of the row after the gap, or the checkpoint's signed_at: no missing row was stored later. */
  rightIngestedAt: number
}

export interface RebuildLimits {
  /**
   * Most chains tried (one choice of messages with one assignment of
   * ingested_at values), each costing one hash per missing row. @default 2000000
   */
  maxCandidates: number
  /** Most ways to choose the missing rows' messages among more valid ones. @default 64 */
  maxChoices: number
}

export const REBUILD_LIMITS: Readonly<RebuildLimits> = Object.freeze({ maxCandidates: 2_000_000, maxChoices: 64 })

export type RebuildFailure = 'REPAIR_MESSAGES_MISSING' | 'REPAIR_GAP_UNPROVED' | 'REPAIR_GAP_AMBIGUOUS' | 'REPAIR_SEARCH_EXHAUSTED'

export type RebuildOutcome =
  | { proved: true; batch: ChainedBatch; entries: ChainEntry[]; ingestedAt: number[]; candidates: number }
  | { proved: false; code: RebuildFailure; problem: string; candidates: number }

/** One stretch of rows the writer stored in one insert: `count` rows sharing one ingested_at. */
type Run = readonly [count: number, ingestedAt: number]

class Exhausted extends Error {}

/**
 * Rebuilds the missing rows of a gap from the valid Kafka messages between
 * its neighbours, linked exactly as the chain writer links them
 * (linkEntries), and accepts a rebuild only when its last hash (and offset,
 * at the checkpoint) is the one the trusted side commits to: SHA-256 makes
 * any other set of rows, order or ingested_at fail.
 *
 * ingested_at is the one column Kafka cannot say. The writer sets one value
 * per insert, rising along the chain, so the gap's rows are tried first
 * with the neighbours' values (the gap lies inside or across their
 * inserts), then with one unknown insert between them, searched microsecond
 * by microsecond from `hintMicros` (the newest Kafka timestamp of the gap's
 * messages: an insert follows its messages closely), within the caps.
 */
export function rebuildGap(anchors: GapAnchors, events: readonly ChainEntry[], hintMicros: number | null, limits: RebuildLimits = REBUILD_LIMITS): RebuildOutcome {
  const n = anchors.missing
  const pool = anchors.rightOffset === null ? events : events.filter((e) => e.offset <= anchors.rightOffset!)
  if (n < 1 || pool.length < n) {
    return { proved: false, code: 'REPAIR_MESSAGES_MISSING', problem: `${n} rows are missing but Kafka holds ${pool.length} valid events between their neighbours`, candidates: 0 }
  }
  const choices = chooseEntries(pool, n, anchors.rightOffset, limits.maxChoices)
  if (choices === null) {
    return {
      proved: false,
      code: 'REPAIR_GAP_AMBIGUOUS',
      problem: `${pool.length} valid events lie between the neighbours of ${n} missing rows: more than ${limits.maxChoices} ways to choose them`,
      candidates: 0,
    }
  }
  if (choices.length === 0) {
    return { proved: false, code: 'REPAIR_MESSAGES_MISSING', problem: `no valid event at offset ${anchors.rightOffset}, the offset the checkpoint signed`, candidates: 0 }
  }
  const writer = new RowBinaryWriter()
  let candidates = 0
  const attempt = (entries: readonly ChainEntry[], runs: readonly Run[]): ChainedBatch | null => {
    if (candidates >= limits.maxCandidates) throw new Exhausted()
    candidates += 1
    let head = anchors.left
    const lines: string[] = []
    let at = 0
    for (const [count, ingestedAt] of runs) {
      if (count === 0) continue
      const linked = linkEntries(head, entries.slice(at, at + count), ingestedAt, writer)
      lines.push(...linked.lines)
      head = linked.head
      at += count
    }
    const proved = head.hash.equals(anchors.rightHash) && (anchors.rightOffset === null || head.lastOffset === anchors.rightOffset)
    return proved ? { lines, head } : null
  }
  const found = (entries: ChainEntry[], runs: readonly Run[], batch: ChainedBatch): RebuildOutcome => ({
    proved: true,
    batch,
    entries,
    ingestedAt: runs.flatMap(([count, t]) => Array<number>(count).fill(t)),
    candidates,
  })
  const lo = anchors.leftIngestedAt ?? 0
  try {
    for (const entries of choices) {
      for (const runs of knownRuns(n, anchors.leftIngestedAt, anchors.rightIngestedAt)) {
        const batch = attempt(entries, runs)
        if (batch) return found(entries, runs, batch)
      }
    }
    for (const entries of choices) {
      for (const t of searchOrder(lo, anchors.rightIngestedAt, hintMicros)) {
        for (const runs of unknownRuns(n, anchors.leftIngestedAt, anchors.rightIngestedAt, t)) {
          const batch = attempt(entries, runs)
          if (batch) return found(entries, runs, batch)
        }
      }
    }
  } catch (err) {
    if (!(err instanceof Exhausted)) throw err
    return {
      proved: false,
      code: 'REPAIR_SEARCH_EXHAUSTED',
      problem: `no rebuild of the ${n} missing rows linked up within ${limits.maxCandidates} candidates (ingested_at between ${lo} and ${anchors.rightIngestedAt} µs)`,
      candidates,
    }
  }
  return {
    proved: false,
    code: 'REPAIR_GAP_UNPROVED',
    problem: `no rebuild of the ${n} missing rows from the ${pool.length} valid events between their neighbours hashes to what the trusted side commits to`,
    candidates,
  }
}

/**
 * The ordered ways to pick `n` of the events (offset order kept), or null
 * when there are more than `max`. With a right offset the last pick must be
 * the event at it.
 */
export function chooseEntries(events: readonly ChainEntry[], n: number, rightOffset: bigint | null, max: number): ChainEntry[][] | null {
  const last = rightOffset === null ? null : events.findIndex((e) => e.offset === rightOffset)
  if (last === -1) return []
  const fixed = last === null ? [] : [events[last]!]
  const pool = last === null ? events : events.slice(0, last)
  const k = n - fixed.length
  if (combinations(pool.length, k, max) > max) return null
  const out: ChainEntry[][] = []
  const pick = (from: number, chosen: ChainEntry[]): void => {
    if (chosen.length === k) {
      out.push([...chosen, ...fixed])
      return
    }
    for (let i = from; i <= pool.length - (k - chosen.length); i++) pick(i + 1, [...chosen, pool[i]!])
  }
  pick(0, [])
  return out
}

/** C(m, k), or anything above `cap` once it exceeds it. */
export function combinations(m: number, k: number, cap: number): number {
  if (k < 0 || k > m) return 0
  let c = 1
  for (let i = 1; i <= Math.min(k, m - k); i++) {
    c = (c * (m - Math.min(k, m - k) + i)) / i
    if (c > cap) return cap + 1
  }
  return Math.round(c)
}

/** The gap inside the left row's insert, inside the right row's, or across the boundary between them. */
export function knownRuns(n: number, left: number | null, right: number): Run[][] {
  const out: Run[][] = []
  if (left !== null) out.push([[n, left]])
  out.push([[n, right]])
  if (left !== null) for (let k = n - 1; k >= 1; k--) out.push([[k, left], [n - k, right]])
  return out
}

/**
 * One unknown insert at `t`: the whole gap, or the gap's end with the end of
 * the left row's insert before it, or its start with the start of the right
 * row's insert after it.
 */
function unknownRuns(n: number, left: number | null, right: number, t: number): Run[][] {
  const out: Run[][] = [[[n, t]]]
  for (let k = 1; k < n; k++) {
    if (left !== null) out.push([[k, left], [n - k, t]])
    out.push([[n - k, t], [k, right]])
  }
  return out
}

/**
 * Microseconds strictly between `lo` and `hi`, from the hint upwards, then
 * from below the hint downwards.
 */
export function* searchOrder(lo: number, hi: number, hintMicros: number | null): Generator<number> {
  if (hi - lo < 2) return
  const start = Math.min(hi - 1, Math.max(lo + 1, hintMicros ?? lo + 1))
  for (let t = start; t < hi; t++) yield t
  for (let t = start - 1; t > lo; t--) yield t
}
