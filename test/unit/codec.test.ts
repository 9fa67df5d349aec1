import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createCodec, HEADER_LENGTH } from '../../schemas/codec.js'
import { SchemaError } from '../../schemas/errors.js'
import { fingerprintBytes } from '../../schemas/fingerprint.js'
import { DEFAULT_SCHEMA_DIR, loadSchemaRegistry } from '../../schemas/registry.js'
import { thrownBy } from '../helpers/thrown.js'

function fullEvent(): AccessEvent {
  return {
    event_id: '0190a4b2-1c3d-7e4f-8a5b-6c7d8e9f0a1b',
    read_id: '0190a4b2-1c3d-7e4f-9a5b-6c7d8e9f0a1c',
    part_index: 1,
    part_count: 3,
    occurred_at: 1_718_000_000_123_456,
    principal_id: 'alice@corp',
    principal_type: 'service',
    on_behalf_of: 'bob@corp',
    session_hash: Buffer.from(Array.from({ length: 32 }, (_, i) => 255 - i)),
    client_ip: '2001:db8::7',
    service: 'billing',
    environment: 'staging',
    action: 'export',
    db_name: 'crm',
    table_name: 'customers',
    columns: ['id', 'email', 'birth_date'],
    record_ids: ['1', '2', 'ключ', ''],
    record_ids_complete: false,
    row_count: 5_000_000_000,
    query_fingerprint: 'SELECT id FROM customers WHERE id IN (?+)',
    // Wire 1 has no connection key: its events decode with ''.
    db_session: '',
    statement_digest: '',
    purpose: 'ticket 42',
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    outcome: 'denied',
    producer_id: 'billing:host:1',
    producer_seq: 17,
  }
}

function nullEvent(): AccessEvent {
  return { ...fullEvent(), on_behalf_of: null, session_hash: null, client_ip: null, purpose: null, trace_id: null, record_ids: [] }
}

const decodeError = (fn: () => unknown): SchemaError => thrownBy(SchemaError, fn)

const tempDirs: string[] = []
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

/** A schema folder holding v1 and, when asked, a v2 that adds `tenant` with a default. */
function schemaDir(withV2: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'readtrail-schemas-'))
  tempDirs.push(dir)
  copyFileSync(join(DEFAULT_SCHEMA_DIR, 'access-event.v1.avsc'), join(dir, 'access-event.v1.avsc'))
  if (withV2) {
    const v1 = JSON.parse(readFileSync(join(DEFAULT_SCHEMA_DIR, 'access-event.v1.avsc'), 'utf8')) as { fields: unknown[] }
    const v2 = { ...v1, fields: [...v1.fields, { name: 'tenant', type: ['null', 'string'], default: null }] }
    writeFileSync(join(dir, 'access-event.v2.avsc'), JSON.stringify(v2))
  }
  return dir
}

describe('codec round trip', () => {
  const registry = loadSchemaRegistry()
  const codec = createCodec(registry)

  it.each([
    ['every nullable field set', fullEvent()],
    ['every nullable field null', nullEvent()],
  ])('decodes what it encoded, with %s', (_label, event) => {
    const decoded = codec.decode(codec.encode(event))
    expect(decoded.writer).toBe(registry.current)
    expect({ ...(decoded.event as object) }).toEqual(event)
  })

  it('decodes session_hash back to a 32-byte Buffer', () => {
    const { event } = codec.decode(codec.encode(fullEvent()))
    const hash = (event as AccessEvent).session_hash
    expect(Buffer.isBuffer(hash)).toBe(true)
    expect(hash?.equals(fullEvent().session_hash!)).toBe(true)
  })

  it('frames the body with C3 01 and the little-endian fingerprint of the current schema', () => {
    const message = codec.encode(fullEvent())
    expect(HEADER_LENGTH).toBe(10)
    expect([...message.subarray(0, 2)]).toEqual([0xc3, 0x01])
    expect(message.readBigUInt64LE(2)).toBe(registry.current.fingerprint)
    expect(message.subarray(2, 10).equals(fingerprintBytes(registry.current.fingerprint))).toBe(true)
    expect(message.subarray(HEADER_LENGTH).equals(registry.current.type.toBuffer(fullEvent()))).toBe(true)
  })
})

describe('codec decode rejects', () => {
  const registry = loadSchemaRegistry()
  const codec = createCodec(registry)
  const good = codec.encode(fullEvent())

  it.each([
    ['an empty buffer', Buffer.alloc(0)],
    ['a header shorter than 10 bytes', good.subarray(0, 9)],
    ['a wrong first marker byte', Buffer.concat([Buffer.from([0xc4]), good.subarray(1)])],
    ['a wrong second marker byte', Buffer.concat([Buffer.from([0xc3, 0x02]), good.subarray(2)])],
    ['a truncated body', good.subarray(0, good.length - 5)],
    ['a header with no body', good.subarray(0, HEADER_LENGTH)],
    ['trailing garbage after the body', Buffer.concat([good, Buffer.from([0x00, 0x01])])],
  ])('%s as MESSAGE_MALFORMED', (_label, message) => {
    const err = decodeError(() => codec.decode(message))
    expect(err.code).toBe('MESSAGE_MALFORMED')
    expect(err.retriable).toBe(false)
  })

  it('an unknown fingerprint as SCHEMA_FINGERPRINT_UNKNOWN naming it in hex', () => {
    const forged = Buffer.from(good)
    forged.writeBigUInt64LE(0x00c0ffee12345678n, 2)
    const err = decodeError(() => codec.decode(forged))
    expect(err.code).toBe('SCHEMA_FINGERPRINT_UNKNOWN')
    expect(err.message).toContain('00c0ffee12345678')
  })
})

describe('schema evolution', () => {
  const v1Only = loadSchemaRegistry(schemaDir(false))
  const v1AndV2 = loadSchemaRegistry(schemaDir(true))

  it('the temp registries are what the test thinks they are', () => {
    expect(v1Only.versions.map((v) => v.version)).toEqual([1])
    expect(v1AndV2.versions.map((v) => v.version)).toEqual([1, 2])
    expect(v1AndV2.current.version).toBe(2)
    expect(v1AndV2.current.fingerprint).not.toBe(v1Only.current.fingerprint)
    expect(v1Only.current.fingerprint).toBe(loadSchemaRegistry().current.fingerprint)
  })

  it('resolves a v1-written message to v2 with the new field at its default', () => {
    const message = createCodec(v1Only).encode(fullEvent())
    const decoded = createCodec(v1AndV2).decode(message)
    expect(decoded.writer.version).toBe(1)
    expect({ ...(decoded.event as object) }).toEqual({ ...fullEvent(), tenant: null })
  })

  it('reads a v2-written message with the v2 registry', () => {
    const codec = createCodec(v1AndV2)
    const decoded = codec.decode(codec.encode({ ...fullEvent(), tenant: 'acme' }))
    expect(decoded.writer.version).toBe(2)
    expect((decoded.event as { tenant: string }).tenant).toBe('acme')
  })

  it('a registry that knows only v1 rejects a v2-written message as unknown', () => {
    const message = createCodec(v1AndV2).encode({ ...fullEvent(), tenant: 'acme' })
    const err = decodeError(() => createCodec(v1Only).decode(message))
    expect(err.code).toBe('SCHEMA_FINGERPRINT_UNKNOWN')
    expect(err.message).toContain(v1AndV2.current.fingerprint.toString(16).padStart(16, '0'))
  })
})
