import type { KafkaMessage } from 'kafkajs'
import { assertAccessEvent } from '../consumers/validate-event.js'
import { deadLetterTopicOf } from '../consumers/topics.js'
import { createMessageTrust, type MessageTrust } from '../consumers/message-trust.js'
import { REPLAY_HEADER } from '../schemas/message-headers.js'
import { isClaimAbout, type DeadLetterClaim } from '../consumers/dead-letter-signature.js'
import { breakKind, endsMessage, locateOffset, type ChainOffsets } from './chain-offsets.js'
import { readDeadLetters, readMessages, readPartitionStates, type KafkaLog, type MessageRange, type PartitionState } from './kafka-log-facts.js'
import type { DeadLetteredEvent } from './producer-gaps.js'
import type { Finding, RefusedProducer } from './report.js'

export interface KafkaLogBounds {
  /** Per Kafka read (partitions, dead letters, gap messages). @default 30000 */
  timeoutMs: number
  /** Most messages read from the access topic to explain gaps. @default 100000 */
  maxGapMessages: number
  /** Most dead letters read. @default 1000000 */
  maxDeadLetters: number
}

/** What holding the chains against Kafka found, and the refused events that account for producer holes. */
export interface KafkaLogCheck {
  findings: Finding[]
  warnings: string[]
  /**
   * Events the writer refused, by the producer and seq their signed dead
   * letters name (only letters that verified, name no stored offset, and
   * match the message Kafka holds at their source where it was compared).
   */
  deadLettered: DeadLetteredEvent[]
  /** Signed dead letters of messages no trusted producer key vouched for, per claimed producer and code. */
  refused: RefusedProducer[]
}

/** Codes the writer gives messages no trusted producer key vouched for. */
const UNAUTHENTICATED_CODES: ReadonlySet<string> = new Set(['MESSAGE_UNSIGNED', 'PRODUCER_KEY_UNKNOWN', 'SIGNATURE_INVALID', 'PRODUCER_NOT_AUTHORIZED'])

export const KAFKA_LOG_BOUNDS: Readonly<KafkaLogBounds> = Object.freeze({ timeoutMs: 30_000, maxGapMessages: 100_000, maxDeadLetters: 1_000_000 })

/**
 * What a dead letter must be signed with to explain anything: the checkpoint
 * key (by its id; the letter carries the public key) and this database.
 */
export interface DeadLetterTrust {
  keyId: string
  database: string
}

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
 * offset, must be explained by the Kafka log itself: a dead letter signed
 * by the checkpoint key for exactly the message at that offset, or a
 * replayed message (REPLAY_HEADER) whose event the chain already stores (the
 * writer drops those without a dead letter). Dead letters that do not verify
 * are findings of their own.
 *
 * Everything read from Kafka is attacker-controlled too: every read is
 * bounded in time and in messages, and what could not be read is said.
 */
