import { describe, expect, it } from 'vitest'
import { emptyChain, linkEntries, type ChainEntry, type ChainHead } from '../../consumers/chain.js'
import { chooseEntries, combinations, rebuildGap, searchOrder, type GapAnchors } from '../../consumers/repair-rebuild.js'
import { makeEvent } from '../helpers/events.js'

const CHAIN = 'topic/0'
const entries = (n: number, firstOffset = 0n): ChainEntry[] => Array.from({ length: n }, (_, i) => ({ event: makeEvent(), offset: firstOffset + BigInt(i), schemaVersion: 1 }))

/** A chain stored in inserts of the given sizes at the given ingested_at values; returns every row's head. */
function store(all: ChainEntry[], inserts: readonly [count: number, at: number][]): { heads: ChainHead[]; at: number[] } {
  let head = emptyChain(CHAIN)
  const heads: ChainHead[] = []
  const at: number[] = []
  let i = 0
  for (const [count, t] of inserts) {
    for (const e of all.slice(i, i + count)) {
      head = linkEntries(head, [e], t).head
      heads.push(head)
      at.push(t)
    }
    i += count
  }
  return { heads, at }
}

/** Anchors for rows from..to (1-based seqs) missing out of a stored chain. */
function gap(s: ReturnType<typeof store>, from: number, to: number, atCheckpoint = false): GapAnchors {
  const left = from === 1 ? emptyChain(CHAIN) : s.heads[from - 2]!
  const right = s.heads[to - 1]!
  return {
    left,
    leftIngestedAt: from === 1 ? null : s.at[from - 2]!,
    missing: to - from + 1,
    rightHash: right.hash,
    rightOffset: atCheckpoint ? right.lastOffset : null,
    rightIngestedAt: atCheckpoint ? s.at[to - 1]! + 5_000_000 : s.at[to]!,
  }
}

