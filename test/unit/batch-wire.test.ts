import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { keyId } from '../../checkpoints/checkpoint.js'
import { createMessageTrust } from '../../consumers/message-trust.js'
import { formatTrustedProducers, parseTrustedProducers } from '../../consumers/trusted-producers.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createBatchCodec, type BatchOrigin } from '../../schemas/batch-codec.js'
import { isUnsigned, signBatch, SIGNATURE_OFFSET, verifyBatch } from '../../schemas/batch-signature.js'
import { createCodec, HEADER_LENGTH } from '../../schemas/codec.js'
import { MAX_EVENTS_PER_BATCH } from '../../schemas/decode-bounds.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import { isReadtrailError } from '../../common/errors.js'

const batches = createBatchCodec(loadSchemaRegistry(undefined, 'access-batch'))
const events = createCodec(loadSchemaRegistry())
const TOPIC = 'readtrail.access'

function key(): { privateKey: KeyObject; publicKey: KeyObject; keyId: string; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey, keyId: keyId(publicKey), pem: publicKey.export({ type: 'spki', format: 'pem' }).toString() }
}
const records = key()
const billing = key()
const trusted = parseTrustedProducers(
  formatTrustedProducers([
    { keyId: records.keyId, service: 'records-api', publicKeyPem: records.pem, addedAt: '2026-12-05T00:00:00.000Z' },
    { keyId: billing.keyId, service: 'billing', publicKeyPem: billing.pem, addedAt: '2026-12-05T00:00:00.000Z' },
  ]),
  '/trusted.json',
)

function event(seq: number, origin: BatchOrigin = { keyId: '', producerId: 'records-api:h:1', service: 'records-api', environment: 'production' }): AccessEvent {
  return {
    event_id: `0190a4b2-1c3d-7e4f-8a5b-${seq.toString(16).padStart(12, '0')}`,
    read_id: '0190a4b2-1c3d-7e4f-9a5b-6c7d8e9f0a1c',
    part_index: 0,
    part_count: 1,
    occurred_at: 1_718_000_000_123_456 + seq,
    principal_id: 'clerk-17',
    principal_type: 'user',
    on_behalf_of: null,
    session_hash: seq % 2 === 0 ? Buffer.alloc(32, seq) : null,
    client_ip: '10.1.2.3',
    service: origin.service,
    environment: origin.environment,
    action: 'read',
    db_name: 'registry',
    table_name: 'students',
    columns: ['id', 'name'],
    record_ids: Array.from({ length: seq % 5 }, (_, i) => `${seq}-${i}`),
    record_ids_complete: true,
    row_count: seq % 5,
    query_fingerprint: 'SELECT id, name FROM students WHERE id = ?',
    db_session: seq % 3 === 0 ? '' : String(4000 + seq),
    statement_digest: seq % 3 === 0 ? '' : seq.toString(16).padStart(64, 'c'),
    purpose: null,
    trace_id: null,
    outcome: 'success',
    producer_id: origin.producerId,
    producer_seq: seq,
  }
}

function batchOf(n: number, signer?: { privateKey: KeyObject; keyId: string }, service = 'records-api', topic = TOPIC): { message: Buffer; sent: AccessEvent[] } {
  const origin = { keyId: signer?.keyId ?? '', producerId: `${service}:h:1`, service, environment: 'production' }
  const framer = batches.framer(origin)
  const sent = Array.from({ length: n }, (_, i) => event(i + 1, origin))
  const bodies = sent.map((e) => framer.encodeEvent(e))
  const message = framer.frame(bodies, bodies.reduce((a, b) => a + b.length, 0))
  if (signer) signBatch(topic, message, signer.privateKey)
  return { message, sent }
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isReadtrailError(err) ? err.code : `uncoded: ${(err as Error).message}`
  }
  return undefined
}

