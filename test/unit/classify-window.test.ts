import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { classifyWindow, type FactWindow } from '../../integrity/classify-window.js'
import type { RowFacts } from '../../integrity/row-facts.js'

const ZERO = '0'.repeat(64)
const h = (s: string) => createHash('sha256').update(s).digest('hex')

/** A clean chain 1..n as facts: row i links to row i-1. */
function chain(n: number): RowFacts[] {
  const rows: RowFacts[] = []
  let prev = ZERO
  for (let seq = 1; seq <= n; seq++) {
    const hash = h(`row ${seq}`)
    rows.push({ seq, prev_hash: prev, hash, self_ok: true, event_id: `e${seq}` })
    prev = hash
  }
  return rows
}

const win = (rows: RowFacts[], lo = 0, hi = 1000): FactWindow => ({ chain_id: 'c', lo, hi, rows: [...rows].sort((a, b) => a.seq - b.seq || (a.hash < b.hash ? -1 : 1)) })
const kinds = (w: FactWindow) => classifyWindow(w).map((f) => [f.seq, f.kind])

describe('classifyWindow names each damage at its row', () => {
  it('finds nothing in a clean chain', () => {
    expect(classifyWindow(win(chain(10)))).toEqual([])
  })

  it('an edited column: hash_mismatch at that row only', () => {
    const rows = chain(10)
    rows[4] = { ...rows[4]!, self_ok: false }
    expect(kinds(win(rows))).toEqual([[5, 'hash_mismatch']])
  })

  it('an edited and re-hashed row: rewritten_row at that row, not at the next', () => {
    const rows = chain(10)
    rows[4] = { ...rows[4]!, hash: h('forged') }
    expect(kinds(win(rows))).toEqual([[5, 'rewritten_row']])
  })

  it('a deleted row: deleted_rows at the missing seq', () => {
    const rows = chain(10).filter((r) => r.seq !== 6)
    expect(classifyWindow(win(rows))).toEqual([{ chain_id: 'c', seq: 6, kind: 'deleted_rows', detail: 'seq 6 is missing' }])
  })

  it('deleted first rows: deleted_rows from seq 1 when the window starts at genesis', () => {
    expect(kinds(win(chain(10).filter((r) => r.seq > 3)))).toEqual([[1, 'deleted_rows']])
    // Without genesis in the window nothing before the first row is known.
    expect(kinds(win(chain(10).filter((r) => r.seq > 3), 4))).toEqual([])
  })

  it('a forged row sharing a seq with the genuine one: inserted_row, the genuine one is the one linked', () => {
    const rows = chain(10)
    rows.push({ seq: 6, prev_hash: rows[4]!.hash, hash: h('forged'), self_ok: true, event_id: 'forged' })
    const findings = classifyWindow(win(rows))
    expect(findings.map((f) => [f.seq, f.kind])).toEqual([[6, 'inserted_row']])
    expect(findings[0]!.detail).toContain('event forged')
  })

  it('a forged row with later rows renumbered: inserted_row at the forged seq', () => {
    const rows = chain(10).map((r) => (r.seq >= 6 ? { ...r, seq: r.seq + 1, self_ok: false } : r))
    rows.push({ seq: 6, prev_hash: rows[4]!.hash, hash: h('forged'), self_ok: true, event_id: 'forged' })
    const findings = classifyWindow(win(rows))
    expect(findings.filter((f) => f.kind !== 'hash_mismatch').map((f) => [f.seq, f.kind])).toEqual([[6, 'inserted_row']])
  })

  it('an exact duplicate: duplicate_row', () => {
    const rows = chain(10)
    rows.push({ ...rows[6]! })
    expect(kinds(win(rows))).toEqual([[7, 'duplicate_row']])
  })

  it('two rows in each other places: reordered at the first, their seq edit as hash mismatches, no broken links', () => {
    const rows = chain(10)
    const a = rows[4]!
    const b = rows[5]!
    rows[4] = { ...b, seq: 5, self_ok: false }
    rows[5] = { ...a, seq: 6, self_ok: false }
    expect(kinds(win(rows))).toEqual([
      [5, 'hash_mismatch'],
      [5, 'reordered'],
      [6, 'hash_mismatch'],
    ])
  })

  it('two different rows at one seq and nothing after them: forked', () => {
    const rows = chain(5)
    rows.push({ seq: 5, prev_hash: rows[3]!.hash, hash: h('other'), self_ok: true, event_id: 'other' })
    expect(kinds(win(rows))).toEqual([[5, 'forked']])
  })

  it('a first row that does not start from genesis: broken_link', () => {
    const rows = chain(3)
    rows[0] = { ...rows[0]!, prev_hash: h('x') }
    expect(kinds(win(rows))).toEqual([[1, 'broken_link']])
  })

  it('a prev_hash edited without re-hashing: hash_mismatch and broken_link at that row', () => {
    const rows = chain(10)
    rows[6] = { ...rows[6]!, prev_hash: h('x'), self_ok: false }
    expect(kinds(win(rows))).toEqual([
      [7, 'hash_mismatch'],
      [7, 'broken_link'],
    ])
  })
})
