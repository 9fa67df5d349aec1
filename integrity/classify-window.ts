import type { Finding } from './report.js'
import type { RowFacts } from './row-facts.js'

/** Every stored row of one chain with lo <= seq <= hi, sorted by (seq, hash). */
export interface FactWindow {
  chain_id: string
  /** 0 when the window starts at the chain's beginning: genesis precedes its first row. */
  lo: number
  hi: number
  rows: RowFacts[]
}

const GENESIS: RowFacts = Object.freeze({ seq: 0, prev_hash: '', hash: '0'.repeat(64), self_ok: true, event_id: '' })

/**
 * Names the damage inside one window of rows, as precisely as the rows
 * allow. Both verification modes reduce the log to windows around the rows
 * that failed a check and call this, so they report the same findings.
 *
 * Everything here is attacker-controlled: a pattern is only named when the
 * stored hashes prove it (a swap is named only when each row links to the
 * other), and anything unexplained is still reported as a broken link.
 */
export function classifyWindow(window: FactWindow): Finding[] {
  const findings: Finding[] = []
  const at = (seq: number, kind: Finding['kind'], detail: string) => findings.push({ chain_id: window.chain_id, seq, kind, detail })

  // Rows sharing a seq: keep the one the next row links to, name the others.
  const groups: RowFacts[][] = []
  for (const row of window.rows) {
    const last = groups[groups.length - 1]
    if (last && last[0]!.seq === row.seq) last.push(row)
    else groups.push([row])
  }
  const reps: RowFacts[] = []
  for (const [i, group] of groups.entries()) {
    if (group.length === 1) {
      reps.push(group[0]!)
      continue
    }
    const seq = group[0]!.seq
    const distinct = new Map<string, RowFacts>()
    for (const r of group) if (!distinct.has(r.hash)) distinct.set(r.hash, r)
    if (distinct.size < group.length) {
      at(seq, 'duplicate_row', `${group.length - distinct.size + 1} copies of the row at seq ${seq} (event ${group[0]!.event_id}) are stored`)
    }
    if (distinct.size === 1) {
      reps.push(group[0]!)
      continue
    }
    const next = groups[i + 1]
    const linkedFrom = new Set(next && next[0]!.seq === seq + 1 ? next.map((r) => r.prev_hash) : [])
    const linked = [...distinct.values()].filter((r) => linkedFrom.has(r.hash))
    if (linked.length === 1) {
      const genuine = linked[0]!
      for (const r of distinct.values()) {
        if (r !== genuine) at(seq, 'inserted_row', `a second row claims seq ${seq} (event ${r.event_id}); seq ${seq + 1} links to the other (event ${genuine.event_id})`)
      }
      reps.push(genuine)
    } else {
      at(seq, 'forked', `${distinct.size} different rows claim seq ${seq} and the next row links to ${linked.length === 0 ? 'none' : 'more than one'} of them`)
      reps.push(linked[0] ?? group[0]!)
    }
  }

  const explained = new Set<number>()
  for (const [i, row] of reps.entries()) {
    if (!row.self_ok) at(row.seq, 'hash_mismatch', 'the stored columns do not hash to the stored hash: a column was edited')
    const pred = i > 0 ? reps[i - 1] : window.lo === 0 ? GENESIS : undefined
    if (!pred) continue
    if (row.seq > pred.seq + 1) {
      const missing = row.seq - pred.seq - 1
      at(pred.seq + 1, 'deleted_rows', missing === 1 ? `seq ${pred.seq + 1} is missing` : `seqs ${pred.seq + 1}..${row.seq - 1} are missing (${missing} rows)`)
      continue
    }
    if (row.prev_hash === pred.hash || explained.has(row.seq)) continue
    const next = reps[i + 1]
    const before = i > 1 ? reps[i - 2] : i === 1 && window.lo === 0 ? GENESIS : undefined
    if (next && next.seq === row.seq + 1 && row.prev_hash === next.hash && next.prev_hash === pred.hash) {
      at(row.seq, 'reordered', `the rows at seq ${row.seq} and ${row.seq + 1} are in each other's places`)
      explained.add(next.seq)
      const after = reps[i + 2]
      if (after && after.seq === next.seq + 1 && after.prev_hash === row.hash) explained.add(after.seq)
    } else if (pred !== GENESIS && before && before.seq === pred.seq - 1 && row.prev_hash === before.hash) {
      at(pred.seq, 'inserted_row', `nothing links to the row at seq ${pred.seq} (event ${pred.event_id}): seq ${row.seq} links past it to seq ${before.seq}`)
    } else if (pred !== GENESIS && pred.self_ok && row.self_ok) {
      at(pred.seq, 'rewritten_row', `the row hashes correctly, but seq ${row.seq} committed to a different hash: its columns were edited and its hash recomputed`)
    } else {
      at(row.seq, 'broken_link', pred === GENESIS ? 'the first row does not link to the genesis hash' : `prev_hash does not match the hash of seq ${pred.seq}`)
    }
  }
  return findings
}
