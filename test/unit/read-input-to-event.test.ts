import { describe, expect, it } from 'vitest'
import { buildEvents, type EventContext } from '../../producers/build-events.js'
import { AccessEvent, LIMITS } from '../../schemas/access-event.js'
import { ReadInput } from '../../schemas/read-input.js'

/**
 * Regression: the SDK accepted reads (a 1969 Date, a 30 KB query, a huge
 * bigint id) whose events the chain writer then refused after the broker had
 * acknowledged them. Every read ReadInput accepts must build valid events.
 */
const ctx: EventContext = {
  service: 's'.repeat(256),
  environment: 'e'.repeat(256),
  producerId: 'p'.repeat(256),
  sessionHashKey: 'k'.repeat(32),
  sqlDialect: 'postgres',
  recordIdBudget: () => 1_000_000,
  maxMessageBytes: 1_000_000,
}

const base = { principal: { id: 'clerk' }, resource: { database: 'db', table: 't' }, columns: ['id'], recordIds: [1] }

describe('every read ReadInput accepts builds events AccessEvent accepts', () => {
  const edge: Record<string, unknown>[] = [
    base,
    { ...base, principal: { id: 'x'.repeat(LIMITS.name), type: 'system', onBehalfOf: 'y'.repeat(LIMITS.name) } },
    { ...base, occurredAt: new Date(0) },
    { ...base, occurredAt: 0 },
    { ...base, query: `SELECT ${Array.from({ length: 3000 }, (_, i) => `column_number_${i}`).join(', ')} FROM t` },
    { ...base, queryFingerprint: 'f'.repeat(LIMITS.fingerprint) },
    { ...base, recordIds: ['', 'z'.repeat(LIMITS.recordId), 2n ** 64n, -1, 1.5] },
    { ...base, columns: Array.from({ length: LIMITS.columns }, (_, i) => `c${i}`) },
    { ...base, clientIp: '::ffff:10.0.0.1', sessionId: 's', purpose: 'p'.repeat(LIMITS.text), traceId: 't'.repeat(LIMITS.text) },
    { ...base, recordIds: [], rowCount: 2 ** 53 - 2, recordIdsComplete: false, outcome: 'denied', action: 'export' },
  ]
  it.each(edge.map((e, i) => [i, e] as const))('edge read %i', (_i, raw) => {
    const input = ReadInput.parse(raw)
    for (const event of buildEvents(input, ctx)) {
      const result = AccessEvent.safeParse(event)
      expect(result.success ? [] : result.error.issues).toEqual([])
    }
  })

  it('refuses what AccessEvent would refuse, up front', () => {
    for (const bad of [
      { ...base, occurredAt: new Date('1969-12-31') },
      { ...base, recordIds: [10n ** 600n] },
      { ...base, clientIp: 'fe80::1%eth0' },
    ]) {
      expect(ReadInput.safeParse(bad).success, JSON.stringify(bad, (_k, v: unknown) => (typeof v === 'bigint' ? 'bigint' : v))).toBe(false)
    }
  })

  it('cuts an over-long fingerprint and marks the cut', () => {
    const [event] = buildEvents(ReadInput.parse({ ...base, query: `SELECT ${'a, '.repeat(20_000)}b FROM t` }), ctx)
    expect(event!.query_fingerprint.length).toBe(LIMITS.fingerprint)
    expect(event!.query_fingerprint.endsWith('…')).toBe(true)
  })
})
