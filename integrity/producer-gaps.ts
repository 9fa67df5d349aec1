import type { Finding, InFlightGap } from './report.js'
import type { ProducerBreak } from './row-facts.js'

/**
 * A message the writer refused, naming a producer and seq, whose dead letter
 * verified under the checkpoint key (integrity/check-kafka-log.ts), and where
 * its event would be: the row stored at its source offset or the first after it.
 */
export interface DeadLetteredEvent {
  producer_id: string
  producer_seq: number
  /** `<topic>/<partition>@<offset>` */
  source: string
  code: string
  chain_id: string
  seq: number
}

/** Dead-lettered events by producer and seq (the first letter per seq). */
export type DeadLetteredIndex = ReadonlyMap<string, ReadonlyMap<number, DeadLetteredEvent>>

export function indexDeadLettered(events: readonly DeadLetteredEvent[]): DeadLetteredIndex {
  const out = new Map<string, Map<number, DeadLetteredEvent>>()
  for (const e of events) {
    const bySeq = out.get(e.producer_id) ?? new Map<number, DeadLetteredEvent>()
    if (!bySeq.has(e.producer_seq)) bySeq.set(e.producer_seq, e)
    out.set(e.producer_id, bySeq)
  }
  return out
}

/** Widest hole whose seqs are looked up one by one among the dead letters; a wider one is judged a producer_gap. */
const MAX_HOLE_LOOKED_UP = 100_000
const LETTERS_LISTED = 10

/**
 * Turns breaks in producer sequences into findings. Every event carries its
 * producer's id and a per-producer sequence number from 1, so a hole is an
 * event the application produced that never reached the store — lost
 * between the application and ClickHouse, or never acknowledged — which no
 * check of the stored rows can see.
 *
 * Events of one producer travel through several partitions, each stored by
 * its own chain writer, so a hole can simply be an event still in flight in a
 * lagging partition. A hole whose next event was stored less than `graceMs`
 * ago is reported as in flight, not as missing.
 *
 * A hole whose every seq a signed dead letter names (`deadLettered`) is not
 * lost: the message reached Kafka and the writer refused it. It is
 * `dead_lettered`, reported at once (it is not in flight) at the row after
 * its first source offset. The producer id and seq are the message's own
 * claim, which the signature binds to that message but nobody else vouches
 * for: anyone who can produce to the access topic can make a message claim
 * any producer's seq, so a dead_lettered hole is still a finding an operator
 * looks at and acknowledges, never silently passed.
 */
export function judgeProducerBreaks(
  breaks: readonly ProducerBreak[],
  options: { nowMs: number; graceMs: number; deadLettered?: DeadLetteredIndex },
): { findings: Finding[]; inFlight: InFlightGap[] } {
  const findings: Finding[] = []
  const inFlight: InFlightGap[] = []
  for (const b of breaks) {
    if (b.producer_seq <= b.prev_producer_seq) {
      findings.push({
        chain_id: b.chain_id,
        seq: b.seq,
        kind: 'producer_duplicate',
        detail: `producer ${b.producer_id} seq ${b.producer_seq} is stored more than once`,
        producer: { producer_id: b.producer_id, from_seq: b.producer_seq, to_seq: b.producer_seq },
      })
      continue
    }
    const from = b.prev_producer_seq + 1
    const to = b.producer_seq - 1
    const letters = deadLettersIn(options.deadLettered?.get(b.producer_id), from, to)
    const listed = letters.slice(0, LETTERS_LISTED).map((e) => ({ producer_seq: e.producer_seq, source: e.source, code: e.code }))
    if (letters.length === to - from + 1) {
      const first = letters[0]!
      const what = from === to ? `seq ${from} was` : `seqs ${from}..${to} were`
      findings.push({
        chain_id: first.chain_id,
        seq: first.seq,
        kind: 'dead_lettered',
        detail: `producer ${b.producer_id}: ${what} refused by the chain writer (${first.code}, source ${first.source}${letters.length > 1 ? ` and ${letters.length - 1} more` : ''}); signed dead letters account for the hole: investigate, then acknowledge it (readtrail verify --acknowledge producer:${b.producer_id}:${from})`,
        producer: { producer_id: b.producer_id, from_seq: from, to_seq: to },
        dead_letters: listed,
      })
      continue
    }
    const storedMs = b.ingested_at_us / 1000
    if (options.nowMs - storedMs < options.graceMs) {
      inFlight.push({ producer_id: b.producer_id, from_seq: from, to_seq: to, next_stored_at: new Date(storedMs).toISOString() })
      continue
    }
    const what = from === to ? `seq ${from} never reached the store` : `seqs ${from}..${to} never reached the store (${to - from + 1} events)`
    findings.push({
      chain_id: b.chain_id,
      seq: b.seq,
      kind: 'producer_gap',
      detail: `producer ${b.producer_id}: ${what}; its next event is stored here ${letters.length > 0 ? `(${letters.length} of them refused by the chain writer, with signed dead letters; the rest are not accounted for)` : '(check the dead-letter topic for refused events)'}`,
      producer: { producer_id: b.producer_id, from_seq: from, to_seq: to },
      ...(listed.length > 0 ? { dead_letters: listed } : {}),
    })
  }
  return { findings, inFlight }
}

