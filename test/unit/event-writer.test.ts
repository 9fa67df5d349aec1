import avro from 'avsc'
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_MESSAGE_BYTES } from '../../schemas/access-event.js'
import { createBatchCodec, type BatchOrigin } from '../../schemas/batch-codec.js'
import { SchemaError } from '../../schemas/errors.js'
import { createEventWriter } from '../../schemas/event-writer.js'
import { loadSchemaRegistry, type SchemaVersion } from '../../schemas/registry.js'
import { makeEvent } from '../helpers/events.js'
import { thrownBy } from '../helpers/thrown.js'

/**
 * schemas/event-writer.ts must write exactly avsc's bytes: the chain writer
 * decodes with avsc, and a signature covers the bytes. Generated events go
 * through both and the buffers are compared; invalid ones must be refused by
 * the writer wherever avsc refuses them. The seed is fixed so a failure
 * replays; EVENT_WRITER_SEED and EVENT_WRITER_RUNS override.
 */
const SEED = Number(process.env['EVENT_WRITER_SEED'] ?? 20_261_205)
const RUNS = Number(process.env['EVENT_WRITER_RUNS'] ?? 1500)
const TIMEOUT_MS = Math.max(20_000, RUNS * 10)

const batchRegistry = loadSchemaRegistry(undefined, 'access-batch')

/** The item type of a batch version's events array, found as the codec finds it. */
function eventTypeOf(version: SchemaVersion): avro.types.RecordType {
  const events = (version.type as avro.types.RecordType).fields.find((f) => f.name === 'events')!
  return (events.type as avro.types.ArrayType).itemsType as avro.types.RecordType
}

const eventType = eventTypeOf(batchRegistry.current)
const fieldType = (name: string): avro.Type => eventType.fields.find((f) => f.name === name)!.type
const symbolsOf = (name: string): string[] => (fieldType(name) as avro.types.EnumType).symbols
/** avsc's long range (its isSafeLong). */
const MAX_AVRO_LONG = 2 ** 53 - 2

// One writer for every run, starting tiny: each event grows, reuses or
// releases the scratch the previous one left, as a producer's writer does.
const shared = createEventWriter(eventType, { maxBytes: MAX_MESSAGE_BYTES, initialBytes: 16 })

function avscBytes(event: unknown): Buffer | Error {
  try {
    return eventType.toBuffer(event)
  } catch (err) {
    return err as Error
  }
}

function writerBytes(event: unknown): Buffer | Error {
  try {
    return shared.encode(event)
  } catch (err) {
    return err as Error
  }
}

function expectSameBytes(event: unknown): void {
  const expected = avscBytes(event)
  if (expected instanceof Error) throw new Error(`avsc refused a generated event: ${expected.message}`)
  const actual = shared.encode(event)
  if (!actual.equals(expected)) expect(actual.toString('hex')).toBe(expected.toString('hex'))
}

// ---------------------------------------------------------------- values

/** Code units of every UTF-8 width, a pair, and both lone surrogates (avsc writes those two ways). */
const PIECES = ['a', '\x00', '\x7f', '\x80', 'é', '\u07ff', '\u0800', '€', '\uffff', '\u{1F600}', '\ud800', '\udc00', '\udc00\ud800'] as const

/** Around avsc's 64-byte switch and the one- and two-byte length prefixes, and the fast paths' cut-offs. */
const LENGTHS = [0, 1, 2, 21, 22, 23, 24, 25, 31, 32, 33, 63, 64, 65, 127, 128, 129, 2000, 2049, 8191, 8192, 8193] as const

const asciiOfLength = (n: number): fc.Arbitrary<string> => fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), minLength: n, maxLength: n })
const piecesOfLength = (n: number): fc.Arbitrary<string> => fc.array(fc.constantFrom(...PIECES), { minLength: n, maxLength: n }).map((p) => p.join(''))
/** ASCII with one other piece at a random place: the fast paths meet it late. */
const asciiButOne = (n: number): fc.Arbitrary<string> =>
  fc.tuple(asciiOfLength(Math.max(0, n - 1)), fc.constantFrom(...PIECES), fc.nat()).map(([s, piece, at]) => {
    const i = at % (s.length + 1)
    return s.slice(0, i) + piece + s.slice(i)
  })