export async function checkKafkaLog(
  log: KafkaLog,
  offsets: readonly ChainOffsets[],
  findEvents: FindEvents,
  trust: DeadLetterTrust | null,
  bounds: KafkaLogBounds = KAFKA_LOG_BOUNDS,
): Promise<KafkaLogCheck> {
  const findings: Finding[] = []
  const warnings: string[] = []
  const states = await readPartitionStates(log, bounds.timeoutMs)
  if (states === null) {
    for (const c of offsets) findings.push({ chain_id: c.chain_id, seq: c.first_seq, kind: 'unknown_chain', detail: `the access topic ${log.topic} does not exist: no partition of it can be this chain` })
    return { findings, warnings, deadLettered: [], refused: [] }
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
      const kind = breakKind(b)
      if (kind === 'offset_invalid') {
        invalid.add(b.seq)
        const where = (o: bigint, i: number, n: number) => (n > 1 ? `event ${i + 1} of ${n} at kafka_offset ${o}` : `kafka_offset ${o}`)
        findings.push({ chain_id: c.chain_id, seq: b.seq, kind: 'offset_invalid', detail: `${where(offset, b.index, b.events)} does not come after ${where(prev, b.prev_index, b.prev_events)} of seq ${b.prev_seq}: a row repeated or moved` })
        continue
      }
      if (offset >= state.high) {
        invalid.add(b.seq)
        findings.push({ chain_id: c.chain_id, seq: b.seq, kind: 'offset_invalid', detail: `kafka_offset ${offset} lies beyond the end of partition ${state.partition} (high watermark ${state.high})` })
        continue
      }
      if (kind === 'message_incomplete') {
        // The writer stores or refuses a message whole: rows missing inside one are rows deleted, whatever else lies between.
        findings.push({ chain_id: c.chain_id, seq: b.seq, kind: 'message_incomplete', detail: `seq ${b.prev_seq} holds event ${b.prev_index + 1} of ${b.prev_events} of the message at offset ${prev}, and seq ${b.seq} event ${b.index + 1} of ${b.events} of the message at offset ${offset}: events of a stored message have no row` })
      }
      if (offset > prev + 1n && prev < state.high) {
        gaps.push({ chain_id: c.chain_id, partition: state.partition, from: prev + 1n, to: offset - 1n, kind: 'offset_gap', seq: b.seq, where: `between seq ${b.prev_seq} (offset ${prev}) and seq ${b.seq} (offset ${offset})` })
      }
    }
    if (c.first_seq === 1 && c.first.index !== 0) {
      findings.push({ chain_id: c.chain_id, seq: 1, kind: 'message_incomplete', detail: `the chain's first row holds event ${c.first.index + 1} of ${c.first.events} of the message at offset ${c.first.offset}: the events before it have no row` })
    }
    const head = BigInt(c.head_offset)
    if (!endsMessage(c.head) && state.committed !== null && state.committed > head) {
      // The writer commits a message's offset only once every event of it is stored.
      findings.push({ chain_id: c.chain_id, seq: c.head_seq + 1, kind: 'message_incomplete', detail: `the head (seq ${c.head_seq}) holds event ${c.head.index + 1} of ${c.head.events} of the message at offset ${head}, whose offset the group committed: its last events have no row` })
    }
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
  const { signed, producers, refused } = await judgeDeadLetters(log, offsets, gaps, trust, bounds, findings, warnings)
  const mismatched = gaps.length > 0 ? await judgeGaps(log, states, gaps, signed, findEvents, bounds, findings, warnings) : new Set<string>()
  const deadLettered = producers.filter((p) => !mismatched.has(p.key)).map((p) => p.event)
  return { findings, warnings, deadLettered, refused }
}

/** Most (code, claimed producer) pairs of unauthenticated messages listed; the rest are counted in a warning. */
const MAX_REFUSED_LISTED = 1000
/** Most forged dead letters kept to report (distinct source offsets); the rest are counted in a warning. */
const MAX_FORGED_REPORTED = 10_000
/** Signed dead letters kept per gap offset (the writer sends one; more are copies). */
const MAX_CLAIMS_PER_OFFSET = 4
/** Producer claims of signed dead letters kept to account for producer holes; the rest are counted in a warning. */
const MAX_PRODUCER_CLAIMS = 100_000

/**
 * Reads every dead letter naming the access topic and checks its signature.
 * Every dead letter that does not verify under the checkpoint key is a
 * `dead_letter_forged` finding wherever it points (an unsigned one may
 * predate signing, which its detail says): anyone with produce rights on the
 * dead-letter topic can write one, so it proves nothing and its presence is
 * worth an operator's look. A signed dead letter is kept only if it names an
 * offset inside a gap, the one place it explains something; one naming a
 * stored row is the writer's record of an earlier refusal (a crash made the
 * retry store it) and hides nothing. Returns the signed claims by
 * `<partition>@<offset>`, and the producer and seq each signed letter names
 * that does not point at a stored row: what accounts for a producer's hole.
 */
