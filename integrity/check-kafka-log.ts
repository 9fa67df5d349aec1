import type { KafkaMessage } from 'kafkajs'
import { assertAccessEvent } from '../consumers/validate-event.js'
import { deadLetterTopicOf } from '../consumers/topics.js'
import { createCodec, type Codec } from '../schemas/codec.js'
import { REPLAY_HEADER } from '../schemas/message-headers.js'
import { loadSchemaRegistry } from '../schemas/registry.js'
import type { ChainOffsets } from './chain-offsets.js'
import { readDeadLetterSources, readMessages, readPartitionStates, type KafkaLog, type MessageRange, type PartitionState } from './kafka-log-facts.js'
import type { Finding } from './report.js'

export interface KafkaLogBounds {
  /** Per Kafka read (partitions, dead letters, gap messages). @default 30000 */
  timeoutMs: number
  /** Most messages read from the access topic to explain gaps. @default 100000 */
  maxGapMessages: number
  /** Most dead letters read. @default 1000000 */
  maxDeadLetters: number
}

export const KAFKA_LOG_BOUNDS: Readonly<KafkaLogBounds> = Object.freeze({ timeoutMs: 30_000, maxGapMessages: 100_000, maxDeadLetters: 1_000_000 })

/** Asks the store which of these event ids each chain holds (the verifier's second round). */
export type FindEvents = (find: Record<string, string[]>) => Promise<Record<string, string[]>>

/** Offsets a chain skipped: between two rows, or between its head and the group's committed offset. */
interface Gap {
  chain_id: string
  partition: number
  from: bigint
  to: bigint
  kind: 'offset_gap' | 'head_mismatch'
  /** Where the finding goes: the row after the gap, or head seq + 1. */
  seq: number
  where: string
}

const count = (g: { from: bigint; to: bigint }) => g.to - g.from + 1n

/**
 * Holds every chain against the Kafka partition it claims to be: the chain
 * id must name an existing partition of the access topic, offsets must rise
 * with seq and stay below the partition's end, and every offset a chain
 * skipped, between rows or between its head and the group's committed
 * offset, must be explained by the Kafka log itself: a dead letter naming
 * that source offset, or a replayed message (REPLAY_HEADER) whose event the
 * chain already stores (the writer drops those without a dead letter).
 *
 * Everything read from Kafka is attacker-controlled too: every read is
 * bounded in time and in messages, and what could not be read is said.
 */
