import { createHash, generateKeyPairSync, sign } from 'node:crypto'
import type { IHeaders } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { checkpointSigningBytes, keyId } from '../../checkpoints/checkpoint.js'
import {
  DEAD_LETTER_HEADERS,
  deadLetterClaimOf,
  deadLetterSigningBytes,
  deadLetterSource,
  isClaimAbout,
  parseDeadLetterSource,
  signDeadLetter,
  verifyDeadLetter,
  type DeadLetterSigningKey,
} from '../../consumers/dead-letter-signature.js'

function newKey(): DeadLetterSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey, keyId: keyId(publicKey) }
}
const key = newKey()
const other = newKey()
const DB = 'readtrail'
const source = { key: Buffer.from('read-1'), value: Buffer.from('avro bytes') }

/** A dead letter as the writer sends it: the source's key and value, and the headers. */
function letter(options: { code?: string; src?: string; signWith?: DeadLetterSigningKey | null; database?: string } = {}): { key: Buffer | null; value: Buffer | null; headers: IHeaders } {
  const code = options.code ?? 'ROW_REJECTED'
  const src = options.src ?? 'access/0@7'
  const signer = options.signWith === undefined ? key : options.signWith
  const signature = signer ? signDeadLetter(deadLetterClaimOf(options.database ?? DB, src, source, code), signer) : {}
  return { ...source, headers: { [DEAD_LETTER_HEADERS.code]: code, [DEAD_LETTER_HEADERS.error]: 'why', [DEAD_LETTER_HEADERS.source]: src, ...signature } }
}

describe('dead-letter signing bytes', () => {
  const claim = deadLetterClaimOf(DB, 'access/0@7', source, 'ROW_REJECTED')

  it('are a domain tag and the fields in a fixed order, hashes of key and value included', () => {
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
    expect(deadLetterSigningBytes(claim, key.keyId).toString('utf8')).toBe(
      `readtrail-dead-letter-v1\n${JSON.stringify([1, DB, 'access/0@7', sha(source.key), sha(source.value), 'ROW_REJECTED', key.keyId])}`,
    )
  })

  it('tell a message without a key or value from one with an empty one', () => {
    const none = deadLetterClaimOf(DB, 'access/0@7', { key: null, value: null }, 'MESSAGE_MALFORMED')
    const empty = deadLetterClaimOf(DB, 'access/0@7', { key: Buffer.alloc(0), value: Buffer.alloc(0) }, 'MESSAGE_MALFORMED')
    expect(none.key_sha256).toBeNull()
    expect(deadLetterSigningBytes(none, key.keyId).equals(deadLetterSigningBytes(empty, key.keyId))).toBe(false)
  })

  it.each([
    ['source', { ...claim, source: 'access/0@8' }],
    ['partition', { ...claim, source: 'access/1@7' }],
    ['error code', { ...claim, code: 'MESSAGE_MALFORMED' }],
    ['database', { ...claim, database: 'other' }],
    ['key hash', { ...claim, key_sha256: 'ab'.repeat(32) }],
    ['value hash', { ...claim, value_sha256: 'ab'.repeat(32) }],
  ])('change when the %s changes', (_, edited) => {
    expect(deadLetterSigningBytes(edited, key.keyId).equals(deadLetterSigningBytes(claim, key.keyId))).toBe(false)
  })

  it('can never be the bytes of a checkpoint (domain tags differ)', () => {
    const cp = checkpointSigningBytes({ v: 1, database: DB, chain_id: 'access/0', index: 1, seq: 1, hash: 'ab'.repeat(32), kafka_offset: '7', signed_at: '2025-01-01T00:00:00.000Z', prev: '0'.repeat(64), key_id: key.keyId })
    const tag = 'readtrail-dead-letter-v1\n'
    expect(deadLetterSigningBytes(claim, key.keyId).toString('utf8').startsWith(tag)).toBe(true)
    expect(cp.toString('utf8').startsWith(tag)).toBe(false)
  })
})

