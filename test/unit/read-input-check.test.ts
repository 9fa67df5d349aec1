import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LIMITS, MAX_LONG } from '../../schemas/access-event.js'
import { checkReadInput } from '../../schemas/read-input-check.js'
import { ReadInput } from '../../schemas/read-input.js'

/**
 * The SDK's hand check (schemas/read-input-check.ts) may only take the
 * common read off zod's hands: whatever it accepts, ReadInput accepts with
 * the same result, and the reads applications send every day take the fast
 * path. Valid reads and mutations of them (each field set to values at and
 * past its limits, of other types, or an unknown key) go through both. The
 * seed is fixed so a failure replays.
 */
const SEED = Number(process.env['AGREEMENT_SEED'] ?? 20_261_205)
const RUNS = Number(process.env['AGREEMENT_RUNS'] ?? 4000)

const base = () => ({
  principal: { id: 'clerk.marta', type: 'user' as const },
  sessionId: 'sess-1',
  clientIp: '203.0.113.7',
  resource: { database: 'registry', table: 'applicants' },
  columns: ['id', 'full_name', 'birth_date'],
  recordIds: ['100042', 100043, 'k/7'],
  rowCount: 3,
  query: 'SELECT id, full_name, birth_date FROM applicants WHERE id = $1',
  dbSession: '4242',
  statementDigest: 'a'.repeat(64),
  purpose: 'case 2026-118',
  traceId: 't-1',
  outcome: 'success' as const,
  occurredAt: 1_796_000_000_000_000,
})

const ODD = fc.constantFrom<unknown>(
  undefined, null, '', ' ', 'x', 'x'.repeat(256), 'x'.repeat(257), 'x'.repeat(512), 'x'.repeat(513), 'x'.repeat(1024), 'x'.repeat(1025),
  '\u{1F600}'.repeat(256), '\u{1F600}'.repeat(129), '\ud800', 0, -0, -1, 0.5, 1, 3, 2, MAX_LONG, MAX_LONG + 1, 2 ** 53, NaN, Infinity, 1n, true, false,
  [], ['a'], [''], ['a', 1], [undefined], new Array(2), {}, { id: 'a' }, { id: 'a', extra: 1 }, { database: 'd', table: 't' }, new Date(0),
  'user', 'service', 'system', 'read', 'export', 'search', 'denied', 'error', 'nope', '::1', 'fe80::1%eth0', '1.2.3.4', '999.1.1.1',
  '0', '123456789012345678901', 'A'.repeat(64), 'f'.repeat(64), 'f'.repeat(63), Symbol('s'), () => 'x',
)

const FIELDS = [...Object.keys(base()), 'action', 'recordIdsComplete', 'queryFingerprint', 'unknownKey']
const NESTED = ['principal.id', 'principal.type', 'principal.onBehalfOf', 'principal.extra', 'resource.database', 'resource.table', 'resource.extra']

/** Sets `path` (a key, or parent.key) of a fresh base read; `undefined` as a value of 'delete' removes the key. */
function mutate(path: string, value: unknown, remove: boolean): Record<string, unknown> {
  const read: Record<string, unknown> = base()
  const [first, second] = path.split('.') as [string, string | undefined]
  const target = second === undefined ? read : (read[first] = { ...(read[first] as object) }) as Record<string, unknown>
  const key = second ?? first
  if (remove) delete target[key]
  else target[key] = value
  return read
}

function expectAgreement(value: unknown): boolean {
  const fast = checkReadInput(value)
  if (fast === undefined) return false
  const zod = ReadInput.safeParse(value)
  expect(zod.success).toBe(true)
  expect(fast).toEqual(zod.data)
  return true
}

describe('checkReadInput against ReadInput', () => {
  it('the everyday read, minimal or full, takes the fast path with zod’s result', () => {
    const minimal = { principal: { id: 'a' }, resource: { database: 'd', table: 't' }, columns: ['c'], recordIds: [] }
    expect(expectAgreement(minimal)).toBe(true)
    expect(expectAgreement(base())).toBe(true)
    expect(expectAgreement({ ...base(), principal: { id: 'svc', type: 'service', onBehalfOf: 'alice' }, action: 'export', recordIdsComplete: false })).toBe(true)
    // zod ignores symbol keys, and so does the hand check.
    expect(expectAgreement({ ...base(), [Symbol('s')]: 1 })).toBe(true)
    expect(expectAgreement({ ...base(), recordIds: Array.from({ length: 1000 }, (_, i) => `id-${i}`), rowCount: 1000 })).toBe(true)
  })

  it('never accepts a mutated read zod refuses, nor returns other data than zod', () => {
    let fastTaken = 0
    fc.assert(
      fc.property(fc.constantFrom(...FIELDS, ...NESTED), ODD, fc.boolean(), (path, value, remove) => {
        if (expectAgreement(mutate(path, value, remove))) fastTaken += 1
      }),
      { seed: SEED, numRuns: RUNS },
    )
    // The property is not vacuous: some mutations stay valid and go fast.
    expect(fastTaken).toBeGreaterThan(RUNS / 20)
  })

  it('two and three mutations at once agree too', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...FIELDS), ODD), { minLength: 2, maxLength: 3 }), (changes) => {
        const read: Record<string, unknown> = base()
        for (const [key, value] of changes) read[key] = value
        expectAgreement(read)
      }),
      { seed: SEED, numRuns: RUNS / 4 },
    )
  })

  it('leaves to zod what it does not check by hand: a Date, bigint ids, a class instance, a non-object', () => {
    for (const odd of [
      { ...base(), occurredAt: new Date(1_796_000_000_000) },
      { ...base(), recordIds: [1n, 2n] },
      Object.assign(Object.create({ inherited: true }) as object, base()),
      null, 'read', [base()], 42,
    ]) {
      expect(checkReadInput(odd)).toBeUndefined()
    }
  })

  it('reads each property once: a getter cannot pass the check with one value and be recorded with another', () => {
    let reads = 0
    const read = base() as Record<string, unknown>
    Object.defineProperty(read, 'purpose', {
      enumerable: true,
      get: () => {
        reads += 1
        return reads === 1 ? 'ok' : 'x'.repeat(LIMITS.text + 1)
      },
    })
    const checked = checkReadInput(read)
    expect(reads).toBe(1)
    expect(checked?.purpose).toBe('ok')
  })

  it('reads an array’s length once: a Proxy answering the bound with 1 and the loop with 2,000 records 1 column, never past the limit', () => {
    const shifting = <T>(items: T[], first: number): T[] => {
      let reads = 0
      return new Proxy(items, { get: (t, k, r) => (k === 'length' ? (++reads === 1 ? first : t.length) : Reflect.get(t, k, r)) as unknown })
    }
    const columns = Array.from({ length: LIMITS.columns + 976 }, (_, i) => `c${i}`)
    const checked = checkReadInput({ ...base(), columns: shifting(columns, 1) })
    expect(checked?.columns).toEqual(['c0'])
    const ids = Array.from({ length: 5000 }, (_, i) => `r${i}`)
    const withIds = checkReadInput({ ...base(), rowCount: undefined, recordIds: shifting(ids, 2) })
    expect(withIds?.recordIds).toEqual(['r0', 'r1'])
  })

  it('copies the arrays: changing the caller’s arrays afterwards changes nothing checked', () => {
    const read = base()
    const checked = checkReadInput(read)!
    read.columns.push('x'.repeat(LIMITS.name + 1))
    read.recordIds.push('late')
    expect(checked.columns).toEqual(['id', 'full_name', 'birth_date'])
    expect(checked.recordIds).toEqual(['100042', 100043, 'k/7'])
  })
})
