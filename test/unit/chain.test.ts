import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { emptyChain, GENESIS_HASH, linkEntries, rowRehasher, type ChainEntry, type ChainHead } from '../../consumers/chain.js'
import { AccessEvent } from '../../schemas/access-event.js'
import { writeCanonical } from '../../store/access-log-columns.js'
import { RowBinaryWriter } from '../../store/row-binary.js'
import { chainedRow } from '../helpers/chained-row.js'
import { linkedRows, type LinkedRow } from '../helpers/linked-rows.js'

const INGESTED_AT = 1_718_000_000_000_001
const CHAIN_ID = 't/0'
const ZERO_HEX = '00'.repeat(32)
/** A producer key id as a signed wire-2 batch names it. */
const KEY_ID = 'ab'.repeat(32)

function event(i: number): AccessEvent {
  const hex = i.toString(16).padStart(12, '0')
  return {
    event_id: `0190a4b2-1c3d-7e4f-8a5b-${hex}`,
    read_id: `0190a4b2-1c3d-7e4f-9a5b-${hex}`,
    part_index: 0,
    part_count: 3,
    occurred_at: 1_718_000_000_000_000 + i,
    principal_id: `user${i}`,
    principal_type: 'user',
    on_behalf_of: i % 2 ? 'bob' : null,
    session_hash: i % 2 ? Buffer.alloc(32, i) : null,
    client_ip: i % 2 ? '10.0.0.1' : null,
    service: 'billing',
    environment: 'test',
    action: 'read',
    db_name: 'crm',
    table_name: 'customers',
    columns: ['id', 'email'],
    record_ids: [String(i), String(i + 1)],
    record_ids_complete: true,
    row_count: 2,
    query_fingerprint: 'SELECT id, email FROM customers WHERE id IN (?+)',
    db_session: i % 2 ? String(1000 + i) : '',
    statement_digest: i % 2 ? i.toString(16).padStart(64, 'a') : '',
    purpose: null,
    trace_id: i % 2 ? `trace-${i}` : null,
    outcome: 'success',
    producer_id: 'p1',
    producer_seq: i + 1,
  }
}

function entries(n: number, patch?: (i: number, e: AccessEvent) => AccessEvent): ChainEntry[] {
  return Array.from({ length: n }, (_, i) => ({ event: patch ? patch(i, event(i)) : event(i), offset: BigInt(100 + i), schemaVersion: 1 }))
}

/** `n` events as signed wire-2 messages of `per` events each, from offset 100. */
function batchedEntries(n: number, per: number): ChainEntry[] {
  return Array.from({ length: n }, (_, i) => ({ event: event(i), offset: BigInt(100 + Math.floor(i / per)), index: i % per, events: per, keyId: KEY_ID, schemaVersion: 2 }))
}

const hashOf = (row: LinkedRow) => row.hash
const hashesOf = (batch: ReturnType<typeof linkEntries>) => linkedRows(batch).map(hashOf)

/** The row hash, computed here from the event and its chain position. */
function expectedHash(e: ChainEntry, seq: number, prevHash: Buffer): { hash: string; canonical: Buffer } {
  const place = { message_index: e.index ?? 0, message_events: e.events ?? 1, key_id: e.keyId ?? '' }
  const row = chainedRow(e.event, { chain_id: CHAIN_ID, seq, prev_hash: prevHash, kafka_offset: e.offset, ingested_at: INGESTED_AT, schema_version: e.schemaVersion, ...place })
  const w = new RowBinaryWriter()
  writeCanonical(w, row)
  const canonical = w.slice(0)
  return { hash: createHash('sha256').update(canonical).digest('hex'), canonical }
}