/** UTF-8 byte lengths just under, at and over 64, made of 2- and 3-byte units (lone surrogates are 3 bytes either way). */
const NEAR_64_BYTES = ['é'.repeat(31), 'é'.repeat(32), `${'é'.repeat(32)}a`, '\ud800'.repeat(21), `${'\ud800'.repeat(21)}a`, `${'\ud800'.repeat(21)}ab`, '\udc00'.repeat(22), '€'.repeat(22), '\u{1F600}'.repeat(16), `${'\u{1F600}'.repeat(16)}\ud800`]

const anyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...LENGTHS).chain(asciiOfLength) },
  { weight: 3, arbitrary: fc.constantFrom(...LENGTHS).chain(piecesOfLength) },
  { weight: 3, arbitrary: fc.constantFrom(...LENGTHS).chain(asciiButOne) },
  { weight: 2, arbitrary: fc.constantFrom(...NEAR_64_BYTES) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
)
/** Mostly short ASCII, as record ids are. */
const idString: fc.Arbitrary<string> = fc.oneof({ weight: 6, arbitrary: fc.string({ maxLength: 12 }) }, { weight: 1, arbitrary: anyString })

const int: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, 1, -1, 63, 64, -64, -65, 2 ** 30 - 1, 2 ** 30, -(2 ** 30), -(2 ** 30) - 1, 2 ** 31 - 1, -(2 ** 31)),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.nat(1000),
)
const long: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, 1, 2 ** 30 - 1, 2 ** 30, 2 ** 31, 2 ** 52, 2 ** 52 + 1, MAX_AVRO_LONG - 1, MAX_AVRO_LONG, -MAX_AVRO_LONG, -MAX_AVRO_LONG + 1, -(2 ** 52) - 1, -(2 ** 30) - 1),
  fc.maxSafeNat().map((n) => Math.min(n, MAX_AVRO_LONG)),
  fc.maxSafeInteger().map((n) => Math.max(-MAX_AVRO_LONG, Math.min(n, MAX_AVRO_LONG))),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
)
const nullable = <T>(value: fc.Arbitrary<T>): fc.Arbitrary<T | null | undefined> => fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, { weight: 3, arbitrary: value }, { weight: 1, arbitrary: fc.constant(undefined) })
const sessionHash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b))
const recordIds: fc.Arbitrary<string[]> = fc.oneof(
  { weight: 4, arbitrary: fc.array(idString, { maxLength: 12 }) },
  { weight: 2, arbitrary: fc.constantFrom(0, 1, 100).chain((n) => fc.array(idString, { minLength: n, maxLength: n })) },
  { weight: 1, arbitrary: fc.nat(1_000).map((first) => Array.from({ length: 10_000 }, (_, k) => String(first + k * 13))) },
)

/** Events as the SDK builds them, and beyond: every field over its whole Avro range, defaults left out. */
const event: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    event_id: fc.oneof(fc.uuid(), anyString),
    read_id: fc.oneof(fc.uuid(), anyString),
    part_index: int,
    part_count: int,
    occurred_at: long,
    principal_id: anyString,
    principal_type: fc.constantFrom(...symbolsOf('principal_type')),
    on_behalf_of: nullable(anyString),
    session_hash: nullable(sessionHash),
    client_ip: nullable(fc.oneof(fc.ipV4(), fc.ipV6(), anyString)),
    service: anyString,
    environment: anyString,
    action: fc.constantFrom(...symbolsOf('action')),
    db_name: anyString,
    table_name: anyString,
    columns: fc.array(anyString, { maxLength: 6 }),
    record_ids: recordIds,
    record_ids_complete: fc.oneof(fc.boolean(), fc.constant(undefined)),
    row_count: long,
    query_fingerprint: anyString,
    db_session: fc.oneof(fc.constantFrom('', '4242', '9'.repeat(20)), anyString, fc.constant(undefined)),
    statement_digest: fc.oneof(fc.constantFrom('', 'ab'.repeat(32)), anyString, fc.constant(undefined)),
    purpose: nullable(anyString),
    trace_id: nullable(anyString),
    outcome: fc.constantFrom(...symbolsOf('outcome')),
    producer_id: anyString,
    producer_seq: long,
  })
  .map((e) => {
    // A default field left undefined is a field absent: avsc writes its default either way.
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(e)) if (v !== undefined || k.length % 2 === 0) out[k] = v
    return out
  })

