import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { namedIssues } from '../../common/zod-issues.js'
import { findEventIssues } from '../../consumers/check-event.js'
import { IngestError } from '../../consumers/errors.js'
import { assertAccessEvent } from '../../consumers/validate-event.js'
import { ACTIONS, AccessEvent, LIMITS, MAX_LONG, OUTCOMES, PRINCIPAL_TYPES } from '../../schemas/access-event.js'
import { makeEvent } from '../helpers/events.js'
import { thrownBy } from '../helpers/thrown.js'

/**
 * The writer's hand-written check (consumers/check-event.ts) must accept
 * exactly what the zod AccessEvent accepts, and name the same fields in the
 * same order. Valid events and mutations of them (every field replaced by
 * values at, below and above its limits, of the wrong type, missing, plus
 * unknown keys) go through both. The seed is fixed so a failure replays;
 * AGREEMENT_SEED and AGREEMENT_RUNS override.
 */
const SEED = Number(process.env['AGREEMENT_SEED'] ?? 20_261_205)
const RUNS = Number(process.env['AGREEMENT_RUNS'] ?? 3000)
/** About 1 s per 3000 runs on the 2-core machine; the margin is for a busy `npm test`. */
const TIMEOUT_MS = Math.max(10_000, RUNS * 3)

const KEYS = Object.keys(AccessEvent.shape)

/** zod's verdict as the old validator named it, or 'threw' (zod lets a throwing getter's exception out). */
function zodFields(value: unknown): string[] | 'threw' {
  try {
    const result = AccessEvent.safeParse(value)
    return result.success ? [] : namedIssues(result.error, '(event)').map((i) => i.key)
  } catch {
    return 'threw'
  }
}

function checkFields(value: unknown): string[] {
  const found = findEventIssues(value, Number.MAX_SAFE_INTEGER)
  if (found === undefined) return []
  expect(found.total).toBe(found.named.length)
  return found.named.map((i) => i.field)
}

/** Same acceptance, same fields in the same order; where zod throws, the check refuses. */
function expectAgreement(value: unknown): void {
  const zod = zodFields(value)
  const check = checkFields(value)
  if (zod === 'threw') expect(check.length).toBeGreaterThan(0)
  else expect(check).toEqual(zod)
}

// ---------------------------------------------------------------- values

/** Pieces of a string: one code point each, except lone surrogates, which pair up when a high one meets a low one. */
const PIECES = ['a', 'a', 'a', 'é', '\u{1F600}', '\ud800', '\udc00'] as const

/** Strings of about `n` code points, mixing astral characters and lone surrogates (zod counts code points). */
function stringsNear(n: number): fc.Arbitrary<string> {
  const sizes = [...new Set([Math.max(0, n - 1), n, n + 1])]
  return fc.oneof(
    fc.constantFrom(...sizes.map((k) => 'x'.repeat(k)), ...sizes.map((k) => '\u{1F600}'.repeat(k)), 'x'.repeat(2 * n), 'x'.repeat(2 * n + 1)),
    fc.constantFrom(...sizes).chain((k) => fc.array(fc.constantFrom(...PIECES), { minLength: k, maxLength: k }).map((p) => p.join(''))),
  )
}

/** Values no string field takes; some of them have a `length`, which zod measures anyway. */
const NOT_STRINGS = fc.constantFrom<unknown>(undefined, null, 0, -0, 1, NaN, true, 1n, [], ['a'], new Array(300), Buffer.alloc(3), { length: 2 }, { length: NaN }, {}, () => 'a', Symbol('s'))

function stringField(min: number, max: number, nullable: boolean): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: stringsNear(max) },
    { weight: 2, arbitrary: stringsNear(min) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
    { weight: 2, arbitrary: NOT_STRINGS },
    { weight: 1, arbitrary: fc.constant(nullable ? null : '') },
  )
}

