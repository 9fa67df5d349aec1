import { describe, expect, it } from 'vitest'
import { IngestError } from '../../consumers/errors.js'
import { assertAccessEvent } from '../../consumers/validate-event.js'
import type { AccessEvent } from '../../schemas/access-event.js'

function validEvent(): AccessEvent {
  return {
    event_id: '0190a4b2-1c3d-7e4f-8a5b-6c7d8e9f0a1b',
    read_id: '0190a4b2-1c3d-7e4f-9a5b-6c7d8e9f0a1c',
    part_index: 0,
    part_count: 2,
    occurred_at: 1_718_000_000_123_456,
    principal_id: 'alice',
    principal_type: 'user',
    on_behalf_of: null,
    session_hash: Buffer.alloc(32, 1),
    client_ip: '192.0.2.10',
    service: 'billing',
    environment: 'test',
    action: 'read',
    db_name: 'crm',
    table_name: 'customers',
    columns: ['id'],
    record_ids: ['1'],
    record_ids_complete: true,
    row_count: 1,
    query_fingerprint: 'SELECT id FROM customers WHERE id = ?',
    db_session: '31337',
    statement_digest: 'ab'.repeat(32),
    purpose: null,
    trace_id: null,
    outcome: 'success',
    producer_id: 'p1',
    producer_seq: 1,
  }
}

function rejection(value: unknown): IngestError {
  try {
    assertAccessEvent(value)
  } catch (err) {
    expect(err).toBeInstanceOf(IngestError)
    return err as IngestError
  }
  throw new Error('expected assertAccessEvent to throw')
}

const fieldsOf = (err: IngestError) => (err.details?.['issues'] as { field: string }[]).map((i) => i.field)

describe('assertAccessEvent', () => {
  it('accepts a valid event', () => {
    expect(() => assertAccessEvent(validEvent())).not.toThrow()
    expect(() => assertAccessEvent({ ...validEvent(), client_ip: '2001:db8::1', session_hash: null })).not.toThrow()
  })

  it.each([
    ['part_index equal to part_count', { part_index: 2, part_count: 2 }, 'part_index'],
    ['part_index above part_count', { part_index: 5, part_count: 2 }, 'part_index'],
    ['an invalid event_id', { event_id: 'not-a-uuid' }, 'event_id'],
    ['an upper-case read_id', { read_id: '0190A4B2-1C3D-7E4F-9A5B-6C7D8E9F0A1C' }, 'read_id'],
    ['a bad client_ip', { client_ip: '10.0.0.256' }, 'client_ip'],
    ['a 31-byte session_hash', { session_hash: Buffer.alloc(31) }, 'session_hash'],
    ['a negative row_count', { row_count: -1 }, 'row_count'],
    ['a principal_id over 256 characters', { principal_id: 'p'.repeat(257) }, 'principal_id'],
    ['an empty column list', { columns: [] }, 'columns'],
  ])('rejects %s with EVENT_INVALID naming the field', (_label, patch, field) => {
    const err = rejection({ ...validEvent(), ...patch })
    expect(err.code).toBe('EVENT_INVALID')
    expect(err.retriable).toBe(false)
    expect(fieldsOf(err)).toContain(field)
    expect(err.message).toContain(`${field}:`)
  })

  it('rejects an unknown extra field with EVENT_INVALID naming it', () => {
    const err = rejection({ ...validEvent(), tenant: 'acme' })
    expect(err.code).toBe('EVENT_INVALID')
    expect(err.message).toContain('tenant')
  })
  it('names an unknown extra field in details.issues', () => {
    expect(fieldsOf(rejection({ ...validEvent(), tenant: 'acme' }))).toContain('tenant')
  })

  it('reports every invalid field of one event at once', () => {
    const err = rejection({ ...validEvent(), event_id: 'x', client_ip: 'nohost', session_hash: Buffer.alloc(33) })
    expect(fieldsOf(err)).toEqual(expect.arrayContaining(['event_id', 'client_ip', 'session_hash']))
  })

  it.each([null, 'event', 42, []])('rejects a non-object (%j)', (value) => {
    expect(rejection(value).code).toBe('EVENT_INVALID')
  })
})