/** Values of every field's wrong kinds, and near misses of its right one. */
const WRONG: Record<string, readonly unknown[]> = {
  string: [undefined, null, 0, 1n, true, ['a'], Buffer.from('a'), { length: 1 }, new String('a')],
  int: [undefined, null, 0.5, 2 ** 31, -(2 ** 31) - 1, NaN, Infinity, '1', 1n, true, new Number(1), [1]],
  long: [undefined, null, 0.5, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 60, NaN, Infinity, -Infinity, '1', 1n, true, new Number(1)],
  boolean: [null, 0, 1, 'true', new Boolean(true)],
  enum: [undefined, null, '', 'USER', 'read ', 0, 1, ['read'], ['success'], new String('user')],
  union: [0, 1n, true, ['a'], {}, new Uint8Array(32), Buffer.alloc(31), Buffer.alloc(33), 'x'.repeat(3)],
  array: [undefined, null, 'abc', { length: 1 }, Buffer.alloc(2), [1], ['a', 2], ['a', null], new Array(2)],
}
const kindOf = (t: avro.Type): string => (t.typeName.startsWith('union') ? 'union' : t.typeName)

describe('the event writer writes what avsc writes', () => {
  it(`generated events, byte for byte (${RUNS} runs, seed ${SEED})`, { timeout: TIMEOUT_MS }, () => {
    fc.assert(fc.property(event, expectSameBytes), { seed: SEED, numRuns: RUNS })
  })

  it('every enum symbol, null in every union, each default left out', () => {
    const base = makeEvent({ session_hash: Buffer.alloc(32, 7), on_behalf_of: 'agent', purpose: 'audit', trace_id: 'trace-1' }) as unknown as Record<string, unknown>
    expectSameBytes(base)
    for (const field of eventType.fields) {
      if (field.type.typeName === 'enum') for (const symbol of symbolsOf(field.name)) expectSameBytes({ ...base, [field.name]: symbol })
      if (field.type.typeName.startsWith('union')) expectSameBytes({ ...base, [field.name]: null })
      if (field.defaultValue() !== undefined) {
        const without = { ...base }
        delete without[field.name]
        expectSameBytes(without)
      }
    }
  })

  it('strings at every length and width boundary, in every string field', () => {
    const base = makeEvent() as unknown as Record<string, unknown>
    const strings = [...NEAR_64_BYTES, ...LENGTHS.flatMap((n) => ['x'.repeat(n), 'é'.repeat(n), '\u{1F600}'.repeat(n), '\ud800'.repeat(n), '\udc00'.repeat(n), `${'x'.repeat(n)}\ud800`, `\udc00${'x'.repeat(n)}`])]
    for (const s of strings) {
      expectSameBytes({ ...base, principal_id: s, query_fingerprint: s, columns: [s, s], record_ids: [s, 'x', s], purpose: s, statement_digest: s })
    }
  })

  it('longs and ints across the varint widths, negative ones included', () => {
    const base = makeEvent() as unknown as Record<string, unknown>
    for (let bits = 0; bits <= 53; bits++) {
      for (const n of [2 ** bits - 1, 2 ** bits, -(2 ** bits), -(2 ** bits) - 1]) {
        if (Math.abs(n) > MAX_AVRO_LONG) continue
        expectSameBytes({ ...base, occurred_at: n, row_count: -n, producer_seq: n })
        if (n === (n | 0)) expectSameBytes({ ...base, part_index: n, part_count: -n | 0 })
      }
    }
  })

  it('refuses whatever avsc refuses, in every field, and writes avsc bytes for the rest', () => {
    const base = makeEvent() as unknown as Record<string, unknown>
    let refused = 0
    for (const field of eventType.fields) {
      const kind = kindOf(field.type)
      for (const value of [...WRONG[kind]!, ...(kind === 'union' ? [] : WRONG['string']!)]) {
        const bad = { ...base, [field.name]: value }
        const expected = avscBytes(bad)
        const actual = writerBytes(bad)
        if (expected instanceof Error) {
          expect(actual, `${field.name} = ${String(value)}`).toBeInstanceOf(TypeError)
          refused += 1
        } else if (kind === 'enum' && typeof value !== 'string') {
          // avsc looks a symbol up as a property name, so ['read'] passes as
          // 'read'; the writer takes a symbol only as a string.
          expect(actual, `${field.name} = ${String(value)}`).toBeInstanceOf(TypeError)
        } else {
          expect(actual, `${field.name} = ${String(value)}`).toEqual(expected)
        }
      }
    }
    expect(refused).toBeGreaterThan(100)
    for (const notAnEvent of [null, undefined, 'event', 7, []]) expect(writerBytes(notAnEvent)).toBeInstanceOf(TypeError)
  })

  it('refuses an enum symbol named like an Object.prototype property, which avsc writes as the first symbol', () => {
    const named = { ...makeEvent(), action: 'toString' }
    expect(eventType.toBuffer({ ...named, action: 'read' }).equals(eventType.toBuffer(named))).toBe(true)
    expect(writerBytes(named)).toBeInstanceOf(TypeError)
  })

  it('returns a buffer of its own: the next event does not change the last', () => {
    const first = shared.encode(makeEvent({ principal_id: 'first' }))
    const copy = Buffer.from(first)
    shared.encode(makeEvent({ principal_id: 'other', record_ids: Array.from({ length: 5000 }, (_, i) => String(i)) }))
    expect(first.equals(copy)).toBe(true)
  })
})

