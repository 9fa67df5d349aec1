import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { keyId } from '../../checkpoints/checkpoint.js'
import { uuidv7 } from '../../common/uuid.js'
import type { AlertEvent } from '../../schemas/alert-event.js'
import type { DbAuditEvent } from '../../schemas/db-audit-event.js'
import { createAlertBatchCodec, createDbAuditBatchCodec, MAX_SIDE_EVENTS_PER_BATCH, sideTopic } from '../../schemas/side-batch.js'

/**
 * The side streams' signed batches: a signature binds the topic and the
 * kind, so a genuine batch copied to another topic, or into the other side
 * stream, does not verify there; bounds are checked before avsc reads.
 */
const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const origin = { keyId: keyId(createPublicKey(privateKey)), producerId: 'reader-1', service: 'registry' }
const dbAudit = createDbAuditBatchCodec()
const alerts = createAlertBatchCodec()
const statement = 'SELECT * FROM applicants WHERE id = 1'
const entry: DbAuditEvent = {
  event_id: uuidv7(), source_kind: 'pgaudit', logged_at: 1_796_000_000_000_000, db_name: 'registry', db_user: 'app', client_addr: '127.0.0.1',
  application_name: 'psql', db_session: '4242', command: 'SELECT', object_name: 'public.applicants', statement, statement_truncated: false,
  statement_digest: createHash('sha256').update(statement).digest('hex'), log_file: '/var/log/pg.csv', log_offset: 10, reader_seq: 1,
}

describe('side batches', () => {
  const topic = sideTopic('readtrail.access', 'db-audit')
  const message = dbAudit.encode(topic, origin, [entry], privateKey)

  it('round-trip with their origin, and verify for their own topic and kind only', () => {
    const decoded = dbAudit.decode(message)
    expect(decoded.origin).toEqual(origin)
    expect(dbAudit.schema.parse(decoded.events[0])).toEqual(entry)
    expect(dbAudit.verify(topic, message, publicKey)).toBe(true)
    // Copied to another deployment's topic, or into the alerts stream: refused.
    expect(dbAudit.verify(sideTopic('other.access', 'db-audit'), message, publicKey)).toBe(false)
    expect(alerts.verify(topic, message, publicKey)).toBe(false)
    expect(alerts.verify(sideTopic('readtrail.access', 'alert'), message, publicKey)).toBe(false)
  })

  it('do not verify with any byte changed', () => {
    for (let i = 0; i < message.length; i += 7) {
      const edited = Buffer.from(message)
      edited[i] = edited[i]! ^ 0x01
      expect(dbAudit.verify(topic, edited, publicKey), `byte ${i}`).toBe(false)
    }
  })

  it('are refused when they declare more events than a batch may hold, before avsc reads them', () => {
    // The events array's count is the zigzag varint after the origin: rewrite an empty batch's 0 as a huge count.
    const empty = dbAudit.encode(topic, origin, [], privateKey)
    const huge = Buffer.concat([empty.subarray(0, empty.length - 1), Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x0f])])
    expect(() => dbAudit.decode(huge)).toThrow(expect.objectContaining({ code: 'MESSAGE_MALFORMED' }))
    expect(() => alerts.encode(sideTopic('t', 'alert'), origin, Array.from({ length: MAX_SIDE_EVENTS_PER_BATCH + 1 }, () => ({}) as AlertEvent), privateKey)).toThrow(
      expect.objectContaining({ code: 'EVENT_INVALID' }),
    )
  })
})