/** The dead-lettered events of one producer within from..to, in seq order. */
function deadLettersIn(bySeq: ReadonlyMap<number, DeadLetteredEvent> | undefined, from: number, to: number): DeadLetteredEvent[] {
  if (!bySeq || bySeq.size === 0) return []
  const out: DeadLetteredEvent[] = []
  if (to - from + 1 <= MAX_HOLE_LOOKED_UP) {
    for (let s = from; s <= to; s++) {
      const e = bySeq.get(s)
      if (e) out.push(e)
    }
    return out
  }
  // Too wide to walk: the letters inside it, which can never cover it all.
  for (const e of bySeq.values()) if (e.producer_seq >= from && e.producer_seq <= to) out.push(e)
  return out.sort((a, b) => a.producer_seq - b.producer_seq).slice(0, MAX_HOLE_LOOKED_UP - 1)
}

/**
 * Breaks in rows sorted by (producer_id, producer_seq), each producer's
 * sequence continuing from `through` (the highest seq up to which an earlier
 * run saw it complete; 0 = from the start). Rows at or below `through` were
 * judged before and are skipped. Used by incremental verification, which
 * sees only the new rows.
 */
export function findProducerBreaks(
  rows: Iterable<{ producer_id: string; producer_seq: number; chain_id: string; seq: number; ingested_at_us: number }>,
  through: ReadonlyMap<string, number>,
): { breaks: ProducerBreak[]; through: Map<string, number> } {
  const breaks: ProducerBreak[] = []
  const next = new Map(through)
  let producer: string | undefined
  let prev = 0
  let contiguous = true
  for (const r of rows) {
    if (r.producer_id !== producer) {
      producer = r.producer_id
      prev = through.get(producer) ?? 0
      contiguous = true
    }
    const base = through.get(producer) ?? 0
    if (r.producer_seq <= base) continue
    if (r.producer_seq !== prev + 1) {
      breaks.push({ ...r, prev_producer_seq: prev })
      if (r.producer_seq !== prev) contiguous = false
    }
    prev = Math.max(prev, r.producer_seq)
    if (contiguous) next.set(producer, prev)
  }
  return { breaks, through: next }
}

/**
 * Per producer, the seq through which its sequence is complete: its highest
 * seq, or the seq before its first hole (an in-flight event there is judged
 * again by the next run). What an incremental run continues from.
 */
export function completeThrough(breaks: readonly ProducerBreak[], last: Readonly<Record<string, number>>): Record<string, number> {
  const through: Record<string, number> = { ...last }
  for (const b of breaks) if (b.producer_seq > b.prev_producer_seq) through[b.producer_id] = Math.min(through[b.producer_id] ?? Infinity, b.prev_producer_seq)
  return through
}