describe('linkEntries', () => {
  const input = entries(5)
  const linked = linkEntries(emptyChain(CHAIN_ID), input, INGESTED_AT)
  const { head } = linked
  const lines = linkedRows(linked)

  it('the test events are valid access events', () => {
    for (const e of input) expect(AccessEvent.safeParse(e.event).success).toBe(true)
  })

  it('numbers rows contiguously from 1 and carries chain id and offsets', () => {
    expect(lines).toHaveLength(5)
    expect(linked.count).toBe(5)
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5])
    expect(lines.map((l) => l.chain_id)).toEqual(Array<string>(5).fill(CHAIN_ID))
    expect(lines.map((l) => l.kafka_offset)).toEqual([100, 101, 102, 103, 104])
  })

  it('starts from the all-zero genesis hash', () => {
    expect(lines[0]!.prev_hash).toBe(ZERO_HEX)
  })

  it("links every row's prev_hash to the previous row's hash", () => {
    for (let i = 1; i < lines.length; i++) expect(lines[i]!.prev_hash).toBe(hashOf(lines[i - 1]!))
    expect(new Set(lines.map(hashOf)).size).toBe(lines.length)
  })

  it('hashes the RowBinary encoding of every column, prev_hash first', () => {
    let prev = Buffer.alloc(32)
    input.forEach((e, i) => {
      const { hash, canonical } = expectedHash(e, i + 1, prev)
      expect(canonical.subarray(0, 32).equals(prev)).toBe(true)
      expect(hashOf(lines[i]!)).toBe(hash)
      // The stored row is the hashed bytes themselves, then the hash.
      expect(lines[i]!.canonical.equals(canonical)).toBe(true)
      prev = Buffer.from(hash, 'hex')
    })
  })

  it('returns a head at the last row', () => {
    expect(head).toEqual({ chainId: CHAIN_ID, seq: 5, hash: Buffer.from(hashOf(lines[4]!), 'hex'), lastOffset: 104n })
  })

  it('gives byte-identical rows whether linked in one batch or two', () => {
    const first = linkEntries(emptyChain(CHAIN_ID), input.slice(0, 2), INGESTED_AT)
    const second = linkEntries(first.head, input.slice(2), INGESTED_AT)
    expect(Buffer.concat([first.rows, second.rows]).equals(linked.rows)).toBe(true)
    expect(first.count + second.count).toBe(5)
    expect(second.head).toEqual(head)
  })

  it('does not mutate the head it is given', () => {
    const start = Object.freeze(emptyChain(CHAIN_ID))
    const mid = linkEntries(start, input.slice(0, 2), INGESTED_AT).head
    const snapshot = { ...mid, hash: Buffer.from(mid.hash) }
    const frozenMid: ChainHead = Object.freeze(mid)
    linkEntries(frozenMid, input.slice(2), INGESTED_AT)
    expect(start).toEqual({ chainId: CHAIN_ID, seq: 0, hash: Buffer.alloc(32), lastOffset: null })
    expect(mid).toEqual(snapshot)
    expect(GENESIS_HASH.equals(Buffer.alloc(32))).toBe(true)
  })

  it('returns rows of its own: a writer reused for the next batch does not change them', () => {
    const writer = new RowBinaryWriter(64)
    const first = linkEntries(emptyChain(CHAIN_ID), input.slice(0, 2), INGESTED_AT, writer)
    const copy = Buffer.from(first.rows)
    linkEntries(first.head, input.slice(2), INGESTED_AT, writer)
    expect(first.rows.equals(copy)).toBe(true)
    expect(copy.equals(linked.rows.subarray(0, copy.length))).toBe(true)
  })

  it('links an empty batch to an unchanged head and no rows', () => {
    const result = linkEntries(head, [], INGESTED_AT)
    expect(result.rows.length).toBe(0)
    expect(result.count).toBe(0)
    expect(result.head).toEqual(head)
  })
})

describe('linkEntries with wire-2 batches', () => {
  const input = batchedEntries(6, 3)
  const linked = linkEntries(emptyChain(CHAIN_ID), input, INGESTED_AT)
  const lines = linkedRows(linked)

  it("hashes each event's place in its message and the batch's key id", () => {
    let prev = Buffer.alloc(32)
    input.forEach((e, i) => {
      const { hash, canonical } = expectedHash(e, i + 1, prev)
      expect(lines[i]!.canonical.equals(canonical)).toBe(true)
      expect(hashOf(lines[i]!)).toBe(hash)
      prev = Buffer.from(hash, 'hex')
    })
    expect(lines.map((l) => l.kafka_offset)).toEqual([100, 100, 100, 101, 101, 101])
  })

  it('writes event 0 of 1, unsigned, for an entry that names no place (a wire-1 message)', () => {
    const [plain] = entries(1)
    const explicit = { ...plain!, index: 0, events: 1, keyId: '' }
    expect(linkedRows(linkEntries(emptyChain(CHAIN_ID), [plain!], INGESTED_AT))[0]!.canonical).toEqual(linkedRows(linkEntries(emptyChain(CHAIN_ID), [explicit], INGESTED_AT))[0]!.canonical)
  })

  it('leaves the head open inside a message and closes it at its last event', () => {
    const part = linkEntries(emptyChain(CHAIN_ID), input.slice(0, 4), INGESTED_AT)
    expect(part.head.open).toEqual({ nextIndex: 1, events: 3 })
    expect(part.head.lastOffset).toBe(101n)
    const rest = linkEntries(part.head, input.slice(4), INGESTED_AT)
    expect(rest.head.open).toBeUndefined()
    expect(rest.head).toEqual(linked.head)
    // A message split across two inserts links to the same bytes as one insert.
    expect(Buffer.concat([part.rows, rest.rows]).equals(linked.rows)).toBe(true)
  })

  it.each([
    ['message_index', (e: ChainEntry) => ({ ...e, index: 2 })],
    ['message_events', (e: ChainEntry) => ({ ...e, events: 4 })],
    ['key_id', (e: ChainEntry) => ({ ...e, keyId: 'cd'.repeat(32) })],
    ['key_id (to unsigned)', (e: ChainEntry) => ({ ...e, keyId: '' })],
  ])('changing %s changes that hash and every later one', (_, change) => {
    const changed = input.map((e, i) => (i === 1 ? change(e) : e))
    const a = hashesOf(linked)
    const b = hashesOf(linkEntries(emptyChain(CHAIN_ID), changed, INGESTED_AT))
    expect(b[0]).toBe(a[0])
    for (let i = 1; i < a.length; i++) expect(b[i], `row ${i}`).not.toBe(a[i])
  })
})