describe('verifyDeadLetter', () => {
  it('believes a dead letter the writer signed, and says what it claims', () => {
    const verdict = verifyDeadLetter(letter(), key.keyId, DB)
    expect(verdict).toMatchObject({ ok: true, claim: { source: 'access/0@7', code: 'ROW_REJECTED', database: DB } })
    if (verdict.ok) expect(isClaimAbout(verdict.claim, source)).toBe(true)
    if (verdict.ok) expect(isClaimAbout(verdict.claim, { ...source, value: Buffer.from('another message') })).toBe(false)
  })

  it('an unsigned dead letter (old, or forged) is not believed and says it is unsigned', () => {
    expect(verifyDeadLetter(letter({ signWith: null }), key.keyId, DB)).toMatchObject({ ok: false, problem: 'unsigned' })
  })

  it('a signature copied onto another source does not hold', () => {
    const genuine = letter({ src: 'access/0@7' })
    const copied = { ...genuine, headers: { ...genuine.headers, [DEAD_LETTER_HEADERS.source]: 'access/0@9' } }
    expect(verifyDeadLetter(copied, key.keyId, DB)).toMatchObject({ ok: false, problem: 'bad_signature' })
  })

  it('an edited error code breaks the signature', () => {
    const genuine = letter({ code: 'MESSAGE_MALFORMED' })
    const edited = { ...genuine, headers: { ...genuine.headers, [DEAD_LETTER_HEADERS.code]: 'ROW_REJECTED' } }
    expect(verifyDeadLetter(edited, key.keyId, DB)).toMatchObject({ ok: false, problem: 'bad_signature' })
  })

  it('another message body under a genuine signature does not hold', () => {
    expect(verifyDeadLetter({ ...letter(), value: Buffer.from('swapped') }, key.keyId, DB)).toMatchObject({ ok: false, problem: 'bad_signature' })
  })

  it('a dead letter signed for another database does not hold here', () => {
    expect(verifyDeadLetter(letter({ database: 'other' }), key.keyId, DB)).toMatchObject({ ok: false, problem: 'bad_signature' })
  })

  it('another key is refused, even when the letter claims the trusted key id', () => {
    expect(verifyDeadLetter(letter({ signWith: other }), key.keyId, DB)).toMatchObject({ ok: false, problem: 'other_key' })
    const lying = letter({ signWith: other })
    lying.headers[DEAD_LETTER_HEADERS.keyId] = key.keyId
    expect(verifyDeadLetter(lying, key.keyId, DB)).toMatchObject({ ok: false, problem: 'other_key' })
  })

  it('a signature by another key over the trusted public key header does not hold', () => {
    const forged = letter()
    const claim = deadLetterClaimOf(DB, 'access/0@7', source, 'ROW_REJECTED')
    forged.headers[DEAD_LETTER_HEADERS.signature] = sign(null, deadLetterSigningBytes(claim, key.keyId), other.privateKey).toString('base64')
    expect(verifyDeadLetter(forged, key.keyId, DB)).toMatchObject({ ok: false, problem: 'bad_signature' })
  })

  it.each([
    ['a half-signed letter', { [DEAD_LETTER_HEADERS.signature]: undefined }],
    ['a signature that is not base64', { [DEAD_LETTER_HEADERS.signature]: '!'.repeat(88) }],
    ['a public key of the wrong length', { [DEAD_LETTER_HEADERS.publicKey]: 'AAAA' }],
    ['an error code that is not a code', { [DEAD_LETTER_HEADERS.code]: 'x'.repeat(5000) }],
  ])('%s is malformed, never a throw', (_, edit) => {
    const l = letter()
    const headers: IHeaders = { ...l.headers, ...(edit as IHeaders) }
    for (const [k, v] of Object.entries(headers)) if (v === undefined) delete headers[k]
    expect(verifyDeadLetter({ ...l, headers }, key.keyId, DB)).toMatchObject({ ok: false, problem: 'malformed' })
  })
})

describe('dead-letter sources', () => {
  it('round-trip, and anything else is refused', () => {
    expect(parseDeadLetterSource(deadLetterSource('access.v1', 3, 42n))).toEqual({ topic: 'access.v1', partition: 3, offset: 42n })
    for (const bad of ['access/0', 'access@1', 'a/b/0@1', 'access/-1@2', 'access/0@1x', `${'a'.repeat(300)}/0@1`]) expect(parseDeadLetterSource(bad)).toBeNull()
  })
})
