import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ACTIONS, AccessEvent, OUTCOMES, PRINCIPAL_TYPES } from '../../schemas/access-event.js'
import { DEFAULT_SCHEMA_DIR } from '../../schemas/registry.js'
import { ACCESS_LOG_COLUMNS } from '../../store/access-log-columns.js'

interface AvroField {
  name: string
  type: unknown
}

/**
 * The event as the current wire version writes it: the batch's event record
 * (schemas/avro/access-batch.v3.avsc) with the three fields the batch says
 * once put back where the access event has them.
 */
const BATCH_FIELDS = ['service', 'environment', 'producer_id'] as const
const batch = JSON.parse(readFileSync(`${DEFAULT_SCHEMA_DIR}/access-batch.v3.avsc`, 'utf8')) as { fields: (AvroField & { type: { items: { fields: AvroField[] } } })[] }
const batched = batch.fields.find((f) => f.name === 'events')!.type.items.fields
const v1Record = JSON.parse(readFileSync(`${DEFAULT_SCHEMA_DIR}/access-event.v1.avsc`, 'utf8')) as { fields: AvroField[] }
/** Fields wire v3 added to the event; v1 and v2 messages resolve them to ''. */
const ADDED_IN_V3 = ['db_session', 'statement_digest']
const avroRecord: { fields: AvroField[] } = {
  fields: Object.keys(AccessEvent.shape).map((name) => {
    const field = (BATCH_FIELDS as readonly string[]).includes(name) ? batch.fields.find((f) => f.name === name) : batched.find((f) => f.name === name)
    return field ?? { name: `(missing ${name})`, type: 'missing' }
  }),
}
// AccessEvent is `.object(...).strict().refine(...)`; in zod 4 a refinement
// keeps the ZodObject, so its shape is the event's field list.
const zodShape: Record<string, z.ZodType> = AccessEvent.shape

/** One vocabulary both sides are described in. */
function describeAvro(type: unknown): string {
  if (Array.isArray(type)) {
    if (type.length === 2 && type[0] === 'null') return `nullable ${describeAvro(type[1])}`
    return `union(${type.map(describeAvro).join('|')})`
  }
  if (typeof type === 'string') {
    if (type === 'int' || type === 'long') return 'integer'
    return type
  }
  const t = type as { type: string; symbols?: string[]; items?: unknown; size?: number }
  switch (t.type) {
    case 'enum':
      return `enum(${t.symbols!.join(',')})`
    case 'array':
      return `array<${describeAvro(t.items)}>`
    case 'fixed':
      return `fixed(${t.size!})`
    default:
      // Logical types (uuid, timestamp-micros) are annotations on a primitive.
      return describeAvro(t.type)
  }
}

function describeZod(schema: z.ZodType): string {
  if (schema instanceof z.ZodNullable) return `nullable ${describeZod(schema.unwrap() as z.ZodType)}`
  if (schema instanceof z.ZodString) return 'string'
  if (schema instanceof z.ZodNumber) return schema.isInt ? 'integer' : 'number'
  if (schema instanceof z.ZodBoolean) return 'boolean'
  if (schema instanceof z.ZodEnum) return `enum(${schema.options.join(',')})`
  if (schema instanceof z.ZodArray) return `array<${describeZod(schema.element as z.ZodType)}>`
  if (schema instanceof z.ZodCustom) {
    // A custom check cannot be introspected: describe it by what it accepts.
    const accepts = (v: unknown) => schema.safeParse(v).success
    for (let size = 1; size <= 64; size++) {
      if (accepts(Buffer.alloc(size))) {
        const onlyThisSize = !accepts(Buffer.alloc(size - 1)) && !accepts(Buffer.alloc(size + 1))
        const onlyBuffers = !accepts(new Uint8Array(size)) && !accepts('x'.repeat(size))
        return onlyThisSize && onlyBuffers ? `fixed(${size})` : 'custom'
      }
    }
    return 'custom'
  }
  return `unknown(${schema.def.type})`
}

/** Columns the chain writer fills, not the event: the row's chain place, its Kafka place, and how it arrived (schema, signing key). */
const CHAIN_COLUMNS = new Set(['prev_hash', 'chain_id', 'seq', 'kafka_offset', 'message_index', 'message_events', 'ingested_at', 'schema_version', 'key_id'])

describe('zod AccessEvent and the current wire schema agree', () => {
  it('have the same field names in the same order', () => {
    expect(Object.keys(zodShape)).toEqual(avroRecord.fields.map((f) => f.name))
    // And the batch's event record holds exactly the others, in the same order.
    expect(batched.map((f) => f.name)).toEqual(Object.keys(zodShape).filter((n) => !(BATCH_FIELDS as readonly string[]).includes(n)))
  })

  it('wire v1 is the same event without the fields v3 added, and those resolve to a default', () => {
    expect(v1Record.fields.map((f) => f.name)).toEqual(Object.keys(zodShape).filter((n) => !ADDED_IN_V3.includes(n)))
    for (const name of ADDED_IN_V3) expect(batched.find((f) => f.name === name), name).toMatchObject({ type: 'string', default: '' })
  })

  it.each(avroRecord.fields.map((f) => [f.name, f] as const))('agree on the type of %s', (name, field) => {
    const zodField = zodShape[name]
    expect(zodField, `zod has no field ${name}`).toBeDefined()
    expect(describeZod(zodField!)).toBe(describeAvro(field.type))
  })

  it('nullability agrees: zod accepts null exactly where Avro has a ["null", X] union', () => {
    for (const field of avroRecord.fields) {
      const avroNullable = Array.isArray(field.type) && field.type.includes('null')
      expect(zodShape[field.name]!.safeParse(null).success, field.name).toBe(avroNullable)
    }
  })

  it('enum symbols equal the exported option lists', () => {
    const symbolsOf = (name: string) => {
      const type = avroRecord.fields.find((f) => f.name === name)?.type as { symbols: string[] }
      return type.symbols
    }
    expect(symbolsOf('principal_type')).toEqual([...PRINCIPAL_TYPES])
    expect(symbolsOf('action')).toEqual([...ACTIONS])
    expect(symbolsOf('outcome')).toEqual([...OUTCOMES])
  })

  it('the describers tell different types apart (the comparison above can fail)', () => {
    expect(describeZod(z.number())).not.toBe(describeAvro('long'))
    expect(describeZod(z.string().nullable())).not.toBe(describeAvro('string'))
    expect(describeZod(z.enum(['a', 'b']))).not.toBe(describeAvro({ type: 'enum', name: 'E', symbols: ['b', 'a'] }))
    expect(describeZod(z.instanceof(Buffer))).not.toBe(describeAvro({ type: 'fixed', name: 'F', size: 32 }))
    expect(describeZod(z.array(z.number().int()))).not.toBe(describeAvro({ type: 'array', items: 'string' }))
  })
})

describe('access_log columns and the event agree', () => {
  const eventColumns = ACCESS_LOG_COLUMNS.map((c) => c.name as string).filter((n) => !CHAIN_COLUMNS.has(n))

  it('every event column is a field of both the zod and the Avro schema', () => {
    const avroNames = new Set(avroRecord.fields.map((f) => f.name))
    for (const name of eventColumns) {
      expect(Object.keys(zodShape), name).toContain(name)
      expect(avroNames.has(name), name).toBe(true)
    }
  })

  it('every event field has a column, so the row hash covers it', () => {
    expect(new Set(eventColumns)).toEqual(new Set(Object.keys(zodShape)))
  })
})
