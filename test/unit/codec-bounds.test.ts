import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import avro from 'avsc'
import { afterAll, describe, expect, it } from 'vitest'
import { IngestError } from '../../consumers/errors.js'
import { AuditProducerConfig } from '../../producers/config.js'
import { assertAccessEvent } from '../../consumers/validate-event.js'
import { AccessEvent, LIMITS, MAX_MESSAGE_BYTES } from '../../schemas/access-event.js'
import { createBodyScanner, minEncodedBytes } from '../../schemas/body-scanner.js'
import { createCodec, HEADER_LENGTH } from '../../schemas/codec.js'
import { ACCESS_EVENT_BOUNDS, UTF8_BYTES_PER_CHAR } from '../../schemas/decode-bounds.js'
import { SchemaError } from '../../schemas/errors.js'
import { ReadInput } from '../../schemas/read-input.js'
import { DEFAULT_SCHEMA_DIR, loadSchemaRegistry } from '../../schemas/registry.js'
import { recordIdsCountBomb, spliceField, zigzagVarint } from '../helpers/avro-bombs.js'
import { makeEvent } from '../helpers/events.js'
import { thrownBy } from '../helpers/thrown.js'

const registry = loadSchemaRegistry()
const codec = createCodec(registry)
const writerType = registry.current.type

/**
 * Decodes and returns the refusal, with how long it took: the fastest of
 * three tries, since a bomb is slow every time and a busy core only once.
 */
function refusal(message: Buffer, using = codec): { err: SchemaError; ms: number } {
  let ms = Infinity
  let err: SchemaError | undefined
  for (let i = 0; i < 3; i++) {
    const start = performance.now()
    err = thrownBy(SchemaError, () => using.decode(message))
    ms = Math.min(ms, performance.now() - start)
  }
  return { err: err!, ms }
}

const varintOf = (n: number | bigint) => zigzagVarint(BigInt(n))

describe('the count bomb of issue 11', () => {
  it.each([
    ['2^31', 2n ** 31n],
    ['2^25', 2n ** 25n],
    ['2^62', 2n ** 62n],
    ['2^63 - 1', 2n ** 63n - 1n],
  ])('a record_ids count of %s is refused in microseconds, naming the field and the bytes left', (_label, count) => {
    const bomb = recordIdsCountBomb(codec, writerType, makeEvent(), count)
    expect(bomb.length).toBeLessThan(400)
    const { err, ms } = refusal(bomb)
    expect(err.code).toBe('MESSAGE_MALFORMED')
    expect(err.retriable).toBe(false)
    expect(err.message).toMatch(/record_ids: a block of \d+ items cannot fit in the \d+ bytes left/)
    expect(err.details).toMatchObject({ field: 'record_ids' })
    expect(ms).toBeLessThan(5)
  })

  it('the 185-byte message of the report: 2^31 declared, refused', () => {
    // The reported message: a short event with one column; its size depends only on its strings.
    const event = makeEvent({ columns: ['id'], principal_id: 'p', producer_id: 'p', service: 's', environment: 'e', db_name: 'd', table_name: 't', query_fingerprint: 'SELECT id FROM t WHERE id IN (?+)' })
    const bomb = recordIdsCountBomb(codec, writerType, event, 2n ** 31n)
    const { err } = refusal(bomb)
    expect(bomb.length).toBeLessThan(200)
    expect(err.details).toMatchObject({ field: 'record_ids', declared: 2 ** 31 })
  })

  it('a count that fits the bytes but is above LIMITS.recordIdsPerEvent is refused naming the limit', () => {
    const over = LIMITS.recordIdsPerEvent + 1
    // Every empty id is one byte (a 0 length): the block fits the message, the limit does not.
    const body = Buffer.concat([varintOf(over), Buffer.alloc(over), Buffer.from([0])])
    const bomb = spliceField(codec, writerType, makeEvent(), 'record_ids', body)
    const { err, ms } = refusal(bomb)
    expect(err.message).toContain(`record_ids: ${over} items, above the ${LIMITS.recordIdsPerEvent} allowed`)
    expect(err.details).toMatchObject({ limit: LIMITS.recordIdsPerEvent })
    expect(ms).toBeLessThan(5)
  })

  it('a count spread over many small blocks is summed against the limit', () => {
    const blocks = [varintOf(3), Buffer.alloc(3), varintOf(LIMITS.columns - 2), Buffer.alloc(LIMITS.columns - 2), Buffer.from([0])]
    const { err } = refusal(spliceField(codec, writerType, makeEvent(), 'columns', Buffer.concat(blocks)))
    expect(err.message).toContain(`columns: ${LIMITS.columns + 1} items, above the ${LIMITS.columns} allowed`)
  })
})

