import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { GENESIS_CHECKPOINT, keyId, signCheckpoint, type SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { emptyChain, linkEntries } from '../../consumers/chain.js'
import { isReadtrailError } from '../../common/errors.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { ACCESS_LOG_COLUMNS, writeCanonical, type ChainedRow } from '../../store/access-log-columns.js'
import { ipToIPv6Bytes } from '../../store/ip.js'
import { RowBinaryWriter } from '../../store/row-binary.js'
import { EVIDENCE_FORMAT, evidenceEventOf, ipText, parseEvidenceText, serializeEvidenceBundle, type EvidenceBundle } from '../../evidence/bundle.js'
import { EvidenceError } from '../../evidence/errors.js'
import { verifyEvidence, type EvidenceVerdict } from '../../evidence/verify-bundle.js'
import { chainedRow } from '../helpers/chained-row.js'
import { makeEvent } from '../helpers/events.js'
import { thrownBy } from '../helpers/thrown.js'

const CHAIN = 'access-events/3'
const DATABASE = 'readtrail'
const INGESTED_AT = Date.UTC(2026, 10, 27, 12) * 1000 + 123

interface SigningPair {
  privateKey: KeyObject
  publicKey: KeyObject
  pem: string
  keyId: string
}

function newKey(): SigningPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey, pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), keyId: keyId(publicKey) }
}

/** Events that exercise every kind of JSON text: escapes, non-ASCII, astral characters, NULLs and both IP families. */
function chainEvents(): AccessEvent[] {
  return [
    makeEvent({ client_ip: '10.0.0.1' }),
    makeEvent({ client_ip: null, record_ids: [], db_session: '12345', statement_digest: '5e'.repeat(32) }),
    makeEvent({
      principal_id: 'Zoë 🦊 — 東京',
      principal_type: 'service',
      on_behalf_of: 'case-officer "x" \\ \n tab\t',
      session_hash: Buffer.alloc(32, 0xab),
      client_ip: '2001:db8:85a3::8a2e:370:7334',
      action: 'export',
      columns: ['id', 'full_name', 'national_id'],
      record_ids: ['1', 'é', '', 'x'.repeat(40), 'a"b\\c'],
      record_ids_complete: false,
      row_count: 123_456,
      purpose: 'appeal №42 – review',
      trace_id: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      outcome: 'denied',
      query_fingerprint: 'SELECT id, full_name FROM "applicants" WHERE id IN (?+)',
    }),
    makeEvent({ client_ip: '::1' }),
    makeEvent({ client_ip: '255.255.255.255' }),
    makeEvent(),
  ]
}

interface Fixture {
  rows: ChainedRow[]
  hashes: Buffer[]
  key: SigningPair
}

const PRODUCER_KEY = 'c0'.repeat(32)

/**
 * Each fixture event's Kafka place: seq 1 an unsigned wire-1 message, seqs
 * 2..4 one signed batch of three, seq 5 a signed batch of one and seq 6
 * another wire-1 message, so checkpoints at seqs 4, 5 and 6 sit at a
 * message's end, as the signer places them.
 */
const PLACES = [
  { offset: 1000n, index: 0, events: 1, keyId: '' },
  { offset: 1001n, index: 0, events: 3, keyId: PRODUCER_KEY },
  { offset: 1001n, index: 1, events: 3, keyId: PRODUCER_KEY },
  { offset: 1001n, index: 2, events: 3, keyId: PRODUCER_KEY },
  { offset: 1002n, index: 0, events: 1, keyId: PRODUCER_KEY },
  { offset: 1003n, index: 0, events: 1, keyId: '' },
]

/** Rows linked with the project's own encoder, cross-checked against linkEntries. */
function chainFixture(events = chainEvents()): Fixture {
  const rows: ChainedRow[] = []
  const hashes: Buffer[] = []
  let prev = Buffer.alloc(32)
  for (const [i, event] of events.entries()) {
    const at = PLACES[i]!
    const row = chainedRow(event, { chain_id: CHAIN, seq: i + 1, prev_hash: prev, kafka_offset: at.offset, message_index: at.index, message_events: at.events, ingested_at: INGESTED_AT, key_id: at.keyId })
    const w = new RowBinaryWriter()
    writeCanonical(w, row)
    prev = createHash('sha256').update(w.view(0)).digest()
    rows.push(row)
    hashes.push(prev)
  }
  const linked = linkEntries(emptyChain(CHAIN), events.map((event, i) => ({ event, ...PLACES[i]!, schemaVersion: 1 })), INGESTED_AT)
  expect(linked.head.hash.equals(prev)).toBe(true)
  return { rows, hashes, key: newKey() }
}