function integerField(min: number, max: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constantFrom<unknown>(min - 1, min, min + 1, max - 1, max, max + 1, -0, 0.5, max + 0.5, -1, NaN, Infinity, -Infinity),
    fc.constantFrom<unknown>(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, 2 ** 60, -(2 ** 60), Number.MIN_SAFE_INTEGER, MAX_LONG, MAX_LONG + 1, Number.EPSILON, Number.MAX_VALUE),
    fc.constantFrom<unknown>('1', 1n, null, undefined, true, [1], new Number(1)),
    fc.integer({ min: min - 5, max: Math.min(max, 2 ** 31 - 1) }),
    fc.double(),
  )
}

function enumField(values: readonly string[]): fc.Arbitrary<unknown> {
  return fc.oneof(fc.constantFrom<unknown>(...values), fc.constantFrom<unknown>(...values.map((v) => v.toUpperCase()), `${values[0]} `, '', null, undefined, 0, ...ACTIONS, ...OUTCOMES, ...PRINCIPAL_TYPES))
}

const uuidField: fc.Arbitrary<unknown> = fc.oneof(
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.uuid().map((u) => u.slice(1)),
  fc.uuid().map((u) => `${u}0`),
  fc.uuid().map((u) => `${u}\n`),
  fc.uuid().map((u) => u.replace(/-/g, '')),
  fc.uuid().map((u) => `${u.slice(0, 8)}_${u.slice(9)}`),
  fc.uuid().map((u) => `${u.slice(0, 35)}g`),
  NOT_STRINGS,
)

const ipField: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>('192.0.2.10', '0.0.0.0', '255.255.255.255', '10.0.0.256', '010.0.0.1', '1.2.3', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4 '),
  fc.constantFrom<unknown>('::', '::1', '2001:db8::1', 'FE80::1', 'fe80::1%eth0', 'fe80::1%', '::ffff:192.0.2.1', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '12345::1', '0000:0000:0000:0000:0000:ffff:192.168.100.228'),
  fc.ipV4(),
  fc.ipV6(),
  stringsNear(LIMITS.ip).map((s) => s.replace(/x/g, '0')),
  fc.constant(`${'0'.repeat(LIMITS.ip - 3)}::1`),
  fc.constant(`${'0'.repeat(LIMITS.ip - 2)}::1`),
  fc.constant(null),
  NOT_STRINGS,
)

const sessionHashField: fc.Arbitrary<unknown> = fc.constantFrom<unknown>(
  null,
  Buffer.alloc(32, 1),
  Buffer.alloc(31),
  Buffer.alloc(33),
  Buffer.alloc(0),
  new Uint8Array(32),
  'x'.repeat(32),
  new Array(32).fill(0),
  { length: 32 },
  undefined,
  // instanceof Buffer, but its length getter throws: zod lets the TypeError out.
  Object.create(Buffer.prototype),
)

/** `items` with a hole at `at`: read, it is undefined. */
function withHole(items: string[], at: number): string[] {
  const out = [...items]
  delete out[at]
  return out
}

/** An array of `count` items drawn from `item`, sometimes with a hole. */
function arrayOf(item: fc.Arbitrary<unknown>, counts: readonly number[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.array(item, { maxLength: 4 }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(...counts).chain((n) => fc.tuple(item, fc.nat(n)).map(([odd, at]) => Array.from({ length: n }, (_, i) => (i === at ? odd : 'c')))),
    },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(new Array(3), withHole(['a', 'b'], 0), Object.assign(['a'], { extra: 1 })) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>('abc', 'x'.repeat(2000), null, undefined, {}, { length: 1 }, Buffer.alloc(2)) },
  )
}

/** A pattern field: its valid values, near misses, and non-strings. */
function patternField(valid: readonly string[], invalid: readonly string[]): fc.Arbitrary<unknown> {
  return fc.oneof(fc.constantFrom<unknown>(...valid), fc.constantFrom<unknown>(...invalid), fc.string({ unit: 'binary', maxLength: 8 }), NOT_STRINGS)
}
const DIGEST = 'ab'.repeat(32)

