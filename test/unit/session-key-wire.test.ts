import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { findEventIssues } from '../../consumers/check-event.js'
import { createMessageTrust } from '../../consumers/message-trust.js'
import { buildEvents, type EventContext } from '../../producers/build-events.js'
import { AuditProducerConfig } from '../../producers/config.js'
import { AccessEvent } from '../../schemas/access-event.js'
import { createBatchCodec, type BatchOrigin } from '../../schemas/batch-codec.js'
import { createCodec } from '../../schemas/codec.js'
import { ACCESS_BATCH_BOUNDS, ACCESS_EVENT_BOUNDS } from '../../schemas/decode-bounds.js'
import { ReadInput } from '../../schemas/read-input.js'
import { createSchemaRegistry, loadSchemaRegistry } from '../../schemas/registry.js'
import { makeEvent } from '../helpers/events.js'

/**
 * Wire v3 adds the key the database-side cross-check matches on (issue 14):
 * db_session and statement_digest. Old messages must still be read, and a
 * producer must still be able to write for a writer not upgraded yet.
 */

const batchRegistry = loadSchemaRegistry(undefined, 'access-batch')
const batches = createBatchCodec(batchRegistry)
const ORIGIN: BatchOrigin = { keyId: '', producerId: 'records-api:h:1', service: 'test-service', environment: 'test' }
const DIGEST = createHash('sha256').update('SELECT id, full_name FROM applicants WHERE id = $1').digest('hex')

function frame(events: AccessEvent[], version?: number): Buffer {
  const framer = batches.framer({ ...ORIGIN }, version)
  const bodies = events.map((e) => framer.encodeEvent(e))
  return framer.frame(bodies, bodies.reduce((n, b) => n + b.length, 0))
}

const keyed = (over: Partial<AccessEvent> = {}) => makeEvent({ service: ORIGIN.service, environment: ORIGIN.environment, producer_id: ORIGIN.producerId, db_session: '48213', statement_digest: DIGEST, ...over })

describe('wire v3 carries the connection key; older versions read back with empty fields', () => {
  it('the current batch version is 3, and a v3 batch round-trips both fields', () => {
    expect(batches.current.version).toBe(3)
    const sent = [keyed(), keyed({ db_session: '', statement_digest: '' }), keyed({ db_session: '18446744073709551615' })]
    const decoded = batches.decode(frame(sent))
    expect(decoded.writer.version).toBe(3)
    expect(decoded.events).toEqual(sent)
    for (const e of decoded.events) expect(findEventIssues(e, 5)).toBeUndefined()
  })

  it('a v2 batch (written before v3, or by a producer with wireVersion 2) decodes with db_session and statement_digest empty, and validates', () => {
    const sent = [keyed(), keyed({ record_ids: [], row_count: 0 })]
    const message = frame(sent, 2)
    const decoded = batches.decode(message)
    expect(decoded.writer.version).toBe(2)
    expect(decoded.events).toEqual(sent.map((e) => ({ ...e, db_session: '', statement_digest: '' })))
    for (const e of decoded.events) expect(findEventIssues(e, 5)).toBeUndefined()
  })

  it('v2 bytes are what a v2-only writer reads: the fields v3 added are not written', () => {
    const v2 = batchRegistry.versions.find((v) => v.version === 2)!
    const oldWriter = createBatchCodec(createSchemaRegistry([v2]))
    const e = keyed()
    const [read] = oldWriter.decode(frame([e], 2)).events as Record<string, unknown>[]
    const { db_session: _session, statement_digest: _digest, ...v2Fields } = e
    expect(read).toMatchObject(v2Fields)
    expect([read!['db_session'], read!['statement_digest']]).toEqual([undefined, undefined])
    // And it refuses v3, which is why wireVersion 2 exists.
    expect(() => oldWriter.decode(frame([keyed()]))).toThrow(expect.objectContaining({ code: 'SCHEMA_FINGERPRINT_UNKNOWN' }))
  })

  it('a v1 event decodes with both fields empty, and validates', () => {
    const codec = createCodec(loadSchemaRegistry())
    const e = keyed()
    const { event, writer } = codec.decode(codec.encode(e))
    expect(writer.version).toBe(1)
    expect({ ...(event as object) }).toEqual({ ...e, db_session: '', statement_digest: '' })
    expect(findEventIssues(event, 5)).toBeUndefined()
  })

  it('the writer reads v1, v2 and v3 messages as one event shape (migration allowed)', () => {
    const trust = createMessageTrust({ trusted: null, allowUnsigned: true })
    const e = keyed()
    const codec = createCodec(loadSchemaRegistry())
    expect(trust.read('t', codec.encode(e))).toMatchObject({ schemaVersion: 1, events: [{ ...e, db_session: '', statement_digest: '' }] })
    expect(trust.read('t', frame([e], 2))).toMatchObject({ schemaVersion: 2, events: [{ ...e, db_session: '', statement_digest: '' }] })
    expect(trust.read('t', frame([e], 3))).toMatchObject({ schemaVersion: 3, events: [e] })
  })

  it('a framer for a version that was never released is refused at start, not on the first read', () => {
    expect(() => batches.framer(ORIGIN, 4)).toThrow(/access-batch v4 is not a released batch version \(v2, v3\)/)
    expect(() => batches.framer(ORIGIN, 1)).toThrow(/v1 is not a released batch version/)
  })

  it('every field of every batch version is bounded before avsc reads it', () => {
    for (const version of batchRegistry.versions) {
      const schema = version.type.schema() as { fields: { name: string; type: { items?: { fields: { name: string }[] } } }[] }
      expect(Object.keys(ACCESS_BATCH_BOUNDS).sort(), version.file).toEqual(schema.fields.map((f) => f.name).sort())
      const items = schema.fields.find((f) => f.name === 'events')!.type.items!.fields
      for (const f of items) expect(Object.keys(ACCESS_EVENT_BOUNDS), `${version.file}: ${f.name}`).toContain(f.name)
    }
  })
})

