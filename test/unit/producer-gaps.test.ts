import { describe, expect, it } from 'vitest'
import { completeThrough, findProducerBreaks, judgeProducerBreaks } from '../../integrity/producer-gaps.js'

const NOW = Date.UTC(2026, 10, 27, 12) // ms
const row = (producer_id: string, producer_seq: number, agoMs = 600_000) => ({ producer_id, producer_seq, chain_id: 't/0', seq: producer_seq, ingested_at_us: (NOW - agoMs) * 1000 })

describe('producer sequences', () => {
  it('a contiguous sequence has no break and is complete through its end', () => {
    const { breaks, through } = findProducerBreaks([1, 2, 3].map((s) => row('p', s)), new Map())
    expect(breaks).toEqual([])
    expect(through.get('p')).toBe(3)
  })

  it('a hole older than the grace window is a producer_gap naming the missing seqs', () => {
    const { breaks, through } = findProducerBreaks([1, 2, 5, 6].map((s) => row('p', s)), new Map())
    expect(through.get('p')).toBe(2)
    const judged = judgeProducerBreaks(breaks, { nowMs: NOW, graceMs: 60_000 })
    expect(judged.findings).toMatchObject([{ kind: 'producer_gap', seq: 5, producer: { producer_id: 'p', from_seq: 3, to_seq: 4 } }])
    expect(judged.inFlight).toEqual([])
  })

  it('a hole whose next event is younger than the grace window is in flight, not missing', () => {
    const { breaks } = findProducerBreaks([row('p', 1), row('p', 3, 1_000)], new Map())
    const judged = judgeProducerBreaks(breaks, { nowMs: NOW, graceMs: 60_000 })
    expect(judged.findings).toEqual([])
    expect(judged.inFlight).toMatchObject([{ producer_id: 'p', from_seq: 2, to_seq: 2 }])
  })

  it('missing first events are a hole from seq 1', () => {
    const { breaks } = findProducerBreaks([row('p', 4)], new Map())
    expect(judgeProducerBreaks(breaks, { nowMs: NOW, graceMs: 0 }).findings).toMatchObject([{ producer: { from_seq: 1, to_seq: 3 } }])
  })

  it('a repeated seq is a producer_duplicate', () => {
    const { breaks } = findProducerBreaks([row('p', 1), row('p', 2), row('p', 2)], new Map())
    expect(judgeProducerBreaks(breaks, { nowMs: NOW, graceMs: 0 }).findings.map((f) => f.kind)).toEqual(['producer_duplicate'])
  })

  it('continues from what an earlier run saw complete, and skips what it judged', () => {
    const through = new Map([['p', 10]])
    const { breaks, through: next } = findProducerBreaks([row('p', 9), row('p', 11), row('p', 12), row('q', 1)], through)
    expect(breaks).toEqual([])
    expect(next.get('p')).toBe(12)
    expect(next.get('q')).toBe(1)
    expect(findProducerBreaks([row('p', 12)], through).breaks).toMatchObject([{ producer_seq: 12, prev_producer_seq: 10 }])
  })

  it('a full run records each producer complete through its last seq, or up to its first hole', () => {
    const { breaks } = findProducerBreaks([row('p', 1), row('p', 2), row('p', 5), row('p', 9), row('q', 1), row('q', 1)], new Map())
    expect(completeThrough(breaks, { p: 9, q: 1, r: 4 })).toEqual({ p: 2, q: 1, r: 4 })
  })
})
