import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BudgetStoreDown, type TakeRequest } from '../../producers/guard/budget-store.js'
import { createMemoryBudgetStore } from '../../producers/guard/memory-budget-store.js'
import { createExtractionGuard } from '../../producers/guard/extraction-guard.js'
import { GuardConfig } from '../../producers/guard/guard-config.js'
import { createLogger } from '../../common/logger.js'

const minute = (limit: number, over: Partial<TakeRequest> = {}): TakeRequest => ({ key: 'k', cost: 1, limits: [{ windowSeconds: 60, limit }], force: false, ...over })

function clockedStore(maxKeys = 1000) {
  let t = 1_700_000_000_000
  const store = createMemoryBudgetStore({ maxKeys, now: () => t })
  return { store, at: (ms: number) => (t = ms), advance: (ms: number) => (t += ms), now: () => t }
}

describe('in-process sliding-window budget store', () => {
  it('takes up to the limit, then refuses without counting the refused read, and says when room comes back', () => {
    const { store, advance } = clockedStore()
    for (let i = 0; i < 10; i++) expect(store.take(minute(10))).toMatchObject({ taken: true, over: undefined })
    const refused = store.take(minute(10))
    expect(refused).toMatchObject({ taken: false, over: { windowSeconds: 60, limit: 10, observed: 11 } })
    // All ten were taken in the same 1 s bucket: it leaves the count 61 s after that bucket began, at the latest.
    expect(refused.retryAfterMs).toBeGreaterThan(60_000)
    expect(refused.retryAfterMs).toBeLessThanOrEqual(61_000)
    advance(refused.retryAfterMs)
    expect(store.take(minute(10)).taken).toBe(true)
  })

  it('a read larger than the limit is refused for good (retry never), and a forced read counts past the limit', () => {
    const { store } = clockedStore()
    expect(store.take(minute(5, { cost: 6 }))).toMatchObject({ taken: false, retryAfterMs: Number.POSITIVE_INFINITY })
    expect(store.take(minute(5, { cost: 6, force: true }))).toMatchObject({ taken: true, over: { observed: 6, limit: 5 } })
    expect(store.take(minute(5))).toMatchObject({ taken: false, over: { observed: 7 } })
  })

  it('checks minute and hour together: a read refused by the hour is not counted in the minute either', () => {
    const { store, advance } = clockedStore()
    const both = (cost: number): TakeRequest => ({ key: 'k', cost, limits: [{ windowSeconds: 60, limit: 100 }, { windowSeconds: 3600, limit: 150 }], force: false })
    expect(store.take(both(100)).taken).toBe(true)
    advance(62_000)
    expect(store.take(both(60))).toMatchObject({ taken: false, over: { windowSeconds: 3600, limit: 150, observed: 160 } })
    expect(store.take(both(50)).taken).toBe(true)
  })

  it('burst at a window boundary: 2 × budget straddling the boundary is refused; no interval of 60 s ever holds more than the limit', () => {
    const { store, at } = clockedStore()
    const limit = 100
    const base = 1_700_000_040_000 - 1 // 1 ms before a bucket (and a fixed-minute) boundary
    at(base)
    expect(store.take(minute(limit, { cost: limit })).taken).toBe(true)
    at(base + 2) // just across the boundary: a fixed window would have reset here
    expect(store.take(minute(limit, { cost: 1 })).taken).toBe(false)
    at(base + 60_000) // 60 s after the burst: still inside [t - 60 s, t]
    expect(store.take(minute(limit, { cost: 1 })).taken).toBe(false)
    at(base + 61_002) // the burst's bucket has left the count
    expect(store.take(minute(limit, { cost: limit })).taken).toBe(true)
  })

  it('property: whatever the arrival times and sizes, records taken in any 60 s interval never exceed the limit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.array(fc.record({ gap: fc.integer({ min: 0, max: 5_000 }), cost: fc.integer({ min: 0, max: 20 }) }), { minLength: 1, maxLength: 300 }), (limit, arrivals) => {
        const { store, advance, now } = clockedStore()
        const taken: { t: number; cost: number }[] = []
        for (const a of arrivals) {
          advance(a.gap)
          if (store.take(minute(limit, { cost: a.cost })).taken) taken.push({ t: now(), cost: a.cost })
        }
        for (const start of taken) {
          const inWindow = taken.filter((x) => x.t >= start.t && x.t <= start.t + 60_000).reduce((s, x) => s + x.cost, 0)
          expect(inWindow).toBeLessThanOrEqual(limit)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('is bounded: past maxKeys a new principal is "store down" (never an eviction an attacker could use), and idle keys are forgotten', () => {
    const { store, advance } = clockedStore(3)
    for (const k of ['a', 'b', 'c']) store.take(minute(10, { key: k }))
    expect(() => store.take(minute(10, { key: 'd' }))).toThrow(BudgetStoreDown)
    // A known principal keeps being counted.
    expect(store.take(minute(10, { key: 'a' })).taken).toBe(true)
    advance(62_000)
    expect(store.take(minute(10, { key: 'd' })).taken).toBe(true)
  })
})

describe('extraction guard throttle (fake clock)', () => {
  it('a throttled read waits exactly until its window has room, then goes on with a `throttle` finding; past throttleMaxMs it is refused', async () => {
    let t = 1_700_000_000_000
    const slept: number[] = []
    const store = createMemoryBudgetStore({ maxKeys: 10, now: () => t })
    const config = GuardConfig.parse({ budgets: { b: { tables: ['people'], limits: { user: { perMinute: 10 } }, action: 'throttle' } }, throttleMaxMs: 5000 })
    const guard = createExtractionGuard(config, { store, logger: createLogger({ level: 'silent' }), keyPrefix: 'p:', now: () => t, sleep: async (ms) => void (slept.push(ms), (t += ms)) })
    const who = { id: 'u', type: 'user' as const }
    expect(guard.check([{ table: 'people', records: 10 }], who)).toBeUndefined()
    t += 58_000
    // Room comes back when the first bucket leaves the count, ~3 s from now: within the 5 s bound.
    const waited = await guard.check([{ table: 'people', records: 1 }], who)
    expect(waited).toMatchObject({ refusal: undefined, findings: [{ action: 'throttle', budget: 'b' }] })
    expect(slept).toHaveLength(1)
    expect(slept[0]).toBeGreaterThan(2000)
    expect(slept[0]).toBeLessThanOrEqual(3001)
    // Now full again for a minute: no room within 5 s, refused at once without sleeping.
    const refused = await guard.check([{ table: 'people', records: 10 }], who)
    expect(refused).toMatchObject({ refusal: { code: 'EXTRACTION_LIMIT' }, findings: [{ action: 'refuse' }] })
    expect(slept).toHaveLength(1)
    expect(guard.stats()).toMatchObject({ throttled: 1, refused: 1 })
  })
})