describe('the two fields in the event, the producer and the schema', () => {
  it('AccessEvent takes a decimal id or empty, and a lowercase hex SHA-256 or empty', () => {
    for (const ok of [{}, { db_session: '0' }, { db_session: '9'.repeat(20) }, { statement_digest: DIGEST }]) expect(AccessEvent.safeParse(makeEvent(ok)).success, JSON.stringify(ok)).toBe(true)
    for (const bad of [{ db_session: '9'.repeat(21) }, { db_session: '-1' }, { db_session: '12a' }, { statement_digest: DIGEST.toUpperCase() }, { statement_digest: DIGEST.slice(1) }, { db_session: null }]) {
      expect(AccessEvent.safeParse(makeEvent(bad as Partial<AccessEvent>)).success, JSON.stringify(bad)).toBe(false)
    }
  })

  it('buildEvents copies dbSession and statementDigest into every part; a read without them gets empty strings', () => {
    const ctx: EventContext = { service: 's', environment: 'e', producerId: 'p', sessionHashKey: undefined, sqlDialect: 'postgres', recordIdBudget: () => 64, maxMessageBytes: 64 }
    const input = ReadInput.parse({
      principal: { id: 'alice' },
      resource: { database: 'crm', table: 'customers' },
      columns: ['id'],
      recordIds: Array.from({ length: 40 }, (_, i) => `r${i}`),
      dbSession: '4242',
      statementDigest: DIGEST,
    })
    const parts = buildEvents(input, ctx)
    expect(parts.length).toBeGreaterThan(1)
    for (const e of parts) expect([e.db_session, e.statement_digest]).toEqual(['4242', DIGEST])
    const plain = buildEvents(ReadInput.parse({ principal: { id: 'alice' }, resource: { database: 'crm', table: 'customers' }, columns: ['id'], recordIds: [] }), { ...ctx, recordIdBudget: () => 1024, maxMessageBytes: 1024 })
    expect([plain[0]!.db_session, plain[0]!.statement_digest]).toEqual(['', ''])
  })

  it('producers write wire v3 by default; 2 and 1 remain for writers not upgraded', () => {
    const base = { kafka: { brokers: ['127.0.0.1:19092'] }, topic: 't', service: 's' }
    expect(AuditProducerConfig.parse(base).wireVersion).toBe(3)
    expect(AuditProducerConfig.parse({ ...base, wireVersion: 2 }).wireVersion).toBe(2)
    expect(AuditProducerConfig.safeParse({ ...base, wireVersion: 4 }).success).toBe(false)
  })
})