export async function checkKafkaLog(
  log: KafkaLog,
  offsets: readonly ChainOffsets[],
  findEvents: FindEvents,
  bounds: KafkaLogBounds = KAFKA_LOG_BOUNDS,
): Promise<{ findings: Finding[]; warnings: string[] }> {
  const findings: Finding[] = []
  const warnings: string[] = []
  const states = await readPartitionStates(log, bounds.timeoutMs)
  if (states === null) {
    for (const c of offsets) findings.push({ chain_id: c.chain_id, seq: c.first_seq, kind: 'unknown_chain', detail: `the access topic ${log.topic} does not exist: no partition of it can be this chain` })
    return { findings, warnings }
  }
  const byChain = new Map(states.map((s) => [`${log.topic}/${s.partition}`, s]))
  const gaps: Gap[] = []
  const seen = new Set<string>()
  for (const c of offsets) {
    const state = byChain.get(c.chain_id)
    if (!state) {
      findings.push({
        chain_id: c.chain_id,
        seq: c.first_seq,
        kind: 'unknown_chain',
        detail: `not a partition of ${log.topic} (partitions 0..${states.length - 1}): no writer of this topic stored these rows`,
      })
      continue
    }
    seen.add(c.chain_id)
    if (c.truncated) warnings.push(`chain ${c.chain_id}: more offset breaks than listed; only the first ${c.breaks.length} were held against Kafka`)
    const invalid = new Set<number>()
    for (const b of c.breaks) {
      const offset = BigInt(b.offset)
      const prev = BigInt(b.prev_offset)
      if (offset <= prev) {
        invalid.add(b.seq)
        findings.push({ chain_id: c.chain_id, seq: b.seq, kind: 'offset_invalid', detail: `kafka_offset ${offset} does not rise above ${prev} of seq ${b.prev_seq}` })
      } else if (offset >= state.high) {
        invalid.add(b.seq)
        findings.push({ chain_id: c.chain_id, seq: b.seq, kind: 'offset_invalid', detail: `kafka_offset ${offset} lies beyond the end of partition ${state.partition} (high watermark ${state.high})` })
      } else if (prev < state.high) {
        gaps.push({ chain_id: c.chain_id, partition: state.partition, from: prev + 1n, to: offset - 1n, kind: 'offset_gap', seq: b.seq, where: `between seq ${b.prev_seq} (offset ${prev}) and seq ${b.seq} (offset ${offset})` })
      }
    }
    const head = BigInt(c.head_offset)
    if (head >= state.high) {
      if (!invalid.has(c.head_seq)) {
        findings.push({ chain_id: c.chain_id, seq: c.head_seq, kind: 'offset_invalid', detail: `the head's kafka_offset ${head} lies beyond the end of partition ${state.partition} (high watermark ${state.high})` })
      }
    } else if (state.committed !== null && state.committed > state.high) {
      // Only an admin sets a group's offset past the end: the writer would skip every message up to it.
      findings.push({
        chain_id: c.chain_id,
        seq: c.head_seq + 1,
        kind: 'head_mismatch',
        detail: `the group ${log.groupId} committed offset ${state.committed}, beyond the end of partition ${state.partition} (high watermark ${state.high}): it was set by hand`,
      })
    } else if (state.committed === null) {
      warnings.push(`chain ${c.chain_id}: the group ${log.groupId} has no committed offset for partition ${state.partition}; its head was not held against it`)
    } else if (head + 1n < state.committed) {
      // A head at or after the committed offset is a crash between insert
      // and commit: the writer skips those messages when it restarts.
      gaps.push({
        chain_id: c.chain_id,
        partition: state.partition,
        from: head + 1n,
        to: state.committed - 1n,
        kind: 'head_mismatch',
        seq: c.head_seq + 1,
        where: `after the head (seq ${c.head_seq}, offset ${head}) up to the group's committed offset ${state.committed}`,
      })
    }
  }
  for (const state of states) {
    const chainId = `${log.topic}/${state.partition}`
    if (seen.has(chainId) || state.committed === null || state.committed === 0n) continue
    if (state.committed > state.high) {
      findings.push({ chain_id: chainId, seq: 1, kind: 'head_mismatch', detail: `the chain holds no row, and the group ${log.groupId} committed offset ${state.committed}, beyond the end of partition ${state.partition} (high watermark ${state.high})` })
      continue
    }
    gaps.push({ chain_id: chainId, partition: state.partition, from: 0n, to: state.committed - 1n, kind: 'head_mismatch', seq: 1, where: `the chain holds no row, but the group committed offset ${state.committed}` })
  }
  if (gaps.length > 0) await judgeGaps(log, states, gaps, findEvents, bounds, findings, warnings)
  return { findings, warnings }
}

