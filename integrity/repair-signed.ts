import type { Kafka } from 'kafkajs'
import type { SignedCheckpoint } from '../checkpoints/checkpoint.js'
import type { Logger } from '../common/logger.js'
import type { ChainedBatch } from '../consumers/chain.js'
import { rebuildGap, type RebuildLimits, type RebuildOutcome } from '../consumers/repair-rebuild.js'
import { readPartitionSlice, type EventDecoder, type KafkaEvent, type MessageBounds } from '../consumers/repair-messages.js'
import { readChainBreaks, readHighestRow, readStoredEventIds } from '../store/repair-breaks.js'
import { deleteViewRows } from '../store/repair-derived.js'
import type { Store } from '../store/store.js'
import { planSignedRepair, type RepairStep } from './repair-plan.js'
import type { RepairItem } from './repair-report.js'

/** What every repair action works on. */
export interface RepairTarget {
  store: Store
  kafka: Kafka
  /** The access topic: chain `<topic>/<p>` is partition p. */
  topic: string
  decoder: EventDecoder
  /** `<topic>/<partition>@<offset>` of every message the writer dead-lettered. */
  deadLettered: ReadonlySet<string>
  logger: Logger
  dryRun: boolean
  limits: RebuildLimits
  bounds: MessageBounds
}

/** Most break rows read per chain; beyond it the store is too damaged for a row-level repair. */
const MAX_BREAKS = 10_000

/** The partition a chain id names, or null when it is not a chain of `topic`. */
export function partitionOf(chainId: string, topic: string): number | null {
  if (!chainId.startsWith(`${topic}/`)) return null
  const rest = chainId.slice(topic.length + 1)
  return /^(0|[1-9]\d{0,8})$/.test(rest) ? Number(rest) : null
}

/**
 * Restores the signed rows missing from a chain: every gap at or below its
 * newest signed checkpoint is rebuilt from Kafka and inserted only when the
 * rebuild hashes to what the trusted side commits to. Gaps are taken from
 * the checkpoint down, since each one's proof rests on the rows above it
 * chaining up to the checkpoint.
 */
export async function restoreSignedRows(t: RepairTarget, chainId: string, cp: SignedCheckpoint): Promise<RepairItem[]> {
  const partition = partitionOf(chainId, t.topic)
  if (partition === null) return []
  const anchor = { seq: cp.seq, hash: Buffer.from(cp.hash, 'hex'), offset: BigInt(cp.kafka_offset), signedAtMicros: Date.parse(cp.signed_at) * 1000 }
  const highest = await readHighestRow(t.store, chainId, cp.seq)
  const breaks = await readChainBreaks(t.store, chainId, cp.seq, MAX_BREAKS)
  const items: RepairItem[] = []
  let blocked: string | null = null
  for (const step of planSignedRepair(chainId, anchor, highest, breaks)) {
    if (step.kind === 'broken') {
      items.push({ action: 'restore', chain_id: chainId, from_seq: step.seq, to_seq: step.seq, outcome: 'unproved', code: 'REPAIR_CHAIN_BROKEN', detail: step.problem })
      blocked ??= `${step.problem}, above it`
      continue
    }
    const item: RepairItem = { action: 'restore', chain_id: chainId, from_seq: step.from, to_seq: step.to, outcome: 'unproved', code: 'REPAIR_CHAIN_BROKEN', detail: '' }
    items.push(item)
    if (blocked) {
      item.detail = `no signed anchor reaches these missing rows: ${blocked}`
      continue
    }
    const outcome = await rebuildStep(t, chainId, partition, step)
    if (!outcome.proved) {
      Object.assign(item, { code: outcome.code, detail: outcome.problem })
      blocked = `the missing rows at seqs ${step.from}..${step.to} were not proved`
      continue
    }
    const offsets = `Kafka offsets ${outcome.entries[0]!.offset}..${outcome.entries.at(-1)!.offset}`
    const inserts = new Set(outcome.ingestedAt).size
    item.code = null
    item.detail = `${step.to - step.from + 1} row(s) rebuilt from ${offsets} (${inserts} insert(s), ${outcome.candidates} candidate(s) tried) link up to the signed checkpoint #${cp.index}`
    if (t.dryRun) {
      item.outcome = 'provable'
      continue
    }
    await insertProvedRows(t.store, chainId, step.from, step.to, outcome.batch)
    item.outcome = 'restored'
    t.logger.error(
      { chain_id: chainId, from_seq: step.from, to_seq: step.to, checkpoint_index: cp.index, alert: 'READTRAIL_INTEGRITY_ALERT' },
      'signed rows missing from the store restored from Kafka (readtrail repair): they had been deleted',
    )
  }
  return items
}

type Gap = Extract<RepairStep, { kind: 'gap' }>

async function rebuildStep(t: RepairTarget, chainId: string, partition: number, step: Gap): Promise<RebuildOutcome> {
  const slice = await readPartitionSlice(t.kafka, t.topic, partition, { from: step.readFrom, to: step.readTo }, t.deadLettered, t.decoder, t.bounds)
  const kept = await dropReplayedDuplicates(t.store, chainId, slice.events)
  const hint = slice.events.reduce((m, e) => Math.max(m, e.timestampMs * 1000), 0) || null
  let outcome = rebuildGap(step.anchors, kept.map((e) => e.entry), hint, t.limits)
  // A replayed copy the writer dropped may have been the one it stored after all (its original arrived later).
  if (!outcome.proved && kept.length < slice.events.length) outcome = rebuildGap(step.anchors, slice.events.map((e) => e.entry), hint, t.limits)
  if (outcome.proved) return outcome
  const notes = [slice.unavailable, slice.skipped.length > 0 ? `${slice.skipped.length} message(s) skipped (${slice.skipped.slice(0, 3).map((s) => `offset ${s.offset}: ${s.why}`).join('; ')})` : null].filter(Boolean)
  return { ...outcome, problem: `${outcome.problem} (Kafka offsets ${step.readFrom}..${step.readTo}${notes.length > 0 ? `; ${notes.join('; ')}` : ''})` }
}

/**
 * As the chain writer does: a message replayed from a producer's outbox is
 * stored only if the chain does not hold its event id yet (or an earlier
 * message of the same stretch carried it).
 */
async function dropReplayedDuplicates(store: Store, chainId: string, events: readonly KafkaEvent[]): Promise<KafkaEvent[]> {
  const replayed = events.filter((e) => e.replayed).map((e) => e.entry.event.event_id)
  if (replayed.length === 0) return [...events]
  const seen = await readStoredEventIds(store, chainId, replayed)
  return events.filter((e) => {
    const id = e.entry.event.event_id
    if (seen.has(id)) return false
    seen.add(id)
    return true
  })
}

/**
 * Inserts proved rows the way the chain writer does (into access_log, so
 * the materialised view takes them), after clearing whatever the view
 * still holds at those seqs (a deletion from access_log alone leaves them
 * there). access_log's projections need nothing: the engine rebuilds them
 * with its parts.
 */
async function insertProvedRows(store: Store, chainId: string, from: number, to: number, batch: ChainedBatch): Promise<void> {
  await deleteViewRows(store, { chainId, from, to })
  await store.insertRowBinary('access_log', batch.rows, batch.count)
}