const nameField = stringField(1, LIMITS.name, false)
const nullableNameField = stringField(1, LIMITS.name, true)
const textField = stringField(0, LIMITS.text, true)

const FIELD_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  event_id: uuidField,
  read_id: uuidField,
  part_index: integerField(0, LIMITS.parts - 1),
  part_count: integerField(1, LIMITS.parts),
  occurred_at: integerField(0, MAX_LONG),
  principal_id: nameField,
  principal_type: enumField(PRINCIPAL_TYPES),
  on_behalf_of: nullableNameField,
  session_hash: sessionHashField,
  client_ip: ipField,
  service: nameField,
  environment: nameField,
  action: enumField(ACTIONS),
  db_name: nameField,
  table_name: nameField,
  columns: arrayOf(nameField, [LIMITS.columns - 1, LIMITS.columns, LIMITS.columns + 1]),
  record_ids: arrayOf(stringField(0, LIMITS.recordId, false), [0, 1, 2]),
  record_ids_complete: fc.constantFrom<unknown>(true, false, 0, 1, 'true', null, undefined),
  row_count: integerField(0, MAX_LONG),
  query_fingerprint: stringField(0, LIMITS.fingerprint, false),
  db_session: patternField(['', '0', '4242', '9'.repeat(20)], ['9'.repeat(21), '-1', ' 1', '1 ', '1\n', '1.0', '\u0661', 'x']),
  statement_digest: patternField(['', DIGEST], [DIGEST.toUpperCase(), DIGEST.slice(1), `${DIGEST}0`, `${DIGEST}\n`, `${DIGEST.slice(0, 63)}g`, ' '.repeat(64)]),
  purpose: textField,
  trace_id: textField,
  outcome: enumField(OUTCOMES),
  producer_id: nameField,
  producer_seq: integerField(1, MAX_LONG),
}

/** Valid events: every field inside its limits, some at them. */
const validEvent: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    event_id: fc.uuid(),
    read_id: fc.uuid(),
    part_count: fc.constantFrom(1, 2, LIMITS.parts),
    part_pick: fc.nat(),
    occurred_at: fc.oneof(fc.maxSafeNat().map((n) => Math.min(n, MAX_LONG)), fc.constantFrom(0, MAX_LONG)),
    principal_id: fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }), fc.constant('p'.repeat(LIMITS.name)), fc.constant('\u{1F600}'.repeat(LIMITS.name))),
    principal_type: fc.constantFrom(...PRINCIPAL_TYPES),
    on_behalf_of: fc.option(fc.string({ minLength: 1, maxLength: 12 })),
    session_hash: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b))),
    client_ip: fc.option(fc.oneof(fc.ipV4(), fc.ipV6())),
    action: fc.constantFrom(...ACTIONS),
    columns: fc.oneof(fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 5 }), fc.constant(Array.from({ length: LIMITS.columns }, () => 'c'))),
    record_ids: fc.oneof(fc.array(fc.string({ unit: 'binary', maxLength: 10 }), { maxLength: 12 }), fc.constant<string[]>(['r'.repeat(LIMITS.recordId), ''])),
    record_ids_complete: fc.boolean(),
    query_fingerprint: fc.oneof(fc.string({ maxLength: 40 }), fc.constant('q'.repeat(LIMITS.fingerprint))),
    db_session: fc.oneof(fc.constant(''), fc.bigInt({ min: 0n, max: 10n ** 20n - 1n }).map(String)),
    statement_digest: fc.oneof(fc.constant(''), fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'))),
    purpose: fc.option(fc.oneof(fc.string({ maxLength: 10 }), fc.constant('p'.repeat(LIMITS.text)))),
    producer_seq: fc.oneof(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constant(MAX_LONG)),
  })
  .map(({ part_pick, ...e }) => ({
    ...makeEvent({ ...e, part_index: part_pick % e.part_count }),
    // makeEvent's own ids and order; the record keeps the schema's order.
    event_id: e.event_id,
  }))