describe('lengths', () => {
  it.each([
    ['principal_id', 2n ** 40n],
    ['query_fingerprint', 2n ** 31n],
    ['event_id', 2n ** 20n],
  ] as const)('a %s length of %s bytes is refused', (field, length) => {
    const { err, ms } = refusal(spliceField(codec, writerType, makeEvent(), field, varintOf(length)))
    expect(err.code).toBe('MESSAGE_MALFORMED')
    expect(err.details).toMatchObject({ field })
    expect(ms).toBeLessThan(5)
  })

  it('a string longer than its field allows, though the message holds it, is refused naming the bound', () => {
    const bytes = LIMITS.name * UTF8_BYTES_PER_CHAR + 1
    const { err } = refusal(spliceField(codec, writerType, makeEvent(), 'principal_id', Buffer.concat([varintOf(bytes), Buffer.alloc(bytes, 0x61)])))
    expect(err.message).toContain(`principal_id: a string of ${bytes} bytes is longer than the ${LIMITS.name * UTF8_BYTES_PER_CHAR} allowed`)
  })

  it('a record id longer than its bound, inside the array, names the items', () => {
    const bytes = LIMITS.recordId * UTF8_BYTES_PER_CHAR + 1
    const { err } = refusal(spliceField(codec, writerType, makeEvent(), 'record_ids', Buffer.concat([varintOf(1), varintOf(bytes), Buffer.alloc(bytes, 0x31), Buffer.from([0])])))
    expect(err.details).toMatchObject({ field: 'record_ids[]', limit: LIMITS.recordId * UTF8_BYTES_PER_CHAR })
  })

  it('a nullable string is bounded like the string', () => {
    const bytes = LIMITS.text * UTF8_BYTES_PER_CHAR + 1
    const { err } = refusal(spliceField(codec, writerType, makeEvent(), 'purpose', Buffer.concat([varintOf(1), varintOf(bytes), Buffer.alloc(bytes, 0x61)])))
    expect(err.details).toMatchObject({ field: 'purpose', limit: LIMITS.text * UTF8_BYTES_PER_CHAR })
  })

  it.each([-1n, -(2n ** 40n)])('a negative string length (%s) is refused', (length) => {
    const { err } = refusal(spliceField(codec, writerType, makeEvent(), 'principal_id', varintOf(length)))
    expect(err.message).toContain('principal_id: a string of negative length')
  })

  it('a number longer than 10 bytes is refused', () => {
    const { err } = refusal(spliceField(codec, writerType, makeEvent(), 'row_count', Buffer.alloc(64, 0xff)))
    expect(err.message).toContain('row_count: a number longer than 10 bytes')
  })

  it('a message larger than the bound is refused before its body is read', () => {
    const big = Buffer.alloc(MAX_MESSAGE_BYTES + 1)
    const { err, ms } = refusal(big)
    expect(err.message).toContain(`larger than the ${MAX_MESSAGE_BYTES}`)
    expect(ms).toBeLessThan(5)
    const small = createCodec(registry, { maxMessageBytes: 100 })
    expect(refusal(codec.encode(makeEvent()), small).err.details).toMatchObject({ limit: 100 })
  })
})

describe('negative block counts (a block size follows)', () => {
  const ids = (blocks: Buffer[]) => spliceField(codec, writerType, makeEvent(), 'record_ids', Buffer.concat([...blocks, Buffer.from([0])]))
  const item = Buffer.concat([varintOf(1), Buffer.from('7')])

  it('a well-formed sized block decodes like an unsized one', () => {
    const { event } = codec.decode(ids([varintOf(-2), varintOf(item.length * 2), item, item]))
    expect((event as AccessEvent).record_ids).toEqual(['7', '7'])
  })

  it.each([
    ['-2^31 items', [varintOf(-(2n ** 31n)), varintOf(4)]],
    ['-2^62 items', [varintOf(-(2n ** 62n)), varintOf(4)]],
    ['a size beyond the message', [varintOf(-1), varintOf(2n ** 40n), item]],
    ['a negative size', [varintOf(-1), varintOf(-5), item]],
    ['a size that does not match its items', [varintOf(-1), varintOf(item.length + 1), item, Buffer.from([0])]],
  ])('%s is refused', (_label, blocks) => {
    const { err, ms } = refusal(ids(blocks))
    expect(err.code).toBe('MESSAGE_MALFORMED')
    expect(err.details).toMatchObject({ field: 'record_ids' })
    expect(ms).toBeLessThan(5)
  })
})