describe('wire v3: a batch frames and decodes every event as sent', () => {
  it.each([0, 1, 2, 63, 64, 200])('%i events', (n) => {
    const { message, sent } = batchOf(n)
    const decoded = batches.decode(message)
    expect(decoded.origin).toEqual({ keyId: '', producerId: 'records-api:h:1', service: 'records-api', environment: 'production' })
    expect(decoded.events).toEqual(sent)
    expect(decoded.writer.version).toBe(3)
    expect(isUnsigned(message)).toBe(true)
  })

  it('keeps the events within the overhead the producer budgets for', () => {
    const origin = { keyId: records.keyId, producerId: 'p'.repeat(256), service: 's'.repeat(256), environment: 'e'.repeat(256) }
    const framer = batches.framer(origin)
    const body = framer.encodeEvent(event(1, origin))
    const bodies = Array.from({ length: 20_000 }, () => body)
    const total = body.length * bodies.length
    expect(framer.frame(bodies, total).length).toBeLessThanOrEqual(framer.overhead + total)
  })
})

describe('wire v2: signatures', () => {
  it('verify for the key and topic that signed, and for nothing else', () => {
    const { message } = batchOf(3, records)
    expect(verifyBatch(TOPIC, message, records.publicKey)).toBe(true)
    expect(verifyBatch(`${TOPIC}2`, message, records.publicKey)).toBe(false)
    expect(verifyBatch(TOPIC, message, billing.publicKey)).toBe(false)
  })

  it('break when any byte of the message changes: header, signature, origin or events', () => {
    const { message } = batchOf(3, records)
    for (const at of [0, 2, HEADER_LENGTH - 1, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 63, SIGNATURE_OFFSET + 70, message.length - 40, message.length - 1]) {
      const copy = Buffer.from(message)
      copy[at] = copy[at]! ^ 0x01
      expect(verifyBatch(TOPIC, copy, records.publicKey), `byte ${at}`).toBe(false)
    }
    expect(verifyBatch(TOPIC, Buffer.concat([message, Buffer.from([0])]), records.publicKey)).toBe(false)
    expect(verifyBatch(TOPIC, message.subarray(0, 20), records.publicKey)).toBe(false)
  })
})