async function judgeDeadLetters(
  log: KafkaLog,
  offsets: readonly ChainOffsets[],
  gaps: readonly Gap[],
  trust: DeadLetterTrust | null,
  bounds: KafkaLogBounds,
  findings: Finding[],
  warnings: string[],
): Promise<{ signed: Map<string, DeadLetterClaim[]>; producers: { key: string; event: DeadLetteredEvent }[]; refused: RefusedProducer[] }> {
  const signed = new Map<string, DeadLetterClaim[]>()
  const producers: { key: string; event: DeadLetteredEvent }[] = []
  // Bounded like everything read from Kafka: a flood of forged producer ids is counted, not listed.
  const refused = new Map<string, RefusedProducer>()
  let refusedUnlisted = 0
  const deadLetterTopic = deadLetterTopicOf({ topic: log.topic })
  if (!trust) {
    warnings.push(`dead letters NOT checked (no checkpoint key to check their signatures with): no offset gap is explained by a dead letter`)
    return { signed, producers, refused: [] }
  }
  const byChain = new Map(offsets.map((c) => [c.chain_id, c]))
  let producerClaimsDropped = 0
  const inGap = gapLookup(gaps)
  const forged = new Map<string, { partition: number; offset: bigint; at: string; count: number; detail: string }>()
  let unreported = 0
  const read = await readDeadLetters(log.kafka, deadLetterTopic, log.topic, trust, { timeoutMs: bounds.timeoutMs, maxMessages: bounds.maxDeadLetters }, (letter) => {
    const key = `${letter.partition}@${letter.offset}`
    if (letter.verdict.ok) {
      const producer = letter.verdict.claim.producer
      if (UNAUTHENTICATED_CODES.has(letter.verdict.claim.code)) {
        const id = producer?.producer_id ?? null
        const tally = `${letter.verdict.claim.code} ${id ?? ''}`
        const known = refused.get(tally)
        if (known) known.messages += 1
        else if (refused.size < MAX_REFUSED_LISTED) refused.set(tally, { producer_id: id, code: letter.verdict.claim.code, messages: 1 })
        else refusedUnlisted += 1
      }
      if (producer) {
        const chainId = `${log.topic}/${letter.partition}`
        const chain = byChain.get(chainId)
        const place = chain ? locateOffset(chain, letter.offset) : { seq: 1, stored: false }
        // A letter naming a stored row was an earlier refusal a retry stored: it accounts for nothing.
        if (!place.stored) {
          // A refused batch accounts for each of its events' seqs.
          const { producer_events: events = 1, ...first } = producer
          for (let i = 0; i < events; i++) {
            if (producers.length < MAX_PRODUCER_CLAIMS) {
              producers.push({ key, event: { ...first, producer_seq: first.producer_seq + i, source: letter.verdict.claim.source, code: letter.verdict.claim.code, chain_id: chainId, seq: place.seq } })
            } else producerClaimsDropped += 1
          }
        }
      }
      if (!inGap(letter.partition, letter.offset)) return
      const list = signed.get(key) ?? []
      if (list.length < MAX_CLAIMS_PER_OFFSET) list.push(letter.verdict.claim)
      signed.set(key, list)
      return
    }
    const known = forged.get(key)
    if (known) known.count += 1
    else if (forged.size < MAX_FORGED_REPORTED) forged.set(key, { partition: letter.partition, offset: letter.offset, at: letter.at, count: 1, detail: letter.verdict.detail })
    else unreported += 1
  })
  if (read.missing && gaps.length > 0) warnings.push(`the dead-letter topic ${deadLetterTopic} does not exist: no offset gap can be explained by a dead letter`)
  if (!read.complete) warnings.push(`the dead-letter topic ${deadLetterTopic} holds more than ${bounds.maxDeadLetters} messages; only the first ${bounds.maxDeadLetters} were read`)
  if (unreported > 0) warnings.push(`${unreported} more dead letters that do not verify, for offsets beyond the first ${MAX_FORGED_REPORTED}, were not listed`)
  if (producerClaimsDropped > 0) warnings.push(`${producerClaimsDropped} signed dead letters beyond the first ${MAX_PRODUCER_CLAIMS} naming a producer were not used to account for producer holes`)
  for (const f of forged.values()) {
    const chainId = `${log.topic}/${f.partition}`
    const chain = byChain.get(chainId)
    const place = chain ? locateOffset(chain, f.offset) : { seq: 1, stored: false }
    const copies = f.count > 1 ? ` (and ${f.count - 1} more naming it)` : ''
    findings.push({
      chain_id: chainId,
      seq: place.seq,
      kind: 'dead_letter_forged',
      detail: `the dead letter at ${deadLetterTopic} ${f.at}${copies} names offset ${f.offset}${place.stored ? ', which has a stored row,' : ''} as its source, but ${f.detail}: it explains nothing`,
    })
  }
  if (refusedUnlisted > 0) warnings.push(`${refusedUnlisted} more messages refused as unauthenticated, from producers beyond the first ${MAX_REFUSED_LISTED} listed`)
  return { signed, producers, refused: [...refused.values()] }
}

