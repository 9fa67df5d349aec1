import { describe, expect, it } from 'vitest'
import { isUuid, uuidv7 } from '../../common/uuid.js'

describe('uuidv7', () => {
  it('puts the millisecond timestamp in the first 48 bits', () => {
    const ms = Date.UTC(2026, 10, 27, 12, 0, 0, 123)
    expect(uuidv7(ms).replace(/-/g, '').slice(0, 12)).toBe(ms.toString(16).padStart(12, '0'))
    expect(uuidv7(0).startsWith('00000000-0000-7')).toBe(true)
    expect(uuidv7(2 ** 48 - 1).startsWith('ffffffff-ffff-7')).toBe(true)
  })

  it('sets version 7 and the RFC 9562 variant', () => {
    for (let i = 0; i < 2000; i++) expect(uuidv7()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it('sorts by time and never repeats across many random-pool refills', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => uuidv7(1_700_000_000_000 + i))
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('isUuid accepts UUIDs and rejects near misses', () => {
    expect(isUuid(uuidv7())).toBe(true)
    expect(isUuid('0192f3a4-1b2c-7d3e-8f40-123456789ab')).toBe(false)
    expect(isUuid('0192f3a4x1b2c-7d3e-8f40-123456789abc')).toBe(false)
  })
})