function checkpointAt(f: Fixture, seq: number, key: SigningPair = f.key, overrides: Partial<SignedCheckpoint> = {}): SignedCheckpoint {
  const row = f.rows[seq - 1]!
  return signCheckpoint(
    {
      v: 1,
      database: DATABASE,
      chain_id: CHAIN,
      index: 7,
      seq,
      hash: f.hashes[seq - 1]!.toString('hex'),
      kafka_offset: row.kafka_offset.toString(),
      signed_at: '2026-11-27T12:00:10.000Z',
      prev: GENESIS_CHECKPOINT,
      key_id: key.keyId,
      ...overrides,
    },
    key.privateKey,
  )
}

/** A bundle for the event at `eventSeq`, anchored by a checkpoint at `checkpointSeq`, built the way the exporter lays it out. */
function bundleFor(f: Fixture, eventSeq: number, checkpointSeq: number): EvidenceBundle {
  const segment = f.rows.slice(eventSeq, checkpointSeq).map((row) => {
    const w = new RowBinaryWriter()
    writeCanonical(w, row)
    return { seq: row.seq, encoding: w.view(32).toString('base64') }
  })
  return {
    format: EVIDENCE_FORMAT,
    exported_at: '2026-11-28T09:00:00.000Z',
    database: DATABASE,
    event: evidenceEventOf(f.rows[eventSeq - 1]!, f.hashes[eventSeq - 1]!),
    segment,
    checkpoint: checkpointAt(f, checkpointSeq),
    public_key: f.key.pem,
    key_id: f.key.keyId,
  }
}

/** Verifies a bundle file's text; an EVIDENCE_INVALID rejection counts as not proved. */
function verdictOfText(text: string, trustedKeyPem: string): EvidenceVerdict | 'invalid' {
  try {
    return verifyEvidence(parseEvidenceText(text), { trustedKeyPem })
  } catch (err) {
    if (err instanceof EvidenceError && err.code === 'EVIDENCE_INVALID') return 'invalid'
    throw err
  }
}

/** [start, end) of the JSON value that follows `"key": ` at its first occurrence, scanning strings and nesting. */
function valueSpan(text: string, key: string): [number, number] {
  const start = text.indexOf(`"${key}": `) + key.length + 4
  expect(start).toBeGreaterThan(key.length + 3)
  let depth = 0
  let inString = false
  for (let i = start; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') {
        inString = false
        if (depth === 0) return [start, i + 1]
      }
    } else if (c === '"') inString = true
    else if (c === '{' || c === '[') depth++
    else if (c === '}' || c === ']') {
      depth--
      if (depth === 0) return [start, i + 1]
    } else if (depth === 0 && (c === ',' || c === '\n')) return [start, i]
  }
  throw new Error(`no value for ${key}`)
}

const flip = (text: string, at: number) => `${text.slice(0, at)}${String.fromCharCode(text.charCodeAt(at) ^ 1)}${text.slice(at + 1)}`

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
/** The same text with the lowest bit of the base64 digit at `at` flipped. */
const flipBase64Bit = (text: string, at: number) => `${text.slice(0, at)}${B64[B64.indexOf(text[at]!) ^ 1]}${text.slice(at + 1)}`

const mutate = (b: EvidenceBundle, change: (copy: EvidenceBundle) => void): EvidenceBundle => {
  const copy = structuredClone(b)
  change(copy)
  return copy
}

const trusting = (f: Fixture) => ({ trustedKeyPem: f.key.pem })

/** Where a segment row's message_index starts: after chain_id (one length byte here), seq and kafka_offset. */
const placeAt = (bytes: Buffer) => 1 + bytes[0]! + 8 + 8

/** A segment row's encoding with its message_index and message_events replaced. */
function withPlace(encoding: string, place: { index: number; events: number }): string {
  const bytes = Buffer.from(encoding, 'base64')
  bytes.writeUInt32LE(place.index, placeAt(bytes))
  bytes.writeUInt32LE(place.events, placeAt(bytes) + 4)
  return bytes.toString('base64')
}