/** Whether (partition, offset) lies in one of the gaps; gaps are few (bounded by the verifier's break limit). */
function gapLookup(gaps: readonly Gap[]): (partition: number, offset: bigint) => boolean {
  const byPartition = new Map<number, Gap[]>()
  for (const g of gaps) byPartition.set(g.partition, [...(byPartition.get(g.partition) ?? []), g])
  return (partition, offset) => (byPartition.get(partition) ?? []).some((g) => offset >= g.from && offset <= g.to)
}

/**
 * Each gap offset: explained by a dead letter signed by the checkpoint key
 * for exactly the message at that offset (compared while Kafka still holds
 * it), by a replayed duplicate (pending the store's answer), or unexplained.
 * Returns the `<partition>@<offset>` keys whose signed letters were made for
 * another message than Kafka holds there (they account for nothing).
 */
async function judgeGaps(
  log: KafkaLog,
  states: readonly PartitionState[],
  gaps: readonly Gap[],
  signed: ReadonlyMap<string, readonly DeadLetterClaim[]>,
  findEvents: FindEvents,
  bounds: KafkaLogBounds,
  findings: Finding[],
  warnings: string[],
): Promise<Set<string>> {
  const mismatched = new Set<string>()
  const stateOf = new Map(states.map((s) => [s.partition, s]))
  const low = (p: number) => stateOf.get(p)?.low ?? 0n

  const toRead: Gap[] = []
  let budget = BigInt(bounds.maxGapMessages)
  for (const gap of gaps) {
    const size = count(gap)
    if (size <= budget) {
      budget -= size
      toRead.push(gap)
      continue
    }
    let claimed = 0n
    for (const key of signed.keys()) {
      const [p, o] = key.split('@')
      if (Number(p) === gap.partition && BigInt(o!) >= gap.from && BigInt(o!) <= gap.to) claimed += 1n
    }
    if (claimed === size) {
      warnings.push(`chain ${gap.chain_id}: ${size} offsets skipped ${gap.where} are all named by signed dead letters, too many to compare with Kafka (over ${budget} left of the verifier's bound)`)
      continue
    }
    findings.push(finding(gap, `${size} offsets skipped ${gap.where}: too many to read (over ${budget} left of the verifier's bound), so none is explained`))
  }
  if (toRead.length === 0) return mismatched

  const ranges: MessageRange[] = []
  for (const gap of toRead) {
    const from = gap.from > low(gap.partition) ? gap.from : low(gap.partition)
    if (from <= gap.to) ranges.push({ partition: gap.partition, from, to: gap.to })
  }
  const messages = new Map<string, KafkaMessage>()
  const complete = await readMessages(log.kafka, log.topic, ranges, { timeoutMs: bounds.timeoutMs, maxMessages: bounds.maxGapMessages }, (partition, message) => {
    messages.set(`${partition}@${message.offset}`, message)
  })
  if (!complete) warnings.push(`more gap messages than ${bounds.maxGapMessages}: the rest were not read`)

  // Only asks the store whether it holds an event id: whether a key vouched for the message is the writer's check, done when it stored it.
  const codec = createMessageTrust({ trusted: null, allowUnsigned: true })
  const pending: { gap: Gap; offsets: bigint[] }[] = []
  const replayed = new Map<string, string>()
  const find: Record<string, string[]> = {}
  let notCompared = 0
  let refusedEvents = 0
  for (const gap of toRead) {
    const open: bigint[] = []
    for (let o = gap.from; o <= gap.to; o++) {
      const key = `${gap.partition}@${o}`
      const message = messages.get(key)
      const claims = signed.get(key)
      if (claims) {
        if (!message) {
          // Gone from Kafka (or beyond the read bound): the signature alone binds the letter to this source.
          if (o >= low(gap.partition)) notCompared += 1
          continue
        }
        const claim = claims.find((c) => isClaimAbout(c, message))
        if (claim) {
          if (claim.code === 'ROW_REJECTED' && replayedEventId(codec, message, false) !== null) refusedEvents += 1
          continue
        }
        mismatched.add(key)
        findings.push({
          chain_id: gap.chain_id,
          seq: gap.seq,
          kind: 'dead_letter_forged',
          detail: `a dead letter signed by the checkpoint key names offset ${o} as its source, but was made for another message than the one Kafka holds there: it explains nothing`,
        })
      }
      const id = replayedEventId(codec, message, true)
      if (id !== null) {
        replayed.set(key, id)
        ;(find[gap.chain_id] ??= []).push(id)
      }
      open.push(o)
    }
    if (open.length > 0) pending.push({ gap, offsets: open })
  }
  if (notCompared > 0) warnings.push(`${notCompared} gap offsets explained by signed dead letters were not compared with their messages (not read within the verifier's bounds)`)
  if (refusedEvents > 0) {
    warnings.push(
      `${refusedEvents} gap offsets hold valid events that ClickHouse refused (signed ROW_REJECTED dead letters): the writer vouches that it was refused, only ClickHouse says why`,
    )
  }
  const found = Object.keys(find).length > 0 ? await findEvents(find) : {}
  for (const { gap, offsets } of pending) {
    const stored = new Set(found[gap.chain_id] ?? [])
    const unexplained = offsets.filter((o) => {
      const id = replayed.get(`${gap.partition}@${o}`)
      return id === undefined || !stored.has(id)
    })
    if (unexplained.length === 0) continue
    const gone = unexplained.filter((o) => o < low(gap.partition))
    if (gone.length === unexplained.length) {
      warnings.push(`chain ${gap.chain_id}: ${gone.length} offsets skipped ${gap.where} are no longer in Kafka (log start ${low(gap.partition)}) and no signed dead letter names them: they cannot be checked`)
      continue
    }
    const first = unexplained.find((o) => o >= low(gap.partition))!
    findings.push(
      finding(
        gap,
        `${count(gap)} offsets skipped ${gap.where}; ${unexplained.length} of them (first ${first}) are named by no dead letter signed by the checkpoint key and are no replayed duplicate of a stored event: ${gap.kind === 'head_mismatch' ? 'rows the writer stored and committed are gone' : 'their rows are gone'}`,
      ),
    )
  }
  return mismatched
}

function finding(gap: Gap, detail: string): Finding {
  // The offsets make an acknowledgement of an offset_gap cover exactly this gap.
  return { chain_id: gap.chain_id, seq: gap.seq, kind: gap.kind, detail, ...(gap.kind === 'offset_gap' ? { offsets: { from: gap.from.toString(), to: gap.to.toString() } } : {}) }
}

/**
 * The (first) event id of a message that decodes and validates as an event
 * (a batch's first event); with `replayedOnly`, only of one the writer would
 * have dropped as a replayed duplicate (REPLAY_HEADER). null for any other message.
 */
function replayedEventId(codec: MessageTrust, message: KafkaMessage | undefined, replayedOnly: boolean): string | null {
  if (!message?.value || (replayedOnly && message.headers?.[REPLAY_HEADER] === undefined)) return null
  try {
    const event = codec.claimOf(message.value)?.first
    assertAccessEvent(event)
    return event.event_id.toLowerCase()
  } catch {
    // It would have been dead-lettered, and no dead letter names it.
    return null
  }
}
