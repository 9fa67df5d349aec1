import type { SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { describeError, isReadtrailError } from '../common/errors.js'
import type { CheckpointAnalysis } from './check-checkpoints.js'
import { checkKafkaLog, KAFKA_LOG_BOUNDS, type KafkaLogBounds } from './check-kafka-log.js'
import { classifyWindow } from './classify-window.js'
import { VerificationError } from './errors.js'
import type { Facts, FactsRequest } from './facts.js'
import type { KafkaLog } from './kafka-log-facts.js'
import { indexDeadLettered, judgeProducerBreaks, type DeadLetteredEvent } from './producer-gaps.js'
import type { AcknowledgedFinding, ChainSummary, CheckpointSummary, CrossCheckLine, Finding, FindingKind, InFlightGap, RefusedProducer, SideChainSummary, VerificationReport } from './report.js'
import { acknowledge, applyAcknowledgements, findingFor, type Acknowledgement, type AcknowledgeTarget, type VerifyState } from './verify-state.js'
import { ReadtrailError } from '../common/errors.js'

export interface VerifyOptions {
  /** `in-db` re-hashes in ClickHouse; `independent` streams rows out and re-hashes them here. @default 'in-db' */
  mode?: 'in-db' | 'independent'
  /** Check the query views against access_log (in-db full runs). @default true */
  views?: boolean
  /** Hashing worker threads in independent mode. @default 2 */
  workers?: number
  /** Most findings listed. @default 1000 */
  maxFindings?: number
  /** A producer hole younger than this is reported as in flight. @default 120000 */
  producerGraceMs?: number
  /**
   * The checkpoints, already read from their file and Kafka copies and
   * checked (check-checkpoints.ts). null: rows are checked as a chain only,
   * and the report says so: tail truncation and consistent rewrites go unseen.
   */
  checkpoints?: { analysis: CheckpointAnalysis; sources: Omit<CheckpointSummary, 'total' | 'valid'> } | null
  /** Incremental: the state an earlier run left; each chain starts at its anchor checkpoint. */
  since?: VerifyState | null
  /**
   * The access topic and the chain writer's consumer group. Given, every
   * chain must be `<topic>/<existing partition>`, its offsets must rise and
   * stay below the partition's end, and every offset it skipped (between
   * rows, and from its head to the group's committed offset) must be a dead
   * letter signed by the checkpoint key (`checkpoints.sources.key_id`) or a
   * replayed duplicate. null: the report warns that chain ids
   * and offsets were NOT checked.
   * @default null
   */
  kafkaLog?: KafkaLog | null
  /** Bounds on what is read from Kafka (it is attacker-controlled too). @default KAFKA_LOG_BOUNDS */
  kafkaBounds?: Partial<KafkaLogBounds>
  /**
   * Per chain, the highest valid checkpoint (index and seq) an earlier run
   * recorded (its report's checkpoint_high). A chain whose valid
   * checkpoints now end lower is checkpoint_regressed: both copies were
   * wound back. null: nothing to compare with.
   * @default null
   */
  checkpointHigh?: Record<string, { index: number; seq: number }> | null
  /**
   * Holes an operator acknowledged (from the signed verify state): a finding
   * one covers exactly is listed in report.acknowledged, not in findings.
   * @default []
   */
  acknowledgements?: readonly Acknowledgement[]
  /**
   * Holes to acknowledge in this run (`verify --acknowledge`): each must
   * name a producer_gap, dead_lettered or offset_gap finding this run makes,
   * else USAGE; the acknowledgement records that finding's exact hole.
   */
  acknowledge?: readonly { target: AcknowledgeTarget; by: string; reason: string }[]
  now?: () => number
}

export interface VerifyOutcome {
  report: VerificationReport
  /** Per producer, how far its sequence is complete (for the next incremental run). */
  producerThrough: Record<string, number>
  /** The acknowledgements to record: the earlier ones and this run's new ones. */
  acknowledgements: Acknowledgement[]
}

/** Gets the facts from wherever the store is: this process, or the process that owns it. */
export type CollectFacts = (request: FactsRequest) => Promise<Facts>

type Optional = 'checkpoints' | 'since' | 'kafkaLog' | 'kafkaBounds' | 'checkpointHigh' | 'acknowledgements' | 'acknowledge'

interface Context {
  options: Required<Omit<VerifyOptions, Optional>> & Pick<VerifyOptions, Optional>
  database: string
  trusted: Map<string, SignedCheckpoint[]>
  request?: FactsRequest
  facts?: Facts
  findings: Finding[]
  chains: ChainSummary[]
  /** Per chain, the highest valid checkpoint (report.checkpoint_high). */
  high: Record<string, { index: number; seq: number }>
  inFlight: InFlightGap[]
  /** Producer seqs the writer refused, from the signed dead letters (check-kafka-log). */
  deadLettered: DeadLetteredEvent[]
  refused: RefusedProducer[]
  acknowledgements: Acknowledgement[]
  acknowledged: AcknowledgedFinding[]
  warnings: string[]
  truncated: boolean
  /** Signed checkpoints of the side chains (db_audit_log, alert_log), kept apart from access_log's. */
  sideTrusted: Map<string, SignedCheckpoint[]>
  sideChains: SideChainSummary[]
  crossCheck: CrossCheckLine[] | null
}

/**
 * Chain ids of the side streams: `<topic>.db-audit/<partition>` and
 * `<topic>.alerts/<partition>`. A checkpoint naming one is judged against
 * its side table, not access_log (the id comes from a signed checkpoint).
 */
const SIDE_CHAIN_ID = /\.(db-audit|alerts)\/\d+$/

interface Step {
  name: string
  run(ctx: Context, collect: CollectFacts): Promise<void> | void
}

const RANK: Record<FindingKind, number> = {
  checkpoint_unreadable: 0,
  checkpoint_invalid: 1,
  checkpoint_chain_broken: 2,
  checkpoint_conflict: 3,
  checkpoint_log_rolled_back: 4,
  deleted_rows: 5,
  duplicate_row: 6,
  inserted_row: 7,
  forked: 8,
  reordered: 9,
  hash_mismatch: 10,
  rewritten_row: 11,
  broken_link: 12,
  checkpoint_mismatch: 13,
  truncated: 14,
  view_mismatch: 15,
  producer_gap: 16,
  producer_duplicate: 17,
  unknown_chain: 18,
  checkpoint_copy_missing: 19,
  checkpoint_regressed: 20,
  checkpoint_topic_weakened: 21,
  offset_invalid: 22,
  message_incomplete: 22,
  offset_gap: 23,
  dead_letter_forged: 24,
  head_mismatch: 25,
  query_table_altered: 26,
  dead_lettered: 27,
}

/**
 * The verifier, as an ordered list of named steps. Everything it reads, rows
 * and checkpoints alike, is attacker-controlled: findings report what the
 * evidence shows and nothing is repaired. A step that cannot run fails the
 * whole verification with VERIFY_FAILED naming the step; it never passes by
 * default.
 */
const STEPS: readonly Step[] = [
  {
    name: 'plan',
    run(ctx) {
      const fromSeq: Record<string, number> = {}
      if (ctx.options.since) {
        for (const [chainId, state] of Object.entries(ctx.options.since.chains)) {
          const anchor = state.anchor
          if (!anchor) continue
          const signed = ctx.trusted.get(chainId)?.find((c) => c.index === anchor.index)
          if (signed && signed.seq === anchor.seq && signed.hash === anchor.hash) fromSeq[chainId] = anchor.seq
          else ctx.warnings.push(`chain ${chainId}: its anchor checkpoint #${anchor.index} is no longer among the valid checkpoints; checking the whole chain`)
        }
      }
      const checkpointSeqs: Record<string, number[]> = {}
      for (const [chainId, list] of ctx.trusted) {
        checkpointSeqs[chainId] = [...new Set(list.filter((c) => c.seq >= (fromSeq[chainId] ?? 0)).map((c) => c.seq))]
      }
      ctx.request = {
        mode: ctx.options.mode,
        views: ctx.options.views,
        workers: ctx.options.workers,
        maxSuspects: ctx.options.maxFindings,
        checkpoint_seqs: checkpointSeqs,
        from_seq: ctx.options.since ? fromSeq : null,
        producer_through: ctx.options.since ? ctx.options.since.producers : null,
        offsets: Boolean(ctx.options.kafkaLog),
        find_events: null,
        side_checkpoint_seqs: Object.fromEntries([...ctx.sideTrusted].map(([chainId, list]) => [chainId, [...new Set(list.map((c) => c.seq))]])),
      }
    },
  },
  {
    name: 'collect-facts',
    async run(ctx, collect) {
      ctx.facts = await collect(ctx.request!)
      ctx.warnings.push(...ctx.facts.warnings)
      if (ctx.facts.suspects_truncated) ctx.truncated = true
      ctx.chains = ctx.facts.chains.map((c) => ({ ...c, unsigned_from_seq: c.first_seq, unsigned_rows: c.rows }))
    },
  },
  {
    name: 'classify-rows',
    run(ctx) {
      for (const window of ctx.facts!.windows) ctx.findings.push(...classifyWindow(window))
      ctx.findings.push(...ctx.facts!.view_findings)
    },
  },
  {
    name: 'check-side-chains',
    run(ctx) {
      const side = ctx.facts!.side
      if (!side) {
        ctx.warnings.push('side chains (db_audit_log, alert_log) NOT checked: the store answered without them')
        return
      }
      const seen = new Set<string>()
      for (const c of side.chains) {
        seen.add(c.chain_id)
        const summary: SideChainSummary = { table: c.table, chain_id: c.chain_id, rows: c.rows, first_seq: c.first_seq, last_seq: c.last_seq, signed_through: null }
        ctx.sideChains.push(summary)
        for (const seq of c.bad_hash) ctx.findings.push({ chain_id: c.chain_id, seq, kind: 'hash_mismatch', detail: `${c.table}: the stored hash is not the hash of the row's columns: the row was edited` })
        for (const seq of c.bad_link) ctx.findings.push({ chain_id: c.chain_id, seq, kind: 'broken_link', detail: `${c.table}: prev_hash is not the hash of the row before: a row was removed, inserted or reordered here` })
        if (c.distinct_seqs !== c.rows) ctx.findings.push({ chain_id: c.chain_id, seq: c.first_seq, kind: 'duplicate_row', detail: `${c.table}: ${c.rows - c.distinct_seqs} seq(s) held by more than one row` })
        if (c.first_seq !== 1 || c.last_seq - c.first_seq + 1 !== c.distinct_seqs) {
          ctx.findings.push({ chain_id: c.chain_id, seq: c.first_seq, kind: 'deleted_rows', detail: `${c.table}: seq ${c.first_seq}..${c.last_seq} holds ${c.distinct_seqs} distinct seqs: rows were deleted` })
        }
        for (const p of c.producers) {
          const what = p.column
          if (p.rows !== p.distinct) {
            ctx.findings.push({ chain_id: c.chain_id, seq: p.at_seq, kind: 'producer_duplicate', detail: `${c.table}: ${p.rows - p.distinct} ${what}(s) of ${p.producer_id} stored more than once: a replayed batch`, producer: { producer_id: p.producer_id, from_seq: p.first, to_seq: p.last } })
          }
          if (p.first !== 1 || p.last - p.first + 1 !== p.distinct) {
            ctx.findings.push({ chain_id: c.chain_id, seq: p.at_seq, kind: 'producer_gap', detail: `${c.table}: ${p.producer_id}'s ${what} ${p.first}..${p.last} holds ${p.distinct} distinct values (from 1, ${p.last - p.distinct} missing): entries were lost or refused`, producer: { producer_id: p.producer_id, from_seq: 1, to_seq: p.last } })
          }
        }
        const list = [...(ctx.sideTrusted.get(c.chain_id) ?? [])].sort((a, b) => a.seq - b.seq || a.index - b.index)
        for (const cp of list) {
          const hashes = c.hash_at[String(cp.seq)]
          if (!hashes) continue
          if (hashes.includes(cp.hash)) summary.signed_through = Math.max(summary.signed_through ?? 0, cp.seq)
          else ctx.findings.push({ chain_id: c.chain_id, seq: cp.seq, kind: 'checkpoint_mismatch', detail: `${c.table}: checkpoint #${cp.index} (signed ${cp.signed_at}) vouches for another row at this seq: rows were rewritten` })
        }
        const newest = list.at(-1)
        if (newest && newest.seq > c.last_seq) {
          ctx.findings.push({ chain_id: c.chain_id, seq: c.last_seq + 1, kind: 'truncated', detail: `${c.table}: the chain ends at seq ${c.last_seq}, but checkpoint #${newest.index} vouches for seq ${newest.seq}: rows were removed from its end` })
        }
      }
      for (const [chainId, list] of ctx.sideTrusted) {
        if (seen.has(chainId) || list.length === 0) continue
        const newest = list.reduce((a, b) => (b.seq > a.seq ? b : a))
        ctx.findings.push({ chain_id: chainId, seq: 1, kind: 'truncated', detail: `the side table holds no row of this chain, but checkpoint #${newest.index} vouches for seq ${newest.seq}: its rows were removed` })
      }
      ctx.crossCheck = side.completeness === null ? null : side.completeness.map((c) => ({ db_name: c.db_name, entries: c.entries, unmatched: c.unmatched }))
    },
  },
  {
    name: 'compare-with-checkpoints',
    run(ctx) {
      const facts = ctx.facts!
      const rowsAt = new Map<string, string[]>()
      for (const r of facts.checkpoint_rows) {
        const key = `${r.chain_id}\u0000${r.seq}`
        rowsAt.set(key, [...(rowsAt.get(key) ?? []), r.hash])
      }
      for (const [chainId, list] of ctx.trusted) {
        const from = ctx.request!.from_seq?.[chainId] ?? 0
        const scan = ctx.chains.find((c) => c.chain_id === chainId)
        const bySeq = [...list].sort((a, b) => a.seq - b.seq || a.index - b.index)
        const newest = bySeq[bySeq.length - 1]
        if (!newest || newest.seq < from) continue
        const lastStored = scan ? scan.last_seq : from > 0 ? from - 1 : 0
        if (newest.seq > lastStored) {
          const ends = scan || from === 0 ? `the chain ends at seq ${lastStored}` : `the chain holds no row from its anchor seq ${from} on`
          ctx.findings.push({
            chain_id: chainId,
            seq: lastStored + 1,
            kind: 'truncated',
            detail: `${ends}, but checkpoint #${newest.index} (signed ${newest.signed_at}) vouches for seq ${newest.seq}: rows were removed from its end`,
          })
        }
        let lastMatch: SignedCheckpoint | undefined
        let mismatch: SignedCheckpoint | undefined
        let laterMismatches = 0
        for (const cp of bySeq) {
          if (cp.seq < from) continue
          const hashes = rowsAt.get(`${chainId}\u0000${cp.seq}`)
          if (!hashes) continue // a missing row is reported as deleted or truncated
          if (hashes.includes(cp.hash)) {
            if (!mismatch) lastMatch = cp
          } else if (!mismatch) mismatch = cp
          else laterMismatches += 1
        }
        if (mismatch) {
          const since = lastMatch ? `after seq ${lastMatch.seq} (checkpoint #${lastMatch.index}, which still matches)` : 'from the start of the checked range'
          ctx.findings.push({
            chain_id: chainId,
            seq: mismatch.seq,
            kind: 'checkpoint_mismatch',
            detail: `checkpoint #${mismatch.index} (signed ${mismatch.signed_at}) vouches for hash ${mismatch.hash.slice(0, 16)}… at this seq; the stored row differs: rows ${since} up to here were rewritten${laterMismatches > 0 ? ` (${laterMismatches} later checkpoints differ too)` : ''}`,
          })
        }
        if (scan && lastMatch) scan.checkpoint = { index: lastMatch.index, seq: lastMatch.seq, hash: lastMatch.hash, signed_at: lastMatch.signed_at }
      }
    },
  },
  {
    name: 'check-kafka-log',
    async run(ctx, collect) {
      const kafkaLog = ctx.options.kafkaLog
      if (!kafkaLog) return
      const offsets = ctx.facts!.chain_offsets
      if (!offsets) throw new VerificationError('VERIFY_FAILED', 'the store answered without the chain offsets it was asked for')
      // The second round: replayed messages in a gap are explained only by
      // their event being stored already, which only the store can say.
      const findEvents = async (find: Record<string, string[]>) => (await collect({ ...ctx.request!, find_events: find })).found_events ?? {}
      // Dead letters count only when signed by the key the checkpoints are checked with.
      const keyId = ctx.options.checkpoints?.sources.key_id ?? null
      const trust = keyId ? { keyId, database: ctx.database } : null
      const checked = await checkKafkaLog(kafkaLog, offsets, findEvents, trust, { ...KAFKA_LOG_BOUNDS, ...ctx.options.kafkaBounds })
      ctx.findings.push(...checked.findings)
      ctx.warnings.push(...checked.warnings)
      ctx.deadLettered = checked.deadLettered
      ctx.refused = checked.refused
    },
  },
  {
    name: 'check-checkpoint-copies',
    run(ctx) {
      const cp = ctx.options.checkpoints
      // Both copies hold nothing for this database while the store holds
      // rows: the writer signs every interval, so the checkpoints were removed.
      if (!cp || cp.analysis.total > 0) return
      const read = [cp.sources.file, cp.sources.topic].filter((s) => s !== null).join(' and ')
      for (const c of ctx.chains) {
        ctx.findings.push({ chain_id: c.chain_id, seq: c.first_seq, kind: 'checkpoint_copy_missing', detail: `the store holds rows ${c.first_seq}..${c.last_seq}, but ${read} hold no checkpoint of this database` })
      }
    },
  },
  {
    name: 'check-checkpoint-high',
    run(ctx) {
      for (const [chainId, list] of ctx.trusted) {
        const top = list.reduce<SignedCheckpoint | undefined>((best, c) => (!best || c.index > best.index ? c : best), undefined)
        if (top) ctx.high[chainId] = { index: top.index, seq: top.seq }
      }
      for (const [chainId, recorded] of Object.entries(ctx.options.checkpointHigh ?? {})) {
        const now = ctx.high[chainId]
        if (now && now.index >= recorded.index && now.seq >= recorded.seq) continue
        const nowText = now ? `now #${now.index} (seq ${now.seq})` : 'now none'
        ctx.findings.push({
          chain_id: chainId,
          seq: (now ? Math.min(now.seq, recorded.seq) : 0) + 1,
          kind: 'checkpoint_regressed',
          detail: `an earlier run recorded checkpoint #${recorded.index} (seq ${recorded.seq}) as the chain's highest valid checkpoint; ${nowText}: both copies were wound back`,
        })
      }
    },
  },
  {
    name: 'mark-unsigned',
    run(ctx) {
      for (const c of ctx.chains) {
        const signedThrough = c.checkpoint?.seq ?? 0
        c.unsigned_from_seq = c.last_seq > signedThrough ? Math.max(signedThrough + 1, c.first_seq) : null
        c.unsigned_rows = c.unsigned_from_seq === null ? 0 : c.last_seq - c.unsigned_from_seq + 1
      }
    },
  },
  {
    name: 'check-producers',
    run(ctx) {
      const judged = judgeProducerBreaks(ctx.facts!.producer_breaks, { nowMs: ctx.options.now(), graceMs: ctx.options.producerGraceMs, deadLettered: indexDeadLettered(ctx.deadLettered) })
      ctx.findings.push(...judged.findings)
      ctx.inFlight = judged.inFlight
      if (ctx.facts!.producer_breaks_truncated) ctx.truncated = true
    },
  },
  {
    name: 'apply-acknowledgements',
    run(ctx) {
      const at = new Date(ctx.options.now()).toISOString()
      for (const wanted of ctx.options.acknowledge ?? []) {
        const f = findingFor(wanted.target, ctx.findings)
        if (!f) {
          const what = 'producer_id' in wanted.target ? `no producer hole of ${wanted.target.producer_id} holds seq ${wanted.target.seq}` : `no offset_gap is reported at ${wanted.target.chain_id} seq ${wanted.target.seq}`
          throw new ReadtrailError('USAGE', `--acknowledge: this run finds nothing to acknowledge there (${what}); only a producer_gap, dead_lettered or offset_gap verify reports can be acknowledged`)
        }
        ctx.acknowledgements.push(acknowledge(f, wanted, at))
      }
      const split = applyAcknowledgements(ctx.findings, ctx.acknowledgements)
      ctx.findings = split.open
      ctx.acknowledged = split.acknowledged
    },
  },
  {
    name: 'order-findings',
    run(ctx) {
      ctx.findings.sort((a, b) => (a.chain_id < b.chain_id ? -1 : a.chain_id > b.chain_id ? 1 : a.seq - b.seq || RANK[a.kind] - RANK[b.kind]))
      ctx.truncated ||= ctx.findings.length > ctx.options.maxFindings
      ctx.findings = ctx.findings.slice(0, ctx.options.maxFindings)
    },
  },
]

/** Runs every step and returns the report; `collect` decides where the store-side half runs. */
export async function verifyLog(collect: CollectFacts, database: string, options: VerifyOptions = {}): Promise<VerifyOutcome> {
  const started = new Date()
  const t0 = performance.now()
  const mode = options.mode ?? 'in-db'
  const ctx: Context = {
    options: {
      mode,
      views: mode === 'in-db' && (options.views ?? true),
      workers: options.workers ?? 2,
      maxFindings: options.maxFindings ?? 1000,
      producerGraceMs: options.producerGraceMs ?? 120_000,
      checkpoints: options.checkpoints,
      since: options.since,
      kafkaLog: options.kafkaLog ?? null,
      kafkaBounds: options.kafkaBounds,
      checkpointHigh: options.checkpointHigh ?? null,
      acknowledgements: options.acknowledgements,
      acknowledge: options.acknowledge,
      now: options.now ?? Date.now,
    },
    database,
    trusted: new Map([...(options.checkpoints?.analysis.trusted ?? new Map<string, SignedCheckpoint[]>())].filter(([chainId]) => !SIDE_CHAIN_ID.test(chainId))),
    sideTrusted: new Map([...(options.checkpoints?.analysis.trusted ?? new Map<string, SignedCheckpoint[]>())].filter(([chainId]) => SIDE_CHAIN_ID.test(chainId))),
    sideChains: [],
    crossCheck: null,
    findings: [...(options.checkpoints?.analysis.findings ?? [])],
    chains: [],
    high: {},
    inFlight: [],
    deadLettered: [],
    refused: [],
    acknowledgements: [...(options.acknowledgements ?? [])],
    acknowledged: [],
    warnings: [...(options.checkpoints?.analysis.warnings ?? [])],
    truncated: false,
  }
  if (!options.checkpoints) ctx.warnings.push('signed checkpoints NOT checked: a truncated tail or a consistently rewritten chain would pass')
  if (!options.kafkaLog) ctx.warnings.push('chain ids and Kafka offsets NOT checked against the topic: a forged chain, a forged offset or a deleted unsigned tail would pass')
  if (mode === 'independent' && options.views !== false) ctx.warnings.push('query views are checked by in-db runs only')
  for (const step of STEPS) {
    try {
      await step.run(ctx, collect)
    } catch (cause) {
      if (isReadtrailError(cause) && cause.code !== 'STORE_UNAVAILABLE') throw cause
      throw new VerificationError('VERIFY_FAILED', `verification step ${step.name} failed: ${describeError(cause)}`, {
        cause,
        details: { step: step.name },
      })
    }
  }
  const facts = ctx.facts!
  const cp = options.checkpoints
  const report: VerificationReport = {
    mode,
    incremental: Boolean(options.since),
    ok: ctx.findings.length === 0 && !ctx.truncated,
    database,
    rows_verified: facts.rows_verified,
    views_checked: facts.views_checked,
    chains: ctx.chains,
    checkpoints: {
      file: cp?.sources.file ?? null,
      topic: cp?.sources.topic ?? null,
      key_id: cp?.sources.key_id ?? null,
      total: cp?.analysis.total ?? 0,
      valid: cp?.analysis.valid ?? 0,
    },
    producers: { checked: facts.producers_checked, in_flight: ctx.inFlight },
    findings: ctx.findings,
    ...(ctx.acknowledged.length > 0 ? { acknowledged: ctx.acknowledged } : {}),
    findings_truncated: ctx.truncated,
    warnings: ctx.warnings,
    checkpoint_high: ctx.high,
    kafka_checked: Boolean(options.kafkaLog),
    ...(ctx.refused.length > 0 ? { refused_producers: ctx.refused } : {}),
    ...(ctx.sideChains.length > 0 ? { side_chains: ctx.sideChains } : {}),
    ...(ctx.crossCheck ? { cross_check: ctx.crossCheck } : {}),
    ...(facts.workers ? { workers: facts.workers } : {}),
    started_at: started.toISOString(),
    duration_ms: Math.round(performance.now() - t0),
  }
  return { report, producerThrough: facts.producer_through, acknowledgements: ctx.acknowledgements }
}