describe('the event writer is bounded', () => {
  afterEach(() => vi.restoreAllMocks())

  it('takes an event of exactly maxBytes and refuses one byte more', () => {
    fc.assert(
      fc.property(event, (e) => {
        const size = eventType.toBuffer(e).length
        expect(createEventWriter(eventType, { maxBytes: size }).encode(e).length).toBe(size)
        const tight = createEventWriter(eventType, { maxBytes: size - 1, initialBytes: 8 })
        thrownBy(RangeError, () => tight.encode(e))
      }),
      { seed: SEED, numRuns: Math.max(50, Math.floor(RUNS / 10)) },
    )
  })

  it('never allocates more than maxBytes plus one varint, whatever the event claims', () => {
    const maxBytes = 64 * 1024
    const writer = createEventWriter(eventType, { maxBytes, initialBytes: 64 })
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe')
    const huge = [
      makeEvent({ record_ids: Array.from({ length: 100_000 }, (_, i) => `record-${i}`) }),
      makeEvent({ query_fingerprint: 'x'.repeat(10_000_000) }),
      makeEvent({ query_fingerprint: 'é'.repeat(5_000_000) }),
      makeEvent({ columns: Array.from({ length: 1000 }, () => '\u{1F600}'.repeat(200)) }),
    ]
    for (const e of huge) thrownBy(RangeError, () => writer.encode(e))
    const sizes = allocUnsafe.mock.calls.map(([size]) => size)
    expect(sizes.length).toBeGreaterThan(0)
    expect(Math.max(...sizes)).toBeLessThanOrEqual(maxBytes + 10)
    // After a refusal the writer still writes, from its small scratch again.
    allocUnsafe.mockRestore()
    const ordinary = makeEvent()
    expect(writer.encode(ordinary).equals(eventType.toBuffer(ordinary))).toBe(true)
  })

  it('refuses a bound that is not a positive integer', () => {
    for (const maxBytes of [0, -1, 1.5, NaN, Infinity]) thrownBy(RangeError, () => createEventWriter(eventType, { maxBytes }))
  })
})