describe('part_count', () => {
  it('2^31 is not an Avro int: MESSAGE_MALFORMED', () => {
    const { err } = refusal(spliceField(codec, writerType, makeEvent(), 'part_count', varintOf(2n ** 31n)))
    expect(err.message).toContain('part_count: 2147483648 is outside the Avro int range')
  })

  it('2^31 - 1 decodes, and the validator refuses it above LIMITS.parts: EVENT_INVALID', () => {
    const { event } = codec.decode(spliceField(codec, writerType, makeEvent(), 'part_count', varintOf(2n ** 31n - 1n)))
    const err = thrownBy(IngestError, () => assertAccessEvent(event))
    expect(err.code).toBe('EVENT_INVALID')
    expect(err.message).toContain('part_count')
  })

  it('LIMITS.parts itself is valid', () => {
    const { event } = codec.decode(codec.encode(makeEvent({ part_count: LIMITS.parts, part_index: LIMITS.parts - 1 })))
    expect(() => assertAccessEvent(event)).not.toThrow()
  })
})

describe('other type rules the scan enforces', () => {
  it.each([
    ['an enum index beyond the symbols', 'principal_type', varintOf(7), 'principal_type: enum index 7'],
    ['a negative enum index', 'outcome', varintOf(-1), 'outcome: enum index -1'],
    ['a union branch beyond the union', 'client_ip', varintOf(2), 'client_ip: union branch 2'],
    ['a boolean byte other than 0 or 1', 'record_ids_complete', Buffer.from([2]), 'record_ids_complete: a boolean byte of 2'],
    ['a long beyond 2^53', 'row_count', varintOf(2n ** 60n), 'row_count: a long beyond 2^53'],
  ] as const)('%s', (_label, field, bytes, text) => {
    expect(refusal(spliceField(codec, writerType, makeEvent(), field, bytes)).err.message).toContain(text)
  })

  it('trailing bytes after the event', () => {
    expect(refusal(Buffer.concat([codec.encode(makeEvent()), Buffer.from([1, 2, 3])])).err.message).toContain('3 bytes of trailing data')
  })
})

describe('nested counts (a writer schema with maps and arrays of arrays)', () => {
  const type = avro.Type.forSchema({
    type: 'record',
    name: 'Nested',
    fields: [
      { name: 'grid', type: { type: 'array', items: { type: 'array', items: 'string' } } },
      { name: 'tags', type: { type: 'map', values: { type: 'array', items: 'null' } } },
      { name: 'self', type: ['null', 'Nested'] },
    ],
  })
  const scanner = createBodyScanner(type, { grid: { maxItems: 10, items: { maxItems: 10, items: { maxBytes: 8 } } } })
  const scan = (bytes: number[] | Buffer) => thrownBy(SchemaError, () => scanner.scan(Buffer.from(bytes)))

  it('a valid value scans and decodes', () => {
    const value = { grid: [['a'], []], tags: { k: [null, null] }, self: { grid: [], tags: {}, self: null } }
    const body = type.toBuffer(value)
    expect(() => scanner.scan(body)).not.toThrow()
    expect(type.fromBuffer(body)).toEqual(value)
  })

  it('an inner count of 2^31 in an outer array is refused at the inner array', () => {
    const err = scan(Buffer.concat([varintOf(1), varintOf(2n ** 31n), Buffer.from([0, 0, 0, 0])]))
    expect(err.details).toMatchObject({ field: 'grid[]', declared: 2 ** 31 })
  })

  it('inner bounds apply per inner array', () => {
    const err = scan(Buffer.concat([varintOf(1), varintOf(11), Buffer.alloc(11), Buffer.from([0, 0, 0, 0])]))
    expect(err.message).toContain('grid[]: 11 items, above the 10 allowed')
  })

  it('an array of nulls (0 bytes each) is still charged a byte per item', () => {
    expect(minEncodedBytes(type)).toBe(3)
    const err = scan(Buffer.concat([varintOf(0), varintOf(1), varintOf(1), Buffer.from('k'), varintOf(2n ** 40n), Buffer.from([0, 0, 0])]))
    expect(err.details).toMatchObject({ field: 'tags[]', declared: 2 ** 40 })
  })

  it('a recursion deeper than 32 records is refused', () => {
    const deep = Buffer.concat([...Array.from({ length: 40 }, () => Buffer.from([0, 0, 2])), Buffer.from([0, 0, 0])])
    expect(scan(deep).message).toMatch(/records nested deeper than 32/)
  })
})