/** A segment row's encoding cut `delta` bytes after (negative: before) the end of its message_events. */
const placeEnd = (encoding: string, delta: number) => {
  const bytes = Buffer.from(encoding, 'base64')
  return bytes.subarray(0, placeAt(bytes) + 8 + delta).toString('base64')
}

describe('verifyEvidence', () => {
  it('proves an event in the middle of a chain, through the rows up to the checkpoint', () => {
    const f = chainFixture()
    const bundle = bundleFor(f, 3, 5)
    const verdict = verifyEvidence(JSON.parse(serializeEvidenceBundle(bundle)), trusting(f))
    expect(verdict.ok).toBe(true)
    expect(verdict.failed_step).toBeUndefined()
    expect(verdict.steps).toEqual([
      { name: 'parse', result: 'passed' },
      { name: 'event-hash', result: 'passed' },
      { name: 'walk-segment', result: 'passed' },
      { name: 'match-checkpoint', result: 'passed' },
      { name: 'check-signature', result: 'passed' },
      { name: 'check-trusted-key', result: 'passed' },
    ])
    expect(verdict.event).toEqual({
      event_id: f.rows[2]!.event_id,
      chain_id: CHAIN,
      seq: 3,
      principal_id: 'Zoë 🦊 — 東京',
      principal_type: 'service',
      action: 'export',
      db_name: 'registry',
      table_name: 'applicants',
      record_count: 5,
      record_ids_complete: false,
      occurred_at: expect.stringMatching(/^2026-11-27T10:00:00\.\d{6}Z$/),
    })
    expect(verdict.proved.join('\n')).toContain(`event ${f.rows[2]!.event_id} is row seq 3 of chain "${CHAIN}" in database ${DATABASE}`)
    expect(verdict.proved.join('\n')).toContain(`rows seq 3..5 of that chain link by SHA-256 to checkpoint #7 (seq 5`)
    expect(verdict.proved.join('\n')).toContain(`by key ${f.key.keyId}`)
    const limits = verdict.not_proved.join('\n')
    expect(limits).toContain('that no other event exists')
    expect(limits).toContain('that the rows are still in the database')
  })

  it('proves an event that is itself the checkpointed row (empty segment)', () => {
    const f = chainFixture()
    const verdict = verifyEvidence(bundleFor(f, 4, 4), trusting(f))
    expect(verdict.ok).toBe(true)
    expect(verdict.proved[1]).toMatch(/^row seq 4 of that chain/)
  })

  it('proves the first row of a chain (prev_hash genesis) and the last', () => {
    const f = chainFixture()
    expect(verifyEvidence(bundleFor(f, 1, 6), trusting(f)).ok).toBe(true)
    expect(verifyEvidence(bundleFor(f, 6, 6), trusting(f)).ok).toBe(true)
  })

  it('with the trusted key given, proves the signer', () => {
    const f = chainFixture()
    const verdict = verifyEvidence(bundleFor(f, 2, 5), { trustedKeyPem: f.key.pem })
    expect(verdict.ok).toBe(true)
    expect(verdict.steps.at(-1)).toEqual({ name: 'check-trusted-key', result: 'passed' })
    expect(verdict.proved.at(-1)).toBe(`key ${f.key.keyId} is the trusted public key given to the verifier`)
    expect(verdict.not_proved.join('\n')).not.toContain('belongs to the operator')
  })

  it('never proves anything after any single character of the event text is changed', () => {
    const f = chainFixture()
    const text = serializeEvidenceBundle(bundleFor(f, 3, 5))
    expect(verdictOfText(text, f.key.pem)).toMatchObject({ ok: true })
    const [start, end] = valueSpan(text, 'event')
    expect(JSON.parse(text.slice(start, end))).toEqual(JSON.parse(text).event)
    let invalid = 0
    for (let at = start; at < end; at++) {
      const verdict = verdictOfText(flip(text, at), f.key.pem)
      if (verdict === 'invalid') invalid++
      else expect(verdict.ok, `character ${at - start} of the event (${JSON.stringify(text[at])})`).toBe(false)
    }
    // Both kinds of rejection happen: malformed text and well-formed but false text.
    expect(invalid).toBeGreaterThan(0)
    expect(invalid).toBeLessThan(end - start)
  }, 60_000) // every character of the bundle, one verification each: seconds on a busy 2-core machine

  it('never proves anything after any single character of the file is changed, except the unsigned exported_at', () => {
    const f = chainFixture()
    const text = serializeEvidenceBundle(bundleFor(f, 2, 4))
    const [exportedStart, exportedEnd] = valueSpan(text, 'exported_at')
    for (let at = 0; at < text.length; at++) {
      const verdict = verdictOfText(flip(text, at), f.key.pem)
      if (at >= exportedStart && at < exportedEnd) continue
      if (verdict !== 'invalid') expect(verdict.ok, `character ${at} (${JSON.stringify(text[at])}) of the file`).toBe(false)
    }
    // The export time is the exporter's word: the verdict shows it but nothing signs it.
    const retimed = text.replace('2026-11-28T09:00:00.000Z', '2026-11-28T09:00:01.000Z')
    expect(verdictOfText(retimed, f.key.pem)).toMatchObject({ ok: true })
  }, 60_000) // every character of the bundle, one verification each: seconds on a busy 2-core machine

  describe('fails at the step that catches each tampering', () => {
    const f = chainFixture()
    const good = bundleFor(f, 2, 5)
    const cases: [string, (b: EvidenceBundle) => void, string][] = [
      ['an edited event column', (b) => (b.event.principal_id = 'someone.else'), 'event-hash'],
      ['an edited event hash', (b) => (b.event.hash = 'f'.repeat(64)), 'event-hash'],
      ['an edited prev_hash', (b) => (b.event.prev_hash = '0'.repeat(64)), 'event-hash'],
      ['an edited message_index', (b) => (b.event.message_index = 1), 'event-hash'],
      ['an edited message_events', (b) => (b.event.message_events = 4), 'event-hash'],
      ["another producer's key id", (b) => (b.event.key_id = 'c1'.repeat(32)), 'event-hash'],
      ['another connection id', (b) => (b.event.db_session = '12346'), 'event-hash'],
      ['a statement digest cleared', (b) => (b.event.statement_digest = ''), 'event-hash'],
      ['a signed event stated as unsigned', (b) => (b.event.key_id = ''), 'event-hash'],
      [
        'a flipped byte inside a segment encoding',
        (b) => {
          const bytes = Buffer.from(b.segment[1]!.encoding, 'base64')
          bytes[bytes.length - 5]! ^= 0x01
          b.segment[1]!.encoding = bytes.toString('base64')
        },
        'match-checkpoint',
      ],
      [
        'a segment row from another chain',
        (b) => {
          const bytes = Buffer.from(b.segment[0]!.encoding, 'base64')
          bytes[5]! ^= 0x01 // inside the chain_id string
          b.segment[0]!.encoding = bytes.toString('base64')
        },
        'walk-segment',
      ],
      ['a segment row whose bytes say another seq', (b) => (b.segment[0]!.encoding = b.segment[1]!.encoding), 'walk-segment'],
      ['a segment row labelled with another seq', (b) => (b.segment[0]!.seq = 4), 'walk-segment'],
      ['a missing middle segment row', (b) => b.segment.splice(1, 1), 'walk-segment'],
      ['a missing last segment row', (b) => b.segment.pop(), 'match-checkpoint'],
      ['a segment row whose message_index is not below its message_events', (b) => (b.segment[0]!.encoding = withPlace(b.segment[0]!.encoding, { index: 3, events: 3 })), 'walk-segment'],
      ['a segment row of a message of no events', (b) => (b.segment[1]!.encoding = withPlace(b.segment[1]!.encoding, { index: 0, events: 0 })), 'walk-segment'],
      ['a segment row moved to another place in its message', (b) => (b.segment[0]!.encoding = withPlace(b.segment[0]!.encoding, { index: 0, events: 3 })), 'match-checkpoint'],
      ['a segment row cut off inside its message place', (b) => (b.segment[0]!.encoding = placeEnd(b.segment[0]!.encoding, -1)), 'walk-segment'],
      [
        'base64 that differs only in unused bits',
        (b) => {
          const row = b.segment.find((r) => r.encoding.endsWith('='))!
          const enc = row.encoding
          const padded = enc.endsWith('==') ? 2 : 1
          const i = enc.length - padded - 1
          row.encoding = flipBase64Bit(enc, i)
          expect(Buffer.from(row.encoding, 'base64').equals(Buffer.from(enc, 'base64'))).toBe(true)
        },
        'walk-segment',
      ],
      ['a checkpoint hash edited', (b) => (b.checkpoint.hash = f.hashes[3]!.toString('hex')), 'match-checkpoint'],
      ['a checkpoint seq edited', (b) => (b.checkpoint.seq = 6), 'match-checkpoint'],
      ['a checkpoint of another database', (b) => (b.database = 'other_db'), 'match-checkpoint'],
      ['a checkpoint kafka_offset edited', (b) => (b.checkpoint.kafka_offset = '1'), 'match-checkpoint'],
      ['a checkpoint signed_at edited', (b) => (b.checkpoint.signed_at = '2026-11-27T12:00:11.000Z'), 'check-signature'],
      ['another valid signature (of another checkpoint)', (b) => (b.checkpoint.sig = checkpointAt(f, 4).sig), 'check-signature'],
      [
        "another key's public key and key id",
        (b) => {
          const other = newKey()
          b.public_key = other.pem
          b.key_id = other.keyId
        },
        'check-signature',
      ],
      ['a key id that is not the public key', (b) => (b.key_id = 'a'.repeat(64)), 'check-signature'],
    ]
    it.each(cases)('%s', (_, change, step) => {
      expect(verifyEvidence(good, trusting(f)).ok).toBe(true)
      const verdict = verifyEvidence(JSON.parse(JSON.stringify(mutate(good, change))), trusting(f))
      expect(verdict).toMatchObject({ ok: false, failed_step: step, proved: [] })
      expect(verdict.problem).toEqual(expect.any(String))
      const failedAt = verdict.steps.findIndex((s) => s.result === 'failed')
      expect(verdict.steps[failedAt]!.name).toBe(step)
      expect(verdict.steps.slice(failedAt + 1).every((s) => s.result === 'not_run')).toBe(true)
      expect(verdict.not_proved[0]).toContain(`the ${step} step refused the bundle`)
    })
  })

  it('a signature text that differs only in unused base64 bits is refused as malformed (one text per signature)', () => {
    const f = chainFixture()
    const bent = mutate(bundleFor(f, 2, 5), (b) => {
      const sig = b.checkpoint.sig
      b.checkpoint.sig = flipBase64Bit(sig, sig.length - 3)
      expect(Buffer.from(b.checkpoint.sig, 'base64').equals(Buffer.from(sig, 'base64'))).toBe(true)
    })
    let code: string | undefined
    try {
      expect(verifyEvidence(JSON.parse(JSON.stringify(bent)), trusting(f)).ok).toBe(false)
    } catch (err) {
      code = (err as { code?: string }).code
    }
    expect(code ?? 'EVIDENCE_INVALID').toBe('EVIDENCE_INVALID')
  })

  it('a checkpoint re-signed by another key is not proved without a trusted key (untrusted key), and fails against the trusted key', () => {
    const f = chainFixture()
    const forger = newKey()
    const forged = mutate(bundleFor(f, 2, 5), (b) => {
      b.checkpoint = checkpointAt(f, 5, forger)
      b.public_key = forger.pem
      b.key_id = forger.keyId
    })
    // Without a trusted key nothing is proved: the forged bundle holds together under the key it carries.
    const untrusted = verifyEvidence(forged)
    expect(untrusted).toMatchObject({ ok: false, code: 'EVIDENCE_KEY_UNTRUSTED', failed_step: 'check-trusted-key', proved: [] })
    expect(untrusted.problem).toMatch(/^untrusted key: /)
    expect(untrusted.problem).toContain(forger.keyId)
    expect(untrusted.steps.slice(0, -1).every((s) => s.result === 'passed')).toBe(true)
    const verdict = verifyEvidence(forged, { trustedKeyPem: f.key.pem })
    expect(verdict).toMatchObject({ ok: false, failed_step: 'check-trusted-key' })
    expect(verdict.problem).toContain(forger.keyId)
  })

  it('a trusted key that differs from the signer fails the trusted-key step', () => {
    const f = chainFixture()
    const verdict = verifyEvidence(bundleFor(f, 2, 5), { trustedKeyPem: newKey().pem })
    expect(verdict).toMatchObject({ ok: false, failed_step: 'check-trusted-key', proved: [] })
  })

  it('an unreadable trusted key is the operator’s error, thrown with its code', () => {
    const f = chainFixture()
    const err = thrownBy(Error, () => verifyEvidence(bundleFor(f, 2, 5), { trustedKeyPem: 'not a key' }))
    expect(isReadtrailError(err) && err.code).toBe('CHECKPOINT_KEY_INVALID')
  })

  describe('a malformed bundle throws EVIDENCE_INVALID naming the fields', () => {
    const f = chainFixture()
    const good = bundleFor(f, 2, 5)
    const cases: [string, unknown, string][] = [
      ['not an object', 'hello', '(root)'],
      ['another format', { ...good, format: 'readtrail-evidence-v4' }, 'format'],
      ['a v2 bundle (made before rows carried their connection key)', { ...good, format: 'readtrail-evidence-v2' }, 'format'],
      ['a db_session that is not decimal', mutate(good, (b) => (b.event.db_session = '0x10')), 'event.db_session'],
      ['an uppercase statement_digest', mutate(good, (b) => (b.event.statement_digest = 'AB'.repeat(32))), 'event.statement_digest'],
      ['a v1 bundle (made before rows carried their message place and producer key)', { ...good, format: 'readtrail-evidence-v1' }, 'format'],
      ['an unknown top-level key', { ...good, note: 'trust me' }, 'note'],
      ['an unknown event key', mutate(good, (b) => Object.assign(b.event, { extra: 1 })), 'event.extra'],
      ['a missing event column', mutate(good, (b) => delete (b.event as Partial<typeof b.event>).trace_id), 'event.trace_id'],
      ['uppercase hex', mutate(good, (b) => (b.event.hash = b.event.hash.toUpperCase())), 'event.hash'],
      ['short hex', mutate(good, (b) => (b.event.prev_hash = b.event.prev_hash.slice(2))), 'event.prev_hash'],
      ['an uppercase UUID', mutate(good, (b) => (b.event.event_id = b.event.event_id.toUpperCase())), 'event.event_id'],
      ['a non-canonical IPv6 text', mutate(good, (b) => (b.event.client_ip = '2001:0db8::1')), 'event.client_ip'],
      ['an IPv4-mapped IPv6 text', mutate(good, (b) => (b.event.client_ip = '::ffff:10.0.0.1')), 'event.client_ip'],
      ['an offset with a leading zero', mutate(good, (b) => (b.event.kafka_offset = '01001')), 'event.kafka_offset'],
      ['an offset beyond UInt64', mutate(good, (b) => (b.event.kafka_offset = '18446744073709551616')), 'event.kafka_offset'],
      ['a missing message_index', mutate(good, (b) => delete (b.event as Partial<typeof b.event>).message_index), 'event.message_index'],
      ['a negative message_index', mutate(good, (b) => (b.event.message_index = -1)), 'event.message_index'],
      ['a fractional message_index', mutate(good, (b) => (b.event.message_index = 0.5)), 'event.message_index'],
      ['a message_index beyond UInt32', mutate(good, (b) => (b.event.message_index = 2 ** 32)), 'event.message_index'],
      ['a message_index not below message_events', mutate(good, (b) => (b.event.message_index = b.event.message_events)), 'event.message_index'],
      ['a message of no events', mutate(good, (b) => Object.assign(b.event, { message_index: 0, message_events: 0 })), 'event.message_events'],
      ['message_events beyond UInt32', mutate(good, (b) => (b.event.message_events = 2 ** 32)), 'event.message_events'],
      ['message_events as text', mutate(good, (b) => Object.assign(b.event, { message_events: '3' })), 'event.message_events'],
      ['an uppercase key id', mutate(good, (b) => (b.event.key_id = PRODUCER_KEY.toUpperCase())), 'event.key_id'],
      ['a short key id', mutate(good, (b) => (b.event.key_id = PRODUCER_KEY.slice(2))), 'event.key_id'],
      ['a key id that is a name, not hex', mutate(good, (b) => (b.event.key_id = 'billing-service')), 'event.key_id'],
      ['a null key id', mutate(good, (b) => Object.assign(b.event, { key_id: null })), 'event.key_id'],
      ['a fractional time', mutate(good, (b) => (b.event.occurred_at += 0.5)), 'event.occurred_at'],
      ['a part index beyond UInt32', mutate(good, (b) => (b.event.part_index = 2 ** 32)), 'event.part_index'],
      ['an unknown enum name', mutate(good, (b) => Object.assign(b.event, { action: 'delete' })), 'event.action'],
      ['a lone surrogate', mutate(good, (b) => (b.event.principal_id = 'a\ud800b')), 'event.principal_id'],
      ['a segment row that is not base64', mutate(good, (b) => (b.segment[0]!.encoding = 'not base64!')), 'segment.0.encoding'],
      ['a private key instead of a public one', { ...good, public_key: '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n' }, 'public_key'],
      ['a signature that is not Ed25519-sized', mutate(good, (b) => (b.checkpoint.sig = 'AAAA')), 'checkpoint.sig'],
    ]
    it.each(cases)('%s', (_, value, key) => {
      const err = thrownBy(EvidenceError, () => verifyEvidence(value))
      expect(err.code).toBe('EVIDENCE_INVALID')
      expect(err.details?.['issues']).toEqual(expect.arrayContaining([expect.objectContaining({ key })]))
    })

    it('text that is not JSON', () => {
      const err = thrownBy(EvidenceError, () => parseEvidenceText(serializeEvidenceBundle(good).slice(0, -10)))
      expect(err.code).toBe('EVIDENCE_INVALID')
      expect(err.details?.['issues']).toEqual([{ key: '(root)', problem: 'not JSON' }])
    })
  })
})

