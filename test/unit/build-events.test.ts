import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { uuidv7 } from '../../common/uuid.js'
import { buildEvents, type EventContext } from '../../producers/build-events.js'
import type { AccessEvent as AccessEventType } from '../../schemas/access-event.js'
import { ProducerError } from '../../producers/errors.js'
import { AccessEvent } from '../../schemas/access-event.js'
import { ReadInput } from '../../schemas/read-input.js'
import { thrownBy } from '../helpers/thrown.js'

const KEY = 'k'.repeat(32)
const ctx = (over: Partial<EventContext> = {}): EventContext => ({
  service: 'billing',
  environment: 'test',
  producerId: 'billing:test:1',
  sessionHashKey: KEY,
  sqlDialect: 'postgres',
  recordIdBudget: () => 64 * 1024,
  maxMessageBytes: 64 * 1024,
  ...over,
})

const read = (over: Partial<ReadInput> = {}) =>
  ReadInput.parse({
    principal: { id: 'alice' },
    resource: { database: 'crm', table: 'customers' },
    columns: ['id', 'email'],
    recordIds: ['1', '2'],
    ...over,
  })

const thrown = (fn: () => unknown): ProducerError => thrownBy(ProducerError, fn)

const asEvent = (d: AccessEventType, seq: number) => ({ ...d, event_id: uuidv7(), producer_seq: seq })

describe('buildEvents splitting', () => {
  const ids = Array.from({ length: 100_000 }, (_, i) => `rec-${i}`)
  const maxRecordIdBytes = 64 * 1024
  const drafts = buildEvents(read({ recordIds: ids }), ctx({ recordIdBudget: () => maxRecordIdBytes, maxMessageBytes: maxRecordIdBytes }))

  it('splits a large read into several parts numbered 0..n-1 under one read id', () => {
    expect(drafts.length).toBeGreaterThan(1)
    expect(new Set(drafts.map((d) => d.read_id)).size).toBe(1)
    expect(drafts.map((d) => d.part_index)).toEqual(drafts.map((_, i) => i))
    for (const d of drafts) expect(d.part_count).toBe(drafts.length)
  })

  it('names every record exactly once, in order', () => {
    expect(drafts.flatMap((d) => d.record_ids)).toEqual(ids)
  })

  it('keeps each part within the record-id budget (UTF-8 bytes + up to 3 length bytes per id)', () => {
    for (const d of drafts) {
      const size = d.record_ids.reduce((n, id) => n + Buffer.byteLength(id) + 3, 0)
      expect(size).toBeLessThanOrEqual(maxRecordIdBytes)
      expect(d.record_ids.length).toBeGreaterThan(0)
    }
  })

  it('gives every part the whole read’s row count and the same read fields', () => {
    for (const d of drafts) {
      expect(d.row_count).toBe(100_000)
      const { record_ids: _r, part_index: _p, event_id: _e, producer_seq: _s, ...rest } = d
      const { record_ids: _r0, part_index: _p0, event_id: _e0, producer_seq: _s0, ...first } = drafts[0]!
      expect(rest).toEqual(first)
    }
  })

  it('numbers parts consecutively with distinct event ids', () => {
    expect(drafts.map((d) => d.producer_seq)).toEqual(drafts.map((_, i) => i + 1))
    expect(new Set(drafts.map((d) => d.event_id)).size).toBe(drafts.length)
  })

  it('produces parts that are valid access events once numbered', () => {
    drafts.forEach((d, i) => expect(AccessEvent.safeParse(asEvent(d, i + 1)).success).toBe(true))
  })

  it('keeps a small read in one part', () => {
    const one = buildEvents(read(), ctx())
    expect(one).toHaveLength(1)
    expect(one[0]).toMatchObject({ part_index: 0, part_count: 1, record_ids: ['1', '2'], row_count: 2 })
  })

  it('turns numeric and bigint record ids into strings', () => {
    const [d] = buildEvents(read({ recordIds: [7, 2n ** 70n, 'x'] }), ctx())
    expect(d!.record_ids).toEqual(['7', '1180591620717411303424', 'x'])
  })

  it('throws READ_TOO_LARGE for a single id that cannot fit', () => {
    const err = thrown(() => buildEvents(read({ recordIds: ['a', 'x'.repeat(98)] }), ctx({ recordIdBudget: () => 100, maxMessageBytes: 100 })))
    expect(err.code).toBe('READ_TOO_LARGE')
    expect(err.retriable).toBe(false)
    // The largest id that fits still goes through.
    expect(buildEvents(read({ recordIds: ['x'.repeat(97)] }), ctx({ recordIdBudget: () => 100, maxMessageBytes: 100 }))).toHaveLength(1)
  })
})