describe('the writer reads only what a trusted key vouches for', () => {
  const strict = createMessageTrust({ trusted, allowUnsigned: false })
  const migrating = createMessageTrust({ trusted, allowUnsigned: true })

  it('stores a signed batch with the key that vouched for it', () => {
    const { message, sent } = batchOf(4, records)
    const read = strict.read(TOPIC, message)
    expect(read).toMatchObject({ keyId: records.keyId, schemaVersion: 3, producerId: 'records-api:h:1' })
    expect(read.events).toEqual(sent)
  })

  it('refuses unsigned batches and wire-1 messages unless migration allows them', () => {
    const unsigned = batchOf(2).message
    const v1 = events.encode(event(1))
    expect(codeOf(() => strict.read(TOPIC, unsigned))).toBe('MESSAGE_UNSIGNED')
    expect(codeOf(() => strict.read(TOPIC, v1))).toBe('MESSAGE_UNSIGNED')
    expect(migrating.read(TOPIC, unsigned)).toMatchObject({ keyId: '', schemaVersion: 3 })
    // Wire 1 carries no connection key: its event reads back with ''.
    expect(migrating.read(TOPIC, v1)).toMatchObject({ keyId: '', schemaVersion: 1, events: [{ ...event(1), db_session: '', statement_digest: '' }] })
  })

  it('refuses a key nobody trusts, a forged signature, another topic, and a trusted key speaking for another service', () => {
    const stranger = key()
    expect(codeOf(() => strict.read(TOPIC, batchOf(2, stranger).message))).toBe('PRODUCER_KEY_UNKNOWN')
    // The forger names a trusted key but cannot sign with it.
    const forged = batchOf(2, { privateKey: stranger.privateKey, keyId: records.keyId }).message
    expect(codeOf(() => strict.read(TOPIC, forged))).toBe('SIGNATURE_INVALID')
    expect(codeOf(() => strict.read(TOPIC, batchOf(2, records, 'records-api', 'other.topic').message))).toBe('SIGNATURE_INVALID')
    // billing's own key, signing events that claim to come from records-api.
    expect(codeOf(() => strict.read(TOPIC, batchOf(2, billing, 'records-api').message))).toBe('PRODUCER_NOT_AUTHORIZED')
    // A signature present but no key id, and a key id with the signature zeroed: neither passes as unsigned.
    const noId = batchOf(2).message
    noId.fill(7, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 64)
    expect(codeOf(() => migrating.read(TOPIC, noId))).toBe('PRODUCER_KEY_UNKNOWN')
    const zeroed = batchOf(2, records).message
    zeroed.fill(0, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 64)
    expect(codeOf(() => migrating.read(TOPIC, zeroed))).toBe('SIGNATURE_INVALID')
  })

  it('checks the signature before decoding: a forged batch declaring 2^31 events costs nothing', () => {
    const { message } = batchOf(1, records)
    // Rewrite the events count of a signed message: the signature no longer verifies, so avsc never sees it.
    const framerOverheadStart = message.length - batches.framer({ keyId: records.keyId, producerId: 'records-api:h:1', service: 'records-api', environment: 'production' }).encodeEvent(event(1)).length - 2
    const hostile = Buffer.concat([message.subarray(0, framerOverheadStart), Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x0f]), message.subarray(framerOverheadStart + 1)])
    const started = process.hrtime.bigint()
    expect(codeOf(() => strict.read(TOPIC, hostile))).toBe('SIGNATURE_INVALID')
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(1000)
  })

  it('bounds an unsigned batch as it bounds events: too many events, an oversize record id inside an event', () => {
    const origin = { keyId: '', producerId: 'p', service: 'records-api', environment: 'production' }
    const framer = batches.framer(origin)
    const body = framer.encodeEvent(event(1, origin))
    const declared = Buffer.concat([framer.frame([body], body.length)])
    // Count byte after the origin: 0x02 (one event) becomes MAX+1 events.
    const countAt = declared.length - body.length - 2
    expect(declared[countAt]).toBe(2)
    const zz = (MAX_EVENTS_PER_BATCH + 1) * 2
    const varint: number[] = []
    let v = zz
    while (v >= 0x80) {
      varint.push((v & 0x7f) | 0x80)
      v = Math.floor(v / 128)
    }
    varint.push(v)
    const tooMany = Buffer.concat([declared.subarray(0, countAt), Buffer.from(varint), Buffer.alloc((MAX_EVENTS_PER_BATCH + 1) * 2, 0)])
    expect(codeOf(() => migrating.read(TOPIC, tooMany))).toBe('MESSAGE_MALFORMED')
    const longId = { ...event(2, origin), record_ids: ['x'.repeat(512 * 4 + 1)] }
    const longBody = framer.encodeEvent(longId)
    expect(codeOf(() => migrating.read(TOPIC, framer.frame([longBody], longBody.length)))).toBe('MESSAGE_MALFORMED')
  })
})

describe('the decoder never refuses what the validator accepts', () => {
  it('a principal of 256 astral characters (4 UTF-8 bytes each) decodes and validates, on either wire', async () => {
    const { assertAccessEvent } = await import('../../consumers/validate-event.js')
    const wide = { ...event(3), principal_id: '😀'.repeat(256) }
    const v1 = events.decode(events.encode(wide)).event
    expect(() => assertAccessEvent(v1)).not.toThrow()
    const framer = batches.framer({ keyId: '', producerId: wide.producer_id, service: wide.service, environment: wide.environment })
    const body = framer.encodeEvent(wide)
    const [v2] = batches.decode(framer.frame([body], body.length)).events
    expect(() => assertAccessEvent(v2)).not.toThrow()
    expect(v2).toEqual(wide)
  })
})