type Mutation = { kind: 'set'; key: string; value: unknown } | { kind: 'delete'; key: string } | { kind: 'extra'; key: string; value: unknown }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...KEYS).chain((key) => FIELD_VALUES[key]!.map((value): Mutation => ({ kind: 'set', key, value }))) },
  { weight: 1, arbitrary: fc.constantFrom(...KEYS).map((key): Mutation => ({ kind: 'delete', key })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'Event_id', 'event_id ')), fc.anything())
      .map(([key, value]): Mutation => ({ kind: 'extra', key, value })),
  },
)

function mutate(event: Record<string, unknown>, mutations: readonly Mutation[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...event }
  for (const m of mutations) {
    if (m.kind === 'delete') delete out[m.key]
    // defineProperty: a plain assignment to __proto__ would set the prototype instead of a key.
    else Object.defineProperty(out, m.key, { value: m.value, enumerable: true, writable: true, configurable: true })
  }
  return out
}

// ---------------------------------------------------------------- properties

describe('findEventIssues agrees with zod AccessEvent', () => {
  it('accepts every valid event zod accepts', () => {
    fc.assert(
      fc.property(validEvent, (event) => {
        expect(zodFields(event)).toEqual([])
        expect(checkFields(event)).toEqual([])
      }),
      { seed: SEED, numRuns: Math.ceil(RUNS / 3) },
    )
  }, TIMEOUT_MS)

  it('agrees on mutated events: acceptance, and every field named, in order', () => {
    fc.assert(
      fc.property(validEvent, fc.array(mutation, { minLength: 1, maxLength: 3 }), (event, mutations) => expectAgreement(mutate(event, mutations))),
      { seed: SEED, numRuns: RUNS },
    )
  }, TIMEOUT_MS)

  it('agrees on each field replaced alone (the first problem is the one named first)', () => {
    for (const key of KEYS) {
      fc.assert(
        fc.property(validEvent, FIELD_VALUES[key]!, (event, value) => expectAgreement(mutate(event, [{ kind: 'set', key, value }]))),
        { seed: SEED, numRuns: Math.ceil(RUNS / 30) },
      )
    }
  }, TIMEOUT_MS)

  it('agrees on anything at all', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.object()), (value) => expectAgreement(value)),
      { seed: SEED, numRuns: Math.ceil(RUNS / 3) },
    )
  }, TIMEOUT_MS)
})

// ---------------------------------------------------------------- limits