describe('buildEvents privacy', () => {
  const sessionId = 'sess-7f3a9c-secret-cookie-value'

  it('refuses a sessionId when the producer has no key (CONFIG_INVALID)', () => {
    const err = thrown(() => buildEvents(read({ sessionId }), ctx({ sessionHashKey: undefined })))
    expect(err.code).toBe('CONFIG_INVALID')
  })

  it('sends HMAC-SHA256 of the session id under the key, never the id', () => {
    const [d] = buildEvents(read({ sessionId }), ctx())
    expect(d!.session_hash?.equals(createHmac('sha256', KEY).update(sessionId).digest())).toBe(true)
    expect(JSON.stringify(d)).not.toContain(sessionId)
    expect(JSON.stringify(d)).not.toContain(Buffer.from(sessionId).toString('hex'))
  })

  it('a different key gives a different session hash', () => {
    const [a] = buildEvents(read({ sessionId }), ctx())
    const [b] = buildEvents(read({ sessionId }), ctx({ sessionHashKey: Buffer.alloc(32, 1) }))
    expect(a!.session_hash?.equals(b!.session_hash!)).toBe(false)
  })

  it('a producer’s session cache gives each id its own HMAC, stays bounded, and keeps no very long id', () => {
    const sessionHashes = new Map<string, Buffer>()
    const hmac = (id: string) => createHmac('sha256', KEY).update(id).digest()
    for (let i = 0; i < 5000; i += 1) {
      const id = `s-${i}`
      expect(buildEvents(read({ sessionId: id }), ctx({ sessionHashes }))[0]!.session_hash?.equals(hmac(id))).toBe(true)
    }
    // A session's later reads are answered from the cache.
    const again = buildEvents(read({ sessionId: 's-4999' }), ctx({ sessionHashes }))[0]!.session_hash
    expect(again).toBe(sessionHashes.get('s-4999'))
    // Past the bound the oldest ids went: s-0 is hashed again, and right.
    expect(sessionHashes.size).toBe(4096)
    expect(sessionHashes.has('s-0')).toBe(false)
    expect(buildEvents(read({ sessionId: 's-0' }), ctx({ sessionHashes }))[0]!.session_hash?.equals(hmac('s-0'))).toBe(true)
    const long = 'x'.repeat(257)
    expect(buildEvents(read({ sessionId: long }), ctx({ sessionHashes }))[0]!.session_hash?.equals(hmac(long))).toBe(true)
    expect(sessionHashes.has(long)).toBe(false)
    // The cache is per key: another producer's key never answers from it.
    const other = buildEvents(read({ sessionId: 's-1' }), ctx({ sessionHashKey: Buffer.alloc(32, 1) }))[0]!
    expect(other.session_hash?.equals(hmac('s-1'))).toBe(false)
  })

  it('leaves session_hash null without a sessionId', () => {
    expect(buildEvents(read(), ctx())[0]!.session_hash).toBeNull()
  })

  it('sends the fingerprint of the query, not its literals', () => {
    const query = "SELECT id, email FROM customers WHERE email = 'alice@example.com' AND born = 19850302"
    const [d] = buildEvents(read({ query }), ctx())
    expect(d!.query_fingerprint).toBe('SELECT id, email FROM customers WHERE email = ? AND born = ?')
    expect(JSON.stringify(d)).not.toContain('alice@example.com')
    expect(JSON.stringify(d)).not.toContain('19850302')
  })

  it('passes a caller-computed fingerprint through when there is no SQL', () => {
    expect(buildEvents(read({ queryFingerprint: 'find customers by id' }), ctx())[0]!.query_fingerprint).toBe('find customers by id')
  })

  it('converts a Date occurredAt to microseconds', () => {
    const [d] = buildEvents(read({ occurredAt: new Date(1_700_000_000_123) }), ctx())
    expect(d!.occurred_at).toBe(1_700_000_000_123_000)
  })
})
