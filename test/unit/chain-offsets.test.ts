import { describe, expect, it } from 'vitest'
import { breakKind, endsMessage, locateOffset, type ChainOffsets, type OffsetBreak, type RowPosition } from '../../integrity/chain-offsets.js'

/** [offset, index, events]: a row's place in Kafka. */
type Place = [offset: number, index: number, events: number]

const position = ([offset, index, events]: Place): RowPosition => ({ offset: String(offset), index, events })

/** The break between the row at `prevSeq` and the next seq, as both offset checks report it. */
function breakAt(prevSeq: number, prev: Place, seq: number, at: Place): OffsetBreak {
  return { seq, prev_seq: prevSeq, offset: String(at[0]), prev_offset: String(prev[0]), index: at[1], events: at[2], prev_index: prev[1], prev_events: prev[2] }
}

function chainOffsets(first: [seq: number, at: Place], head: [seq: number, at: Place], breaks: OffsetBreak[] = []): ChainOffsets {
  return { chain_id: 'access/0', first_seq: first[0], first: position(first[1]), head_seq: head[0], head_offset: String(head[1][0]), head: position(head[1]), breaks, truncated: false }
}

describe('endsMessage', () => {
  it("is true at a message's last event only", () => {
    expect(endsMessage({ index: 0, events: 1 })).toBe(true)
    expect(endsMessage({ index: 2, events: 3 })).toBe(true)
    expect(endsMessage({ index: 0, events: 3 })).toBe(false)
    expect(endsMessage({ index: 1, events: 3 })).toBe(false)
  })
})

describe('breakKind', () => {
  it.each([
    // seqs 1..3 are offset 10's three events, seqs 4..6 offset 12's: offset 11 has no row.
    ['offset_gap', 'a batch skipped between two batches', [10, 2, 3], [12, 0, 3]],
    ['offset_gap', 'wire-1 messages skipped', [14, 0, 1], [20, 0, 1]],
    ['offset_gap', 'from a batch to a wire-1 message', [10, 2, 3], [15, 0, 1]],
    ['offset_gap', 'from a wire-1 message to a batch', [15, 0, 1], [17, 0, 2]],
    ['message_incomplete', 'an event skipped inside a message', [10, 0, 3], [10, 2, 3]],
    ['message_incomplete', "a message's last events missing before the next message", [10, 1, 3], [11, 0, 3]],
    ['message_incomplete', "the next message's first events missing", [10, 2, 3], [11, 1, 3]],
    ['message_incomplete', 'both, across skipped messages', [10, 1, 3], [13, 2, 3]],
    ['message_incomplete', 'a new message entered after its first event, across a gap', [10, 2, 3], [12, 1, 3]],
    ['message_incomplete', "a message's rows disagreeing on its event count", [10, 0, 3], [10, 1, 4]],
    ['offset_invalid', 'the offset going back', [11, 0, 1], [10, 0, 1]],
    ['offset_invalid', 'the offset going back from inside a message', [11, 1, 3], [10, 2, 3]],
    ['offset_invalid', 'the offset staying after a wire-1 message', [10, 0, 1], [10, 0, 1]],
    ['offset_invalid', "the offset staying after a message's last event", [10, 2, 3], [10, 0, 3]],
    ['offset_invalid', "the offset staying after a message's last event, with another event count", [10, 2, 3], [10, 3, 4]],
    // Regression: an event index that repeats or goes back inside a message
    // was called message_incomplete ("events of a stored message have no
    // row"), when no row is missing: a row was repeated or moved.
    ['offset_invalid', 'an event repeated inside a message', [10, 1, 3], [10, 1, 3]],
    ['offset_invalid', 'an event index going back inside a message', [10, 1, 3], [10, 0, 3]],
  ] satisfies [ReturnType<typeof breakKind>, string, Place, Place][])('%s: %s', (kind, _, prev, at) => {
    expect(breakKind(breakAt(7, prev, 8, at))).toBe(kind)
  })

  it('compares offsets as UInt64, beyond a double', () => {
    const b = { ...breakAt(1, [0, 0, 1], 2, [0, 0, 1]), prev_offset: '9007199254740993', offset: '9007199254740995' }
    expect(breakKind(b)).toBe('offset_gap')
    expect(breakKind({ ...b, offset: '9007199254740992' })).toBe('offset_invalid')
  })
})