describe('every limit, exactly', () => {
  /** One value at the limit is accepted and one past it refused, by both, naming the field. */
  it.each([
    ['principal_id', 'p'.repeat(LIMITS.name), 'p'.repeat(LIMITS.name + 1)],
    ['principal_id', '\u{1F600}'.repeat(LIMITS.name), '\u{1F600}'.repeat(LIMITS.name + 1)],
    ['on_behalf_of', 'o'.repeat(LIMITS.name), 'o'.repeat(LIMITS.name + 1)],
    ['table_name', 't', ''],
    ['query_fingerprint', 'q'.repeat(LIMITS.fingerprint), 'q'.repeat(LIMITS.fingerprint + 1)],
    ['purpose', 'p'.repeat(LIMITS.text), 'p'.repeat(LIMITS.text + 1)],
    ['trace_id', '\ud800'.repeat(LIMITS.text), '\ud800'.repeat(LIMITS.text + 1)],
    ['part_count', LIMITS.parts, LIMITS.parts + 1],
    ['part_count', 1, 0],
    ['occurred_at', MAX_LONG, MAX_LONG + 1],
    ['occurred_at', 0, -1],
    ['row_count', MAX_LONG, MAX_LONG + 1],
    ['producer_seq', 1, 0],
    ['producer_seq', MAX_LONG, MAX_LONG + 1],
    ['session_hash', Buffer.alloc(32), Buffer.alloc(33)],
    ['columns', Array.from({ length: LIMITS.columns }, () => 'c'), Array.from({ length: LIMITS.columns + 1 }, () => 'c')],
    ['record_ids', ['r'.repeat(LIMITS.recordId)], ['r'.repeat(LIMITS.recordId + 1)]],
    ['db_session', '9'.repeat(20), '9'.repeat(21)],
    ['db_session', '', ' '],
    ['statement_digest', DIGEST, `${DIGEST}0`],
    ['statement_digest', '', DIGEST.toUpperCase()],
  ])('%s: %#', (key, atLimit, pastLimit) => {
    expect(checkFields(makeEvent({ [key]: atLimit }))).toEqual([])
    expectAgreement(makeEvent({ [key]: atLimit }))
    expect(checkFields(makeEvent({ [key]: pastLimit }))[0]).toMatch(new RegExp(`^${key}(\\.0)?$`))
    expectAgreement(makeEvent({ [key]: pastLimit }))
  })

  it('part_index: the last part of the most parts passes, one more does not', () => {
    expectAgreement(makeEvent({ part_index: LIMITS.parts - 1, part_count: LIMITS.parts }))
    expect(checkFields(makeEvent({ part_index: LIMITS.parts - 1, part_count: LIMITS.parts }))).toEqual([])
    expect(checkFields(makeEvent({ part_index: LIMITS.parts, part_count: LIMITS.parts }))).toEqual(['part_index', 'part_index'])
    expect(checkFields(makeEvent({ part_index: 2, part_count: 2 }))).toEqual(['part_index'])
    expectAgreement(makeEvent({ part_index: LIMITS.parts, part_count: LIMITS.parts }))
  })

  it(`client_ip: ${LIMITS.ip} characters are measured before the address is`, () => {
    const atLimit = `${'0'.repeat(LIMITS.ip - 3)}::1`
    expect(checkFields(makeEvent({ client_ip: atLimit }))).toEqual(['client_ip'])
    expect(checkFields(makeEvent({ client_ip: `0${atLimit}` }))).toEqual(['client_ip', 'client_ip'])
    expectAgreement(makeEvent({ client_ip: atLimit }))
    expectAgreement(makeEvent({ client_ip: `0${atLimit}` }))
  })

  it(`record_ids: ${LIMITS.recordIdsPerEvent.toLocaleString('en-US')} ids pass, one more does not`, () => {
    const ids = new Array<string>(LIMITS.recordIdsPerEvent).fill('')
    expect(checkFields(makeEvent({ record_ids: ids }))).toEqual([])
    ids.push('')
    expect(checkFields(makeEvent({ record_ids: ids }))).toEqual(['record_ids'])
    expectAgreement(makeEvent({ record_ids: ids }))
  }, 60_000)
})

// ---------------------------------------------------------------- hostile shapes

