import type { Finding, InFlightGap } from './report.js'
import type { ProducerBreak } from './row-facts.js'

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
 */
export function judgeProducerBreaks(breaks: readonly ProducerBreak[], options: { nowMs: number; graceMs: number }): { findings: Finding[]; inFlight: InFlightGap[] } {
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
      detail: `producer ${b.producer_id}: ${what}; its next event is stored here (check the dead-letter topic for refused events)`,
      producer: { producer_id: b.producer_id, from_seq: from, to_seq: to },
    })
  }
  return { findings, inFlight }
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