describe('the event writer is made from the schema', () => {
  const compile = (schema: avro.Schema) => () => createEventWriter(avro.Type.forSchema(schema), { maxBytes: 1024 })
  const record = (type: avro.Schema): avro.Schema => ({ type: 'record', name: 'R', fields: [{ name: 'f', type }] }) as avro.Schema

  it('compiles every released batch version', () => {
    for (const version of batchRegistry.versions) expect(compile(eventTypeOf(version).schema())).not.toThrow()
  })

  it('refuses at construction a type the wire does not use, naming the field', () => {
    const unsupported: avro.Schema[] = [
      'double',
      'float',
      'bytes',
      'null',
      { type: 'map', values: 'string' },
      { type: 'record', name: 'Inner', fields: [{ name: 'x', type: 'int' }] },
      ['null', 'string', 'int'],
      ['string', 'int'],
      { type: 'array', items: 'double' },
    ] as avro.Schema[]
    for (const type of unsupported) expect(compile(record(type))).toThrow(/^f(\[\])?: the event writer does not support Avro/)
    expect(() => createEventWriter(avro.Type.forSchema(['null', 'string'], { wrapUnions: true }), { maxBytes: 1024 })).toThrow(/does not support/)
    expect(() => createEventWriter(avro.Type.forSchema(record(['null', 'string']), { wrapUnions: true }), { maxBytes: 1024 })).toThrow(/^f: .*union:wrapped/)
    expect(() => createEventWriter(avro.Type.forSchema('string'), { maxBytes: 1024 })).toThrow(/\(record\)/)
  })

  it('writes a record of no fields as avsc does: no bytes', () => {
    const empty = avro.Type.forSchema({ type: 'record', name: 'Empty', fields: [] })
    expect(createEventWriter(empty, { maxBytes: 1 }).encode({ extra: 1 })).toEqual(empty.toBuffer({ extra: 1 }))
  })

  it('supports a union with null second, and writes what avsc writes for it', () => {
    const type = avro.Type.forSchema(record(['string', 'null']))
    const writer = createEventWriter(type, { maxBytes: 1024 })
    for (const f of [null, '', 'x', 'é']) expect(writer.encode({ f }).equals(type.toBuffer({ f }))).toBe(true)
  })
})

describe('the framer writes the current version with the event writer', () => {
  const origin: BatchOrigin = { keyId: '', producerId: 'p:h:1', service: 'test-service', environment: 'test' }

  it('the same bodies as avsc, and a batch of them decodes to the events', () => {
    const batches = createBatchCodec(batchRegistry)
    const framer = batches.framer(origin)
    const sent = [
      makeEvent({ ...fromOrigin(origin), record_ids: [] }),
      makeEvent({ ...fromOrigin(origin), principal_id: 'Zoë \u{1F600}', record_ids: Array.from({ length: 100 }, (_, i) => `id-${i}`), session_hash: Buffer.alloc(32, 3), purpose: 'é'.repeat(40) }),
      makeEvent({ ...fromOrigin(origin), occurred_at: MAX_AVRO_LONG, row_count: MAX_AVRO_LONG, producer_seq: MAX_AVRO_LONG, db_session: '4242', statement_digest: 'ab'.repeat(32) }),
    ]
    const bodies = sent.map((e) => framer.encodeEvent(e))
    bodies.forEach((body, i) => expect(body.equals(eventType.toBuffer(sent[i]))).toBe(true))
    const decoded = batches.decode(framer.frame(bodies, bodies.reduce((n, b) => n + b.length, 0)))
    expect(decoded.events).toEqual(sent)
  })

  it('an older version still encodes with avsc', () => {
    const v2 = batchRegistry.versions.find((v) => v.version === 2)!
    const e = makeEvent({ ...fromOrigin(origin) })
    expect(createBatchCodec(batchRegistry).framer(origin, 2).encodeEvent(e).equals(eventTypeOf(v2).toBuffer(e))).toBe(true)
  })

  it('an event too large for any message the decoder reads is EVENT_INVALID, caused by the bound', () => {
    const batches = createBatchCodec(batchRegistry, { maxMessageBytes: 4096 })
    const framer = batches.framer(origin)
    const err = thrownBy(SchemaError, () => framer.encodeEvent(makeEvent({ ...fromOrigin(origin), record_ids: Array.from({ length: 1000 }, (_, i) => `id-${i}`) })))
    expect(err.code).toBe('EVENT_INVALID')
    expect(err.cause).toBeInstanceOf(RangeError)
    const fits = makeEvent({ ...fromOrigin(origin) })
    const body = framer.encodeEvent(fits)
    expect(batches.decode(framer.frame([body], body.length)).events).toEqual([fits])
  })

  it('a value avsc refuses is EVENT_INVALID', () => {
    const framer = createBatchCodec(batchRegistry).framer(origin)
    const err = thrownBy(SchemaError, () => framer.encodeEvent({ ...makeEvent(), part_index: 0.5 }))
    expect(err.code).toBe('EVENT_INVALID')
    expect(err.cause).toBeInstanceOf(TypeError)
    expect(err.message).toMatch(/part_index/)
  })
})

function fromOrigin(origin: BatchOrigin): { producer_id: string; service: string; environment: string } {
  return { producer_id: origin.producerId, service: origin.service, environment: origin.environment }
}