describe('hostile shapes', () => {
  it.each(KEYS)('a getter on %s that throws is refused naming that key (zod lets the exception out)', (key) => {
    const event: Record<string, unknown> = makeEvent()
    Object.defineProperty(event, key, {
      enumerable: true,
      get() {
        throw new Error('boom')
      },
    })
    expect(zodFields(event)).toBe('threw')
    const found = findEventIssues(event, 20)
    expect(found?.named).toEqual([{ field: key, problem: 'reading it threw' }])
  })

  it.each(KEYS)('a Proxy that says %s is not there, while reading it, is refused as zod does', (key) => {
    const event = new Proxy(makeEvent(), { has: (target, k) => k !== key && k in target })
    expect(checkFields(event)).toEqual([key])
    expectAgreement(event)
  })

  it('a transparent Proxy, a null-prototype object, a class instance, reversed keys and inherited keys are all accepted', () => {
    const plain = makeEvent()
    class Decoded {
      constructor() {
        Object.assign(this, plain)
      }
    }
    const shapes: unknown[] = [
      new Proxy(plain, {}),
      Object.assign(Object.create(null) as object, plain),
      new Decoded(),
      Object.fromEntries(Object.entries(plain).reverse()),
      Object.create(plain),
      Object.freeze({ ...plain }),
    ]
    for (const value of shapes) {
      expect(checkFields(value)).toEqual([])
      expectAgreement(value)
    }
  })

  it('an inherited enumerable key is unknown; a symbol key or a non-enumerable key is not', () => {
    const inherited = Object.assign(Object.create({ tenant: 'acme' }) as object, makeEvent())
    expect(checkFields(inherited)).toEqual(['tenant'])
    expectAgreement(inherited)
    const hidden = Object.defineProperty({ ...makeEvent(), [Symbol('s')]: 1 }, 'tenant', { value: 1, enumerable: false })
    expect(checkFields(hidden)).toEqual([])
    expectAgreement(hidden)
    const proto = mutate(makeEvent(), [{ kind: 'extra', key: '__proto__', value: {} }])
    expect(checkFields(proto)).toEqual(['__proto__'])
    expectAgreement(proto)
  })

  it('a revoked Proxy is refused as a whole', () => {
    const { proxy, revoke } = Proxy.revocable(makeEvent(), {})
    revoke()
    expect(zodFields(proxy)).toBe('threw')
    expect(findEventIssues(proxy, 20)?.named).toEqual([{ field: '(event)', problem: 'reading it threw' }])
  })

  it('holes in arrays are undefined items, named by index', () => {
    const event = makeEvent({ columns: withHole(['a', 'b', 'c'], 1), record_ids: new Array<string>(2) })
    expect(checkFields(event)).toEqual(['columns.1', 'record_ids.0', 'record_ids.1'])
    expectAgreement(event)
  })

  it('NaN, ±Infinity, -0, floats, bigints and boxed numbers', () => {
    for (const value of [NaN, Infinity, -Infinity, 0.5, 1n, new Number(1), '0']) expectAgreement(makeEvent({ row_count: value as number }))
    expect(checkFields(makeEvent({ row_count: -0, part_index: -0 }))).toEqual([])
    expectAgreement(makeEvent({ row_count: -0, part_index: -0 }))
  })

  it('lone surrogates are one character each, as zod counts them', () => {
    const lone = '\udc00'.repeat(LIMITS.name)
    expect(checkFields(makeEvent({ principal_id: lone }))).toEqual([])
    expect(checkFields(makeEvent({ principal_id: `${lone}\ud800` }))).toEqual(['principal_id'])
    // A high then a low surrogate is one pair: 256 pairs and one lone unit are 257.
    expect(checkFields(makeEvent({ principal_id: `${'\ud800\udc00'.repeat(LIMITS.name)}\udc00` }))).toEqual(['principal_id'])
  })
})

describe('assertAccessEvent', () => {
  it('names the first 20 problems and counts the rest', () => {
    const err = thrownBy(IngestError, () => assertAccessEvent(makeEvent({ record_ids: Array.from({ length: 50 }, () => 'r'.repeat(LIMITS.recordId + 1)) })))
    expect(err.code).toBe('EVENT_INVALID')
    const issues = err.details?.['issues'] as { field: string; problem: string }[]
    expect(issues).toHaveLength(20)
    expect(issues[0]).toEqual({ field: 'record_ids.0', problem: `must have at most ${LIMITS.recordId} characters` })
    expect(err.details?.['more']).toBe(30)
    expect(err.message).toMatch(/; and 30 more$/)
  })

  it('says what was expected without echoing the value', () => {
    const err = thrownBy(IngestError, () => assertAccessEvent(makeEvent({ principal_id: 42 as unknown as string, client_ip: 'secret-host' })))
    expect(err.details?.['issues']).toEqual([
      { field: 'principal_id', problem: 'expected a string, received number' },
      { field: 'client_ip', problem: 'must be an IPv4 or IPv6 address (no zone id)' },
    ])
    expect(err.message).not.toContain('secret-host')
  })
})