describe('decoder bounds agree with the validator and the SDK', () => {
  const tempDirs: string[] = []
  afterAll(() => {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  })

  it('every field of every released schema version has a decode bound, and nothing else does', () => {
    // Wire 1 lacks the fields added since (db_session, statement_digest):
    // every field it has is bounded; the bounds name the current event's.
    for (const version of registry.versions) {
      const names = (version.type.schema() as { fields: { name: string }[] }).fields.map((f) => f.name)
      for (const name of names) expect(Object.keys(ACCESS_EVENT_BOUNDS), `${version.file}: ${name}`).toContain(name)
    }
    expect(Object.keys(ACCESS_EVENT_BOUNDS).sort()).toEqual(Object.keys(AccessEvent.shape).sort())
  })

  it('an event at every validator limit, in 3-byte characters, decodes and validates', () => {
    const wide = (n: number) => '€'.repeat(n)
    const event = makeEvent({
      principal_id: wide(LIMITS.name),
      on_behalf_of: wide(LIMITS.name),
      service: wide(LIMITS.name),
      db_name: wide(LIMITS.name),
      columns: Array.from({ length: LIMITS.columns }, () => wide(LIMITS.name)),
      record_ids: [wide(LIMITS.recordId), ''],
      query_fingerprint: wide(LIMITS.fingerprint),
      purpose: wide(LIMITS.text),
      trace_id: wide(LIMITS.text),
      client_ip: '0000:0000:0000:0000:0000:ffff:255.255.255.255',
      part_count: LIMITS.parts,
      part_index: LIMITS.parts - 1,
    })
    expect(() => assertAccessEvent(event)).not.toThrow()
    const { event: decoded } = codec.decode(codec.encode(event))
    expect(() => assertAccessEvent(decoded)).not.toThrow()
  })

  it('an event naming LIMITS.recordIdsPerEvent empty ids decodes (the most the SDK ever writes in one message)', () => {
    const event = makeEvent({ record_ids: Array.from({ length: LIMITS.recordIdsPerEvent }, () => '') })
    const message = codec.encode(event)
    expect(message.length).toBeLessThanOrEqual(MAX_MESSAGE_BYTES)
    expect((codec.decode(message).event as AccessEvent).record_ids.length).toBe(LIMITS.recordIdsPerEvent)
  })

  it('no producer may be configured to write a message larger than the decoder reads', () => {
    expect(AuditProducerConfig.safeParse({ service: 's', maxMessageBytes: MAX_MESSAGE_BYTES }).success).toBe(true)
    expect(AuditProducerConfig.safeParse({ service: 's', maxMessageBytes: MAX_MESSAGE_BYTES + 1 }).success).toBe(false)
  })

  it('the SDK refuses a read naming more records than LIMITS.recordIdsPerRead', () => {
    const input = { principal: { id: 'p' }, resource: { database: 'd', table: 't' }, columns: ['id'], recordIds: [] as string[] }
    expect(ReadInput.safeParse(input).success).toBe(true)
    // Only the length is checked first-hand here: the array is sparse, so the test costs nothing.
    const tooMany = { ...input, recordIds: new Array<string>(LIMITS.recordIdsPerRead + 1) }
    expect(ReadInput.safeParse(tooMany).success).toBe(false)
  })

  it('an IP longer than LIMITS.ip is refused by the validator', () => {
    const err = thrownBy(IngestError, () => assertAccessEvent(makeEvent({ client_ip: `${'0'.repeat(LIMITS.ip)}::1` })))
    expect(err.message).toContain('client_ip')
  })

  it('the validator names at most 20 problems, however many ids break a rule', () => {
    const err = thrownBy(IngestError, () => assertAccessEvent(makeEvent({ record_ids: Array.from({ length: 1000 }, () => 'x'.repeat(LIMITS.recordId + 1)) })))
    expect((err.details?.['issues'] as unknown[]).length).toBe(20)
    expect(err.details).toMatchObject({ more: 980 })
    expect(err.message.length).toBeLessThan(4000)
  })

  it('a bomb in a v1-written message is refused by a registry that resolves v1 to v2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'readtrail-schemas-'))
    tempDirs.push(dir)
    copyFileSync(join(DEFAULT_SCHEMA_DIR, 'access-event.v1.avsc'), join(dir, 'access-event.v1.avsc'))
    const v1 = JSON.parse(readFileSync(join(DEFAULT_SCHEMA_DIR, 'access-event.v1.avsc'), 'utf8')) as { fields: unknown[] }
    writeFileSync(join(dir, 'access-event.v2.avsc'), JSON.stringify({ ...v1, fields: [...v1.fields, { name: 'tenant', type: ['null', 'string'], default: null }] }))
    const both = createCodec(loadSchemaRegistry(dir))
    const bomb = recordIdsCountBomb(codec, writerType, makeEvent(), 2n ** 31n)
    expect(refusal(bomb, both).err.message).toContain('with schema v1: record_ids: a block of 2147483648 items')
    const good = codec.encode(makeEvent())
    expect(both.decode(good).event).toMatchObject({ tenant: null })
  })

  it('the header is what the bomb builder assumes', () => {
    expect(HEADER_LENGTH).toBe(10)
  })
})
