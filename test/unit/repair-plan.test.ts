import { describe, expect, it } from 'vitest'
import { planSignedRepair, type SignedAnchor } from '../../integrity/repair-plan.js'
import type { StoredLink } from '../../store/repair-breaks.js'

const h = (n: number) => Buffer.alloc(32, n)
const cp: SignedAnchor = { seq: 10, hash: h(10), offset: 9n, signedAtMicros: 5_000 }
const row = (seq: number, extra: Partial<StoredLink> = {}): StoredLink => ({
  seq,
  hash: h(seq),
  prevHash: h(seq - 1),
  offset: BigInt(seq - 1),
  ingestedAt: seq * 100,
  intact: true,
  before: { seq: seq - 1, hash: h(seq - 1), offset: BigInt(seq - 2), ingestedAt: (seq - 1) * 100 },
  ...extra,
})

describe('planSignedRepair', () => {
  it('has nothing to do for a whole chain', () => {
    expect(planSignedRepair('t/0', cp, row(10), [])).toEqual([])
  })

  it('rebuilds a missing checkpointed row against the checkpoint itself', () => {
    const [step] = planSignedRepair('t/0', cp, row(9), [])
    expect(step).toMatchObject({ kind: 'gap', from: 10, to: 10, readFrom: 9n, readTo: 9n, anchors: { missing: 1, rightOffset: 9n, rightIngestedAt: 5_000, leftIngestedAt: 900 } })
    if (step?.kind === 'gap') expect(step.anchors.rightHash).toEqual(cp.hash)
  })

  it('takes gaps from the checkpoint down, each anchored on the prev_hash of the row after it', () => {
    const steps = planSignedRepair('t/0', cp, row(10), [row(8, { before: { seq: 5, hash: h(5), offset: 4n, ingestedAt: 500 } }), row(3, { before: null })])
    expect(steps.map((s) => (s.kind === 'gap' ? [s.from, s.to, s.readFrom, s.readTo] : s.seq))).toEqual([
      [6, 7, 5n, 6n],
      [1, 2, 0n, 1n],
    ])
    const last = steps[1]
    if (last?.kind === 'gap') expect(last.anchors).toMatchObject({ leftIngestedAt: null, left: { seq: 0, lastOffset: null }, rightHash: h(2) })
  })

  it('stops at what no gap explains: an edited row, a rewritten link, a second row, a rewritten checkpointed row', () => {
    expect(planSignedRepair('t/0', cp, row(10), [row(7, { intact: false })])).toMatchObject([{ kind: 'broken', seq: 7 }])
    expect(planSignedRepair('t/0', cp, row(10), [row(7, { prevHash: h(99) })])).toMatchObject([{ kind: 'broken', seq: 7 }])
    expect(planSignedRepair('t/0', cp, row(10), [row(7, { before: { seq: 7, hash: h(7), offset: 6n, ingestedAt: 1 } })])).toMatchObject([{ kind: 'broken', seq: 7 }])
    expect(planSignedRepair('t/0', cp, row(10, { hash: h(77) }), [])).toMatchObject([{ kind: 'broken', seq: 10 }])
    // An edited row right after a gap: both are listed, the edit first (it blocks the gap's proof).
    expect(planSignedRepair('t/0', cp, row(10), [row(7, { intact: false, before: { seq: 4, hash: h(4), offset: 3n, ingestedAt: 1 } })])).toMatchObject([
      { kind: 'broken', seq: 7 },
      { kind: 'gap', from: 5, to: 6 },
    ])
  })
})