describe('rebuildGap', () => {
  const all = entries(12)
  const s = store(all, [[4, 1_000_000], [4, 1_250_000], [4, 1_900_000]])

  it('rebuilds rows inside one insert with the neighbours ingested_at', () => {
    const out = rebuildGap(gap(s, 2, 3), all.slice(1, 3), null)
    expect(out).toMatchObject({ proved: true, ingestedAt: [1_000_000, 1_000_000] })
    if (out.proved) expect(out.batch.head.hash).toEqual(s.heads[2]!.hash)
  })

  it('rebuilds rows across the boundary of two inserts', () => {
    expect(rebuildGap(gap(s, 3, 6), all.slice(2, 6), null)).toMatchObject({ proved: true, ingestedAt: [1_000_000, 1_000_000, 1_250_000, 1_250_000] })
  })

  it('finds the ingested_at of a whole insert that was deleted, starting from the Kafka timestamp hint', () => {
    const out = rebuildGap(gap(s, 5, 8), all.slice(4, 8), 1_249_000)
    expect(out).toMatchObject({ proved: true, ingestedAt: [1_250_000, 1_250_000, 1_250_000, 1_250_000] })
    expect(out.candidates).toBeLessThan(10_000)
  })

  it('searches a whole insert of ten rows 2 ms from the hint candidate by candidate, as many as before the search was made hash-only', () => {
    const ten = entries(26)
    const t = store(ten, [[8, 3_000_000], [10, 3_050_000], [8, 3_100_000]])
    const started = performance.now()
    const out = rebuildGap(gap(t, 9, 18), ten.slice(8, 18), 3_048_000)
    const ms = performance.now() - started
    // 11 tries with the neighbours' values, 19 splits per microsecond below the insert's, then its first.
    expect(out).toMatchObject({ proved: true, candidates: 11 + 19 * 2_000 + 1, ingestedAt: Array<number>(10).fill(3_050_000) })
    if (out.proved) {
      expect(out.batch.head.hash).toEqual(t.heads[17]!.hash)
      const expected = linkEntries(t.heads[7]!, ten.slice(8, 18), 3_050_000)
      expect(out.batch.rows.equals(expected.rows)).toBe(true)
      expect(out.batch.count).toBe(expected.count)
    }
    console.log(`whole insert of 10 rows: ${out.candidates} candidates in ${ms.toFixed(0)} ms (${((ms * 1000) / out.candidates).toFixed(1)} µs each)`)
  })

  it('finds a whole insert plus the end of the one before', () => {
    expect(rebuildGap(gap(s, 4, 8), all.slice(3, 8), 1_249_990)).toMatchObject({ proved: true, ingestedAt: [1_000_000, 1_250_000, 1_250_000, 1_250_000, 1_250_000] })
  })

  it('rebuilds the checkpointed row itself, and the chain from its genesis', () => {
    expect(rebuildGap(gap(s, 12, 12, true), all.slice(11, 12), null)).toMatchObject({ proved: true })
    expect(rebuildGap(gap(s, 1, 2), all.slice(0, 2), null)).toMatchObject({ proved: true })
  })

  it('chooses among more valid events than rows are missing (a replayed copy, an unrelated event)', () => {
    const extra = { event: makeEvent(), offset: 5n, schemaVersion: 1 }
    const pool = [all[2]!, { ...extra, offset: 2n }, all[3]!].map((e, i) => ({ ...e, offset: BigInt(2 + i) }))
    // Offsets differ from the stored ones here, so build a chain over these offsets instead.
    const t = store([all[0]!, all[1]!, pool[0]!, pool[2]!, all[4]!].map((e, i) => ({ ...e, offset: i < 2 ? BigInt(i) : e.offset })), [[5, 7]])
    expect(rebuildGap(gap(t, 3, 4), pool, null)).toMatchObject({ proved: true })
  })

  it('reports too few events, an edited event, too many choices and an exhausted search, never a false proof', () => {
    expect(rebuildGap(gap(s, 2, 3), all.slice(1, 2), null)).toMatchObject({ proved: false, code: 'REPAIR_MESSAGES_MISSING' })
    const edited = [all[1]!, { ...all[2]!, event: { ...all[2]!.event, principal_id: 'mallory' } }]
    expect(rebuildGap(gap(s, 2, 3), edited, null, { maxCandidates: 10_000_000, maxChoices: 64 })).toMatchObject({ proved: false, code: 'REPAIR_GAP_UNPROVED' })
    expect(rebuildGap(gap(s, 2, 3), entries(40, 1n), null, { maxCandidates: 100, maxChoices: 64 })).toMatchObject({ proved: false, code: 'REPAIR_GAP_AMBIGUOUS' })
    expect(rebuildGap(gap(s, 5, 8), all.slice(4, 8), 1_000_001, { maxCandidates: 1000, maxChoices: 64 })).toMatchObject({ proved: false, code: 'REPAIR_SEARCH_EXHAUSTED', candidates: 1000 })
  })
})

describe('the search space', () => {
  it('searches microseconds strictly between the neighbours, from the hint up, then down', () => {
    expect([...searchOrder(10, 16, 13)]).toEqual([13, 14, 15, 12, 11])
    expect([...searchOrder(10, 16, null)]).toEqual([11, 12, 13, 14, 15])
    expect([...searchOrder(10, 16, 99)]).toEqual([15, 14, 13, 12, 11])
    expect([...searchOrder(10, 11, 10)]).toEqual([])
  })

  it('chooses in offset order, keeping the event at the checkpoint offset last', () => {
    const e = entries(4)
    expect(chooseEntries(e, 2, null, 64)!.map((c) => c.map((x) => Number(x.offset)))).toEqual([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
    expect(chooseEntries(e, 2, 3n, 64)!.map((c) => c.map((x) => Number(x.offset)))).toEqual([[0, 3], [1, 3], [2, 3]])
    expect(chooseEntries(e, 2, 9n, 64)).toEqual([])
    expect(chooseEntries(e, 2, null, 5)).toBeNull()
    expect(combinations(50, 25, 1000)).toBe(1001)
    expect(combinations(6, 2, 1000)).toBe(15)
  })
})
