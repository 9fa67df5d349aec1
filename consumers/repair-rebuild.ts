import { RowBinaryWriter } from '../store/row-binary.js'
import { linkEntries, rowRehasher, type ChainEntry, type ChainedBatch, type ChainHead, type RowRehash } from './chain.js'

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
  const count = (): void => {
    if (candidates >= limits.maxCandidates) throw new Exhausted()
    candidates += 1
  }
  // Every candidate takes all n entries, so it ends at the last one's offset.
  const isProof = (entries: readonly ChainEntry[], hash: Buffer): boolean => hash.equals(anchors.rightHash) && (anchors.rightOffset === null || entries[n - 1]!.offset === anchors.rightOffset)
  /** Hashes rows from..to-1 at ingestedAt onto the row hashing to `prev`. */
  const hashRows = (rehash: readonly RowRehash[], prev: Buffer, from: number, to: number, ingestedAt: number): Buffer => {
    for (let i = from; i < to; i++) prev = rehash[i]!(prev, ingestedAt)
    return prev
  }
  const hashOf = (rehash: readonly RowRehash[], runs: readonly Run[]): Buffer => {
    let prev = anchors.left.hash
    let at = 0
    for (const [size, ingestedAt] of runs) {
      prev = hashRows(rehash, prev, at, at + size, ingestedAt)
      at += size
    }
    return prev
  }
  // Only the proved candidate is linked into insert rows: encoding them for
  // every candidate cost more than hashing it.
  const found = (entries: ChainEntry[], runs: readonly Run[]): RebuildOutcome => {
    let head = anchors.left
    const rows: Buffer[] = []
    let at = 0
    for (const [size, ingestedAt] of runs) {
      const linked = linkEntries(head, entries.slice(at, at + size), ingestedAt, writer)
      rows.push(linked.rows)
      head = linked.head
      at += size
    }
    // The proof stands on the rows the writer's own linking gives, not on the search's shortcut.
    if (!isProof(entries, head.hash)) throw new Error(`repair search: a candidate proved by rowRehasher does not link to the same hash (seqs ${anchors.left.seq + 1}-${head.seq})`)
    return { proved: true, batch: { rows: Buffer.concat(rows), count: at, head }, entries, ingestedAt: runs.flatMap(([size, t]) => Array<number>(size).fill(t)), candidates }
  }
  const lo = anchors.leftIngestedAt ?? 0
  const left = anchors.leftIngestedAt
  const right = anchors.rightIngestedAt
  const rehashersOf = (entries: readonly ChainEntry[]): RowRehash[] => entries.map((e, i) => rowRehasher(anchors.left.chainId, anchors.left.seq + i + 1, e))
  try {
    for (const entries of choices) {
      const rehash = rehashersOf(entries)
      for (const runs of knownRuns(n, left, right)) {
        count()
        if (isProof(entries, hashOf(rehash, runs))) return found(entries, runs)
      }
    }
    // One unknown insert at t: the whole gap [[n, t]], then for each k the
    // end of the left row's insert before it [[k, left], [n-k, t]] and the
    // start of the right row's after it [[n-k, t], [k, right]]. Every row
    // hashes ingested_at and the row before, so each candidate's rows are
    // hashed again, except what candidates share: the rows at `left` before
    // an insert at t (the same for every t), and the first rows at t (the
    // same for every split of one t).
    for (const entries of choices) {
      const rehash = rehashersOf(entries)
      const atLeft: Buffer[] = [anchors.left.hash]
      if (left !== null) for (let k = 1; k < n; k++) atLeft.push(rehash[k - 1]!(atLeft[k - 1]!, left))
      const atT: Buffer[] = [anchors.left.hash]
      for (const t of searchOrder(lo, right, hintMicros)) {
        for (let k = 1; k <= n; k++) atT[k] = rehash[k - 1]!(atT[k - 1]!, t)
        count()
        if (isProof(entries, atT[n]!)) return found(entries, [[n, t]])
        for (let k = 1; k < n; k++) {
          if (left !== null) {
            count()
            if (isProof(entries, hashRows(rehash, atLeft[k]!, k, n, t))) return found(entries, [[k, left], [n - k, t]])
          }
          count()
          if (isProof(entries, hashRows(rehash, atT[n - k]!, n - k, n, right))) return found(entries, [[n - k, t], [k, right]])
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
 * the last event of the message at it.
 */
export function chooseEntries(events: readonly ChainEntry[], n: number, rightOffset: bigint | null, max: number): ChainEntry[][] | null {
  // A checkpoint is signed at its message's last event: the pick ends there.
  let last: number | null = null
  if (rightOffset !== null) {
    last = -1
    for (let i = events.length - 1; i >= 0 && last === -1; i--) if (events[i]!.offset === rightOffset) last = i
  }
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
 * Microseconds strictly between `lo` and `hi`, from the hint upwards, then
 * from below the hint downwards.
 */
export function* searchOrder(lo: number, hi: number, hintMicros: number | null): Generator<number> {
  if (hi - lo < 2) return
  const start = Math.min(hi - 1, Math.max(lo + 1, hintMicros ?? lo + 1))
  for (let t = start; t < hi; t++) yield t
  for (let t = start - 1; t > lo; t--) yield t
}
