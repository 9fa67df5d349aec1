import { describe, expect, it } from 'vitest'
import { emptyChain, linkEntries, type ChainEntry } from '../../consumers/chain.js'
import { breakKind, chainOffsetsInDb, chainOffsetsStreamed, type ChainOffsets, type OffsetBreak } from '../../integrity/chain-offsets.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { openTestStore } from '../helpers/store.js'

const KEY_ID = 'ab'.repeat(32)
const LIMIT = 100

/** Kafka messages as [offset, events]: one entry per event, signed batches where a message holds more than one. */
function entriesOf(messages: readonly [offset: bigint, events: number][]): ChainEntry[] {
  return messages.flatMap(([offset, events]) =>
    Array.from({ length: events }, (_, index) => ({ event: makeEvent(), offset, index, events, keyId: events > 1 ? KEY_ID : '', schemaVersion: events > 1 ? 2 : 1 })),
  )
}

/** Links the entries as the chain writer does and stores them as one RowBinary insert. */
async function storeChain(store: Store, chainId: string, entries: readonly ChainEntry[]): Promise<void> {
  const linked = linkEntries(emptyChain(chainId), entries, Date.UTC(2026, 10, 27, 12) * 1000)
  await store.insertRowBinary('access_log', linked.rows, linked.count)
}

async function deleteSeqs(store: Store, chainId: string, seqs: readonly number[]): Promise<void> {
  await store.client.command({
    query: `ALTER TABLE ${store.table('access_log')} DELETE WHERE chain_id = {chain_id:String} AND seq IN {seqs:Array(UInt64)} SETTINGS mutations_sync = 2`,
    query_params: { chain_id: chainId, seqs },
  })
}

/** Both offset checks over the whole chain; they must agree to the field. */
async function bothOffsets(store: Store, chainId: string): Promise<ChainOffsets> {
  const inDb = await chainOffsetsInDb(store, chainId, 1, LIMIT)
  const streamed = await chainOffsetsStreamed(store, chainId, 1, 1000, LIMIT)
  expect(inDb).not.toBeNull()
  expect(streamed).toEqual(inDb)
  return inDb!
}

// Offsets 10 and 11 are batches of three, 12 a wire-1 message, 13 a batch of two: seqs 1..3, 4..6, 7, 8..9.
const MESSAGES: [bigint, number][] = [
  [10n, 3],
  [11n, 3],
  [12n, 1],
  [13n, 2],
]

describe('chain offsets over wire-2 batches, in ClickHouse and streamed', () => {
  it('an intact batched chain has no break in either', async () => {
    const store = await openTestStore()
    await storeChain(store, 'batches/0', entriesOf(MESSAGES))
    const offsets = await bothOffsets(store, 'batches/0')
    expect(offsets).toMatchObject({
      first_seq: 1,
      first: { offset: '10', index: 0, events: 3 },
      head_seq: 9,
      head_offset: '13',
      head: { offset: '13', index: 1, events: 2 },
      breaks: [],
      truncated: false,
    })
  })

  it.each([
    // seq 5 is event 2 of 3 of the message at offset 11.
    ['a row deleted inside a message', [5], { seq: 6, prev_seq: 4, offset: '11', prev_offset: '11', index: 2, events: 3, prev_index: 0, prev_events: 3 }, 'message_incomplete'],
    ["a message's last row deleted (the break lands at the next message)", [6], { seq: 7, prev_seq: 5, offset: '12', prev_offset: '11', index: 0, events: 1, prev_index: 1, prev_events: 3 }, 'message_incomplete'],
    ["a whole message's rows deleted (a dead letter could explain it)", [4, 5, 6], { seq: 7, prev_seq: 3, offset: '12', prev_offset: '10', index: 0, events: 1, prev_index: 2, prev_events: 3 }, 'offset_gap'],
  ] satisfies [string, number[], OffsetBreak, ReturnType<typeof breakKind>][])('%s: both report the same break, of the kind expected', async (_, seqs, expected, kind) => {
    const store = await openTestStore()
    await storeChain(store, 'batches/1', entriesOf(MESSAGES))
    await deleteSeqs(store, 'batches/1', seqs)
    const offsets = await bothOffsets(store, 'batches/1')
    expect(offsets.breaks).toEqual([expected])
    expect(breakKind(offsets.breaks[0]!)).toBe(kind)
  })

  it('the head stopped inside a message is no break; the head says where it stopped', async () => {
    const store = await openTestStore()
    await storeChain(store, 'batches/4', entriesOf(MESSAGES).slice(0, 5))
    const offsets = await bothOffsets(store, 'batches/4')
    expect(offsets.breaks).toEqual([])
    expect(offsets.head).toEqual({ offset: '11', index: 1, events: 3 })
  })

  it('an event repeated inside a message: offset_invalid from both', async () => {
    const store = await openTestStore()
    const entries = entriesOf(MESSAGES)
    await storeChain(store, 'batches/5', [...entries.slice(0, 5), entries[4]!, ...entries.slice(5)])
    const offsets = await bothOffsets(store, 'batches/5')
    expect(offsets.breaks).toEqual([{ seq: 6, prev_seq: 5, offset: '11', prev_offset: '11', index: 1, events: 3, prev_index: 1, prev_events: 3 }])
    expect(breakKind(offsets.breaks[0]!)).toBe('offset_invalid')
  })

  // Regression: ClickHouse's UInt64 arithmetic wraps, so the in-database
  // check took offset 0 after 18446744073709551615 for "the next offset" and
  // reported no break, where the streamed check (bigints) reported one.
  it('an offset that wraps past UInt64 to 0 is a break in both', async () => {
    const store = await openTestStore()
    await storeChain(store, 'batches/6', entriesOf([
      [18446744073709551614n, 1],
      [18446744073709551615n, 2],
      [0n, 1],
    ]))
    const offsets = await bothOffsets(store, 'batches/6')
    expect(offsets.breaks).toEqual([{ seq: 4, prev_seq: 3, offset: '0', prev_offset: '18446744073709551615', index: 0, events: 1, prev_index: 1, prev_events: 2 }])
    expect(breakKind(offsets.breaks[0]!)).toBe('offset_invalid')
  })
})