/** Each gap offset: dead-lettered, a replayed duplicate (pending the store's answer), or unexplained. */
async function judgeGaps(
  log: KafkaLog,
  states: readonly PartitionState[],
  gaps: readonly Gap[],
  findEvents: FindEvents,
  bounds: KafkaLogBounds,
  findings: Finding[],
  warnings: string[],
): Promise<void> {
  const deadLetterTopic = deadLetterTopicOf({ topic: log.topic })
  const dead = await readDeadLetterSources(log.kafka, deadLetterTopic, log.topic, { timeoutMs: bounds.timeoutMs, maxMessages: bounds.maxDeadLetters })
  if (dead.missing) warnings.push(`the dead-letter topic ${deadLetterTopic} does not exist: no offset gap can be explained by a dead letter`)
  if (!dead.complete) warnings.push(`the dead-letter topic ${deadLetterTopic} holds more than ${bounds.maxDeadLetters} messages; gaps were held against the first ${bounds.maxDeadLetters} only`)
  const stateOf = new Map(states.map((s) => [s.partition, s]))

  /** Per gap, the offsets no dead letter names, when there are few enough to read. */
  const toRead: { gap: Gap; offsets: bigint[] }[] = []
  let budget = BigInt(bounds.maxGapMessages)
  for (const gap of gaps) {
    const size = count(gap)
    if (size > budget) {
      findings.push(finding(gap, `${size} offsets skipped ${gap.where}: too many to read (over ${budget} left of the verifier's bound), so none is explained`))
      continue
    }
    const offsets: bigint[] = []
    for (let o = gap.from; o <= gap.to; o++) if (!dead.sources.has(`${log.topic}/${gap.partition}@${o}`)) offsets.push(o)
    budget -= BigInt(offsets.length)
    if (offsets.length > 0) toRead.push({ gap, offsets })
  }
  if (toRead.length === 0) return

  const low = (p: number) => stateOf.get(p)?.low ?? 0n
  const ranges: MessageRange[] = []
  for (const { gap, offsets } of toRead) {
    const readable = offsets.filter((o) => o >= low(gap.partition))
    for (const run of runsOf(readable)) ranges.push({ partition: gap.partition, ...run })
  }
  const messages = new Map<string, KafkaMessage>()
  const complete = await readMessages(log.kafka, log.topic, ranges, { timeoutMs: bounds.timeoutMs, maxMessages: bounds.maxGapMessages }, (partition, message) => {
    messages.set(`${partition}@${message.offset}`, message)
  })
  if (!complete) warnings.push(`more gap messages than ${bounds.maxGapMessages}: the rest were not read`)

  const codec = createCodec(loadSchemaRegistry())
  const replayed = new Map<string, string>()
  const find: Record<string, string[]> = {}
  for (const { gap, offsets } of toRead) {
    for (const o of offsets) {
      const id = replayedEventId(codec, messages.get(`${gap.partition}@${o}`))
      if (id === null) continue
      replayed.set(`${gap.partition}@${o}`, id)
      ;(find[gap.chain_id] ??= []).push(id)
    }
  }
  const found = Object.keys(find).length > 0 ? await findEvents(find) : {}
  for (const { gap, offsets } of toRead) {
    const stored = new Set(found[gap.chain_id] ?? [])
    const unexplained = offsets.filter((o) => {
      const id = replayed.get(`${gap.partition}@${o}`)
      return id === undefined || !stored.has(id)
    })
    if (unexplained.length === 0) continue
    const gone = unexplained.filter((o) => o < low(gap.partition))
    if (gone.length === unexplained.length) {
      warnings.push(`chain ${gap.chain_id}: ${gone.length} offsets skipped ${gap.where} are no longer in Kafka (log start ${low(gap.partition)}) and no dead letter names them: they cannot be checked`)
      continue
    }
    const first = unexplained.find((o) => o >= low(gap.partition))!
    findings.push(
      finding(
        gap,
        `${count(gap)} offsets skipped ${gap.where}; ${unexplained.length} of them (first ${first}) are named by no dead letter and are no replayed duplicate of a stored event: ${gap.kind === 'head_mismatch' ? 'rows the writer stored and committed are gone' : 'their rows are gone'}`,
      ),
    )
  }
}

function finding(gap: Gap, detail: string): Finding {
  return { chain_id: gap.chain_id, seq: gap.seq, kind: gap.kind, detail }
}

/** The event id of a message the writer would have dropped as a replayed duplicate; null for any other message. */
function replayedEventId(codec: Codec, message: KafkaMessage | undefined): string | null {
  if (!message?.value || message.headers?.[REPLAY_HEADER] === undefined) return null
  try {
    const event = codec.decode(message.value).event
    assertAccessEvent(event)
    return event.event_id.toLowerCase()
  } catch {
    // It would have been dead-lettered, and no dead letter names it.
    return null
  }
}

/** Sorted offsets as contiguous runs. */
function runsOf(offsets: readonly bigint[]): { from: bigint; to: bigint }[] {
  const runs: { from: bigint; to: bigint }[] = []
  for (const o of offsets) {
    const last = runs[runs.length - 1]
    if (last && o === last.to + 1n) last.to = o
    else runs.push({ from: o, to: o })
  }
  return runs
}