/** Where locateOffset places each offset, as [seq, stored]. */
const placed = (c: ChainOffsets, ...offsets: bigint[]) => offsets.map((o) => locateOffset(c, o)).map(({ seq, stored }) => [seq, stored])
/** The seq of a stored offset inside a run of many-event messages is an estimate: only that it is stored is exact. */
const SOME_SEQ = expect.any(Number) as number

describe('locateOffset', () => {
  it('a chain of 3-event messages without a break: offsets 10..12 at seqs 1..9', () => {
    const c = chainOffsets([1, [10, 0, 3]], [9, [12, 2, 3]])
    expect(placed(c, 9n, 10n, 12n, 13n)).toEqual([[1, false], [1, true], [SOME_SEQ, true], [10, false]])
  })

  it('a message skipped between two complete ones: its offset is not stored and belongs before the next row', () => {
    // seqs 1..3 offset 10, seqs 4..6 offset 12, seqs 7..9 offset 13.
    const c = chainOffsets([1, [10, 0, 3]], [9, [13, 2, 3]], [breakAt(3, [10, 2, 3], 4, [12, 0, 3])])
    expect(breakKind(c.breaks[0]!)).toBe('offset_gap')
    expect(placed(c, 10n, 11n, 12n, 13n, 14n)).toEqual([[1, true], [4, false], [4, true], [SOME_SEQ, true], [10, false]])
  })

  it('a row missing inside a message: the message is still (partly) stored', () => {
    // seqs 1..2 offset 10 events 0 and 2 (event 1 deleted), seqs 3..5 offset 11.
    const c = chainOffsets([1, [10, 0, 3]], [5, [11, 2, 3]], [breakAt(1, [10, 0, 3], 2, [10, 2, 3])])
    expect(breakKind(c.breaks[0]!)).toBe('message_incomplete')
    expect(placed(c, 10n, 11n, 12n)).toEqual([[1, true], [SOME_SEQ, true], [6, false]])
  })

  it('the head inside a message: its offset is stored, the next is past the head', () => {
    // seqs 1..3 offset 10, seqs 4..5 events 0 and 1 of offset 11's three.
    const c = chainOffsets([1, [10, 0, 3]], [5, [11, 1, 3]])
    expect(endsMessage(c.head)).toBe(false)
    expect(placed(c, 11n, 12n)).toEqual([[SOME_SEQ, true], [6, false]])
  })

  it('a checked range that starts inside a message (an incremental run from its anchor)', () => {
    const c = chainOffsets([40, [10, 1, 3]], [44, [11, 2, 3]])
    expect(placed(c, 9n, 10n, 12n)).toEqual([[40, false], [40, true], [45, false]])
  })

  it('one-event (wire-1) messages: names the row stored at an offset, or the first row after it', () => {
    // seqs 1..5 at offsets 10..14, a gap at 15..16, seqs 6..8 at 17..19
    const c = chainOffsets([1, [10, 0, 1]], [8, [19, 0, 1]], [breakAt(5, [14, 0, 1], 6, [17, 0, 1])])
    expect(placed(c, 3n, 10n, 14n, 15n, 16n, 18n, 20n)).toEqual([[1, false], [1, true], [5, true], [6, false], [6, false], [7, true], [9, false]])
    const plain = chainOffsets([1, [0, 0, 1]], [3, [2, 0, 1]])
    expect(placed(plain, 0n, 2n, 3n)).toEqual([[1, true], [3, true], [4, false]])
  })
})
