import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { crc64Avro, fingerprintBytes } from '../../schemas/fingerprint.js'
import { DEFAULT_SCHEMA_DIR, loadSchemaRegistry, parseSchemaVersion } from '../../schemas/registry.js'

/**
 * Vectors from the Avro specification's share/test/data/schema-tests.txt:
 * input schema, its Parsing Canonical Form, and the fingerprint as Java's
 * signed long.
 */
const SPEC_VECTORS: { input: string; canonical: string; signed: bigint }[] = [
  { input: '"null"', canonical: '"null"', signed: 7195948357588979594n },
  { input: '"boolean"', canonical: '"boolean"', signed: -6970731678124411036n },
  { input: '"int"', canonical: '"int"', signed: 8247732601305521295n },
  { input: '"string"', canonical: '"string"', signed: -8142146995180207161n },
  { input: '{"fields":[], "type":"record", "name":"foo"}', canonical: '{"name":"foo","type":"record","fields":[]}', signed: -4824392279771201922n },
  {
    input: '{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
    canonical: '{"name":"x.y.foo","type":"record","fields":[]}',
    signed: 5916914534497305771n,
  },
  {
    input: '{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}',
    canonical: '{"name":"foo","type":"record","fields":[]}',
    signed: -4824392279771201922n,
  },
  {
    input:
      '{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"}, {"order":"descending","name":"f2","doc":"Hello","type":"int"}], "type":"record", "name":"foo" }',
    canonical: '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}',
    signed: -4860222112080293046n,
  },
  {
    input: '{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}',
    canonical: '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
    signed: -4448647247586288245n,
  },
  {
    input: '{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}',
    canonical: '{"name":"x.y.z.foo","type":"fixed","size":32}',
    signed: -3064184465700546786n,
  },
  { input: '{ "items":{"type":"null"}, "type":"array"}', canonical: '{"type":"array","items":"null"}', signed: -589620603366471059n },
]

const unsigned = (signed: bigint): bigint => BigInt.asUintN(64, signed)

/**
 * Parsing Canonical Form, written from the Avro specification rather than
 * taken from avsc: primitives as bare names, fullnames, only the attributes
 * name/type/fields/symbols/items/values/size in that order, no whitespace.
 */
function canonicalForm(schema: unknown, namespace = ''): string {
  if (typeof schema === 'string') return JSON.stringify(qualify(schema, namespace))
  if (Array.isArray(schema)) return `[${schema.map((s) => canonicalForm(s, namespace)).join(',')}]`
  const s = schema as Record<string, unknown>
  const type = s['type'] as string
  if (s['name'] === undefined && typeof type === 'string' && !['array', 'map'].includes(type)) return JSON.stringify(type)
  const parts: string[] = []
  let ns = namespace
  if (typeof s['name'] === 'string') {
    const full = qualify(s['name'], typeof s['namespace'] === 'string' ? s['namespace'] : namespace)
    ns = full.includes('.') ? full.slice(0, full.lastIndexOf('.')) : ''
    parts.push(`"name":${JSON.stringify(full)}`)
  }
  parts.push(`"type":${JSON.stringify(type)}`)
  if (Array.isArray(s['fields'])) {
    const fields = (s['fields'] as Record<string, unknown>[]).map((f) => `{"name":${JSON.stringify(f['name'])},"type":${canonicalForm(f['type'], ns)}}`)
    parts.push(`"fields":[${fields.join(',')}]`)
  }
  if (Array.isArray(s['symbols'])) parts.push(`"symbols":${JSON.stringify(s['symbols'])}`)
  if (s['items'] !== undefined) parts.push(`"items":${canonicalForm(s['items'], ns)}`)
  if (s['values'] !== undefined) parts.push(`"values":${canonicalForm(s['values'], ns)}`)
  if (s['size'] !== undefined) parts.push(`"size":${String(s['size'])}`)
  return `{${parts.join(',')}}`
}

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'])
function qualify(name: string, namespace: string): string {
  if (PRIMITIVES.has(name) || name.includes('.') || namespace === '') return name
  return `${namespace}.${name}`
}

describe('crc64Avro', () => {
  it.each(SPEC_VECTORS)('matches the Avro spec fingerprint of $canonical', ({ canonical, signed }) => {
    expect(crc64Avro(Buffer.from(canonical, 'utf8'))).toBe(unsigned(signed))
  })

  it('returns an unsigned value: the spec vector for "null" read as signed int64 is 7195948357588979594', () => {
    const fp = crc64Avro(Buffer.from('"null"', 'utf8'))
    expect(fp).toBeGreaterThanOrEqual(0n)
    expect(fp).toBeLessThan(2n ** 64n)
    expect(BigInt.asIntN(64, fp)).toBe(7195948357588979594n)
  })
})

describe('fingerprintBytes', () => {
  it('writes the fingerprint little-endian, as single-object encoding requires', () => {
    expect([...fingerprintBytes(0x0102030405060708n)]).toEqual([0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01])
  })

  it('keeps the top bit of a fingerprint that is negative as a signed long', () => {
    const fp = unsigned(-6970731678124411036n)
    const bytes = fingerprintBytes(fp)
    expect(bytes).toHaveLength(8)
    expect(bytes[7]! & 0x80).toBe(0x80)
    let back = 0n
    for (let i = 7; i >= 0; i--) back = (back << 8n) | BigInt(bytes[i]!)
    expect(back).toBe(fp)
  })
})

describe('schema registry fingerprints', () => {
  it('the test canonicaliser agrees with the spec vectors', () => {
    for (const v of SPEC_VECTORS) expect(canonicalForm(JSON.parse(v.input))).toBe(v.canonical)
  })

  // Vector 026's default "true" is not a boolean; avsc rightly refuses to parse it.
  const parsable = SPEC_VECTORS.filter((v) => v.input.startsWith('{') && !v.input.includes('"default"'))
  it.each(parsable)('fingerprints the Parsing Canonical Form of $input', ({ input, signed }) => {
    expect(parseSchemaVersion('access-event.v9.avsc', input).fingerprint).toBe(unsigned(signed))
  })

  it('computes the v1 fingerprint from the Parsing Canonical Form, not the file text', () => {
    const text = readFileSync(`${DEFAULT_SCHEMA_DIR}/access-event.v1.avsc`, 'utf8')
    const canonical = canonicalForm(JSON.parse(text))
    // The file carries docs, defaults and logical types that the canonical form drops.
    expect(canonical).not.toContain('doc')
    expect(canonical).not.toContain('logicalType')
    expect(canonical).toContain('"name":"io.readtrail.SessionHash","type":"fixed","size":32')
    const v1 = loadSchemaRegistry().versions.find((v) => v.version === 1)
    expect(v1?.fingerprint).toBe(crc64Avro(Buffer.from(canonical, 'utf8')))
    expect(v1?.fingerprint).not.toBe(crc64Avro(Buffer.from(text, 'utf8')))
  })

  it('rejects a schema file that does not follow the naming scheme', () => {
    expect(() => parseSchemaVersion('access-event.avsc', '"null"')).toThrow(/access-event\.v<N>\.avsc/)
  })
})