describe('rowRehasher', () => {
  it('hashes the bytes linkEntries hashes, for any prev_hash and ingested_at, at any seq', () => {
    const input = entries(4, (i, e) => (i === 2 ? { ...e, on_behalf_of: null, session_hash: null, client_ip: null, trace_id: null } : e))
    const mid = linkEntries(emptyChain(CHAIN_ID), entries(7), INGESTED_AT).head
    const rehash = input.map((e, i) => rowRehasher(CHAIN_ID, mid.seq + i + 1, e))
    for (const [prev, at] of [[mid.hash, INGESTED_AT], [Buffer.alloc(32, 0xff), 0], [GENESIS_HASH, 2 ** 52 + 7], [mid.hash, 1]] as const) {
      const head: ChainHead = { ...mid, hash: prev }
      const expected = hashesOf(linkEntries(head, input, at))
      let h: Buffer = prev
      const got = rehash.map((r) => (h = r(h, at)).toString('hex'))
      expect(got).toEqual(expected)
    }
  })
})

describe('linkEntries is tamper-evident', () => {
  /** One different, still valid value per event field. */
  const CHANGES: { [K in keyof AccessEvent]: (e: AccessEvent) => AccessEvent[K] } = {
    event_id: () => '0190a4b2-1c3d-7e4f-8a5b-ffffffffffff',
    read_id: () => '0190a4b2-1c3d-7e4f-9a5b-ffffffffffff',
    part_index: () => 1,
    part_count: () => 4,
    occurred_at: (e) => e.occurred_at + 1,
    principal_id: (e) => `${e.principal_id}x`,
    principal_type: () => 'service',
    on_behalf_of: (e) => (e.on_behalf_of === null ? 'carol' : null),
    session_hash: (e) => (e.session_hash === null ? Buffer.alloc(32, 0xee) : null),
    client_ip: (e) => (e.client_ip === null ? '::1' : null),
    service: () => 'other-service',
    environment: () => 'prod',
    action: () => 'export',
    db_name: () => 'crm2',
    table_name: () => 'customers2',
    columns: (e) => [...e.columns, 'phone'],
    record_ids: (e) => [...e.record_ids.slice(0, -1), 'zzz'],
    record_ids_complete: (e) => !e.record_ids_complete,
    row_count: (e) => e.row_count + 1,
    query_fingerprint: () => 'SELECT * FROM customers',
    db_session: (e) => (e.db_session === '' ? '4242' : ''),
    statement_digest: (e) => (e.statement_digest === '' ? 'cd'.repeat(32) : ''),
    purpose: (e) => (e.purpose === null ? 'audit' : null),
    trace_id: (e) => (e.trace_id === null ? 'trace-x' : null),
    outcome: () => 'denied',
    producer_id: () => 'p2',
    producer_seq: (e) => e.producer_seq + 1000,
  }

  it('has a change for every event field', () => {
    expect(Object.keys(CHANGES).sort()).toEqual(Object.keys(AccessEvent.shape).sort())
  })

  const original = hashesOf(linkEntries(emptyChain(CHAIN_ID), entries(4), INGESTED_AT))
  const cases = Object.keys(CHANGES).flatMap((field) => [0, 1, 3].map((row) => [field as keyof AccessEvent, row] as const))

  it.each(cases)('changing %s of row %d changes that hash and every later one', (field, row) => {
    const changed = entries(4, (i, e) => (i === row ? { ...e, [field]: CHANGES[field](e) } : e))
    expect(AccessEvent.safeParse(changed[row]!.event).success).toBe(true)
    const hashes = hashesOf(linkEntries(emptyChain(CHAIN_ID), changed, INGESTED_AT))
    for (let i = 0; i < hashes.length; i++) {
      if (i < row) expect(hashes[i]).toBe(original[i])
      else expect(hashes[i], `row ${i}`).not.toBe(original[i])
    }
  })

  it('changing the Kafka offset or schema version changes the hash too', () => {
    const base = entries(2)
    const moved = base.map((e, i) => (i === 0 ? { ...e, offset: e.offset + 1n } : e))
    const versioned = base.map((e, i) => (i === 0 ? { ...e, schemaVersion: 2 } : e))
    for (const other of [moved, versioned]) {
      const a = hashesOf(linkEntries(emptyChain(CHAIN_ID), base, INGESTED_AT))
      const b = hashesOf(linkEntries(emptyChain(CHAIN_ID), other, INGESTED_AT))
      expect(b[0]).not.toBe(a[0])
      expect(b[1]).not.toBe(a[1])
    }
  })
})
