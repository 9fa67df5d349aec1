import { z } from 'zod'
import type { ChainOffsets } from './chain-offsets.js'
import type { FactWindow } from './classify-window.js'
import type { Finding } from './report.js'
import type { ChainScan, CheckpointRow, ProducerBreak } from './row-facts.js'
import type { SideFacts } from './side-chain-facts.js'

/**
 * What verification asks of the process that holds the store. It travels
 * over the owner socket when another readtrail process owns the embedded
 * store, so it is plain JSON.
 */
export interface FactsRequest {
  mode: 'in-db' | 'independent'
  /** in-db: also prove the query views hold what access_log implies. */
  views: boolean
  /** independent: hashing worker threads. */
  workers: number
  /** Most suspects collected per chain. */
  maxSuspects: number
  /** Per chain, the seqs signed checkpoints vouch for. */
  checkpoint_seqs: Record<string, number[]>
  /**
   * Incremental runs: per chain, the seq of the anchor checkpoint. Rows from
   * there on are checked; the anchor row itself only against its checkpoint.
   * null: every row of every chain.
   */
  from_seq: Record<string, number> | null
  /** Incremental runs: per producer, the seq through which an earlier run saw it complete. */
  producer_through: Record<string, number> | null
  /** Also collect each chain's Kafka offset breaks (chain-offsets.ts), for a verifier that can hold them against Kafka. */
  offsets: boolean
  /**
   * Per chain, event ids to look up, and nothing else: the verifier's second
   * round, after Kafka showed replayed messages in an offset gap. null: a
   * normal collection.
   */
  find_events: Record<string, string[]> | null
  /**
   * Per side chain (db_audit_log, alert_log), the seqs signed checkpoints
   * vouch for; present: re-hash and re-link the side tables too, and count
   * database-side reads no hooked read matches.
   */
  side_checkpoint_seqs?: Record<string, number[]>
}

const seqNumber = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/** FactsRequest as it arrives over the owner socket, where it is validated again. */
export const FactsRequestSchema = z
  .object({
    mode: z.enum(['in-db', 'independent']),
    views: z.boolean(),
    workers: z.number().int().min(1).max(64),
    maxSuspects: z.number().int().min(1).max(1_000_000),
    checkpoint_seqs: z.record(z.string(), z.array(seqNumber)),
    from_seq: z.record(z.string(), seqNumber).nullable(),
    producer_through: z.record(z.string(), seqNumber).nullable(),
    offsets: z.boolean(),
    // Bounded: the ids come from Kafka messages, attacker-controlled.
    find_events: z.record(z.string(), z.array(z.string().max(64)).max(100_000)).nullable(),
    side_checkpoint_seqs: z.record(z.string(), z.array(seqNumber)).optional(),
  })
  .strict() satisfies z.ZodType<FactsRequest>

/** What the store-side half of verification found; judged by integrity/verify.ts. */
export interface Facts {
  chains: ChainScan[]
  /** Every row around each suspect, by chain. */
  windows: FactWindow[]
  suspects_truncated: boolean
  checkpoint_rows: CheckpointRow[]
  producer_breaks: ProducerBreak[]
  producer_breaks_truncated: boolean
  producers_checked: number
  /** Per producer, the highest seq up to which its sequence is complete. */
  producer_through: Record<string, number>
  view_findings: Finding[]
  views_checked: boolean
  rows_verified: number
  warnings: string[]
  workers?: number
  /** Per chain, where its Kafka offsets break (when the request asked for offsets). */
  chain_offsets?: ChainOffsets[]
  /** Per chain, which of the request's find_events are stored (only in answer to find_events). */
  found_events?: Record<string, string[]>
  /** The side chains and the database-side cross-check (only when the request asked). */
  side?: SideFacts
}

/** The parts both collectors gather, assembled into Facts (row count from the chains). */
export function assembleFacts(parts: {
  chains: ChainScan[]
  windows: FactWindow[]
  suspectsTruncated: boolean
  checkpointRows: CheckpointRow[]
  producers: { breaks: ProducerBreak[]; truncated: boolean; checked: number; through: Record<string, number> }
  viewFindings: Finding[]
  viewsChecked: boolean
  warnings: string[]
  workers?: number
  chainOffsets?: ChainOffsets[]
}): Facts {
  return {
    chains: parts.chains,
    windows: parts.windows,
    suspects_truncated: parts.suspectsTruncated,
    checkpoint_rows: parts.checkpointRows,
    producer_breaks: parts.producers.breaks,
    producer_breaks_truncated: parts.producers.truncated,
    producers_checked: parts.producers.checked,
    producer_through: parts.producers.through,
    view_findings: parts.viewFindings,
    views_checked: parts.viewsChecked,
    rows_verified: parts.chains.reduce((n, c) => n + c.rows, 0),
    warnings: parts.warnings,
    ...(parts.workers ? { workers: parts.workers } : {}),
    ...(parts.chainOffsets ? { chain_offsets: parts.chainOffsets } : {}),
  }
}

/** The answer to a find_events request: no rows checked, only the events found. */
export function foundEventsFacts(found: Record<string, string[]>): Facts {
  return { ...assembleFacts({ chains: [], windows: [], suspectsTruncated: false, checkpointRows: [], producers: { breaks: [], truncated: false, checked: 0, through: {} }, viewFindings: [], viewsChecked: false, warnings: [] }), found_events: found }
}

/** Merges suspect ranges of one chain into windows (sorted, overlapping or adjacent ranges joined). */
export function mergeRanges(ranges: { lo: number; hi: number }[]): { lo: number; hi: number }[] {
  const sorted = [...ranges].sort((a, b) => a.lo - b.lo)
  const merged: { lo: number; hi: number }[] = []
  for (const r of sorted) {
    const last = merged[merged.length - 1]
    if (last && r.lo <= last.hi + 1) last.hi = Math.max(last.hi, r.hi)
    else merged.push({ ...r })
  }
  return merged
}

/**
 * The rows a suspect's classification needs: two before its predecessor (an
 * inserted or swapped row shows two rows back) through two after it. Never
 * below `from` in incremental runs: rows before the anchor are not judged.
 */
export function suspectRange(seq: number, prevSeq: number, from: number): { lo: number; hi: number } {
  const lo = Math.max(0, Math.min(seq, prevSeq) - 2)
  return { lo: from > 0 ? Math.max(lo, from) : lo, hi: seq + 2 }
}