describe('the event carries the Kafka place and producer key of its row', () => {
  it('round-trips a signed batch event and an unsigned wire-1 event through the JSON text', () => {
    const f = chainFixture()
    const batched = JSON.parse(serializeEvidenceBundle(bundleFor(f, 3, 4))) as EvidenceBundle
    expect(batched.event).toMatchObject({ kafka_offset: '1001', message_index: 1, message_events: 3, key_id: PRODUCER_KEY })
    expect(verifyEvidence(batched, trusting(f)).ok).toBe(true)
    const plain = JSON.parse(serializeEvidenceBundle(bundleFor(f, 1, 4))) as EvidenceBundle
    expect(plain.event).toMatchObject({ kafka_offset: '1000', message_index: 0, message_events: 1, key_id: '' })
    expect(verifyEvidence(plain, trusting(f)).ok).toBe(true)
  })

  it('lists the new columns in table order, as the row hash covers them', () => {
    const f = chainFixture()
    const keys = Object.keys(bundleFor(f, 2, 4).event)
    expect(keys).toEqual([...ACCESS_LOG_COLUMNS.map((c) => c.name), 'hash'])
  })

  it("the verifier's walk reads a segment row's place where the encoder writes it: right after chain_id, seq, kafka_offset", () => {
    expect(ACCESS_LOG_COLUMNS.slice(1, 6).map((c) => [c.name, c.type])).toEqual([
      ['chain_id', 'LowCardinality(String)'],
      ['seq', 'UInt64'],
      ['kafka_offset', 'UInt64'],
      ['message_index', 'UInt32'],
      ['message_events', 'UInt32'],
    ])
  })

  it('accepts the UInt32 edges: the last event of a message of 4294967295', () => {
    const f = chainFixture()
    const edge = mutate(bundleFor(f, 2, 4), (b) => Object.assign(b.event, { message_index: 2 ** 32 - 2, message_events: 2 ** 32 - 1 }))
    // Parsed, then refused only because the edited columns no longer hash to the stated hash.
    expect(verifyEvidence(edge, trusting(f))).toMatchObject({ ok: false, failed_step: 'event-hash' })
  })
})

describe('ipText', () => {
  it.each([
    ['192.0.2.10', '192.0.2.10'],
    ['0.0.0.0', '0.0.0.0'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8:0:0:0:0:0:7', '2001:db8::7'],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
    ['1:0:0:1:1:0:0:1', '1::1:1:0:0:1'],
    ['1:0:1:1:1:1:1:1', '1:0:1:1:1:1:1:1'],
    ['::ffff:192.0.2.10', '192.0.2.10'],
    ['fe80::', 'fe80::'],
    ['::1.2.3.4', '::102:304'],
  ])('%s is %s, and maps back to the same bytes', (input, canonical) => {
    const bytes = ipToIPv6Bytes(input)
    expect(ipText(bytes)).toBe(canonical)
    expect(ipToIPv6Bytes(canonical).equals(bytes)).toBe(true)
  })

  it('round-trips random addresses', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = randomBytes(16)
      // Runs of zero groups, where compression is decided.
      for (let g = 0; g < 8; g++) if (Math.random() < 0.4) bytes.writeUInt16BE(0, g * 2)
      expect(ipToIPv6Bytes(ipText(bytes)).equals(bytes)).toBe(true)
    }
  })
})
