import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  checkpointDigest,
  checkpointSigningBytes,
  GENESIS_CHECKPOINT,
  isValidSignature,
  keyId,
  signCheckpoint,
  SignedCheckpoint,
  type CheckpointBody,
} from '../../checkpoints/checkpoint.js'

const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const other = generateKeyPairSync('ed25519')

function body(overrides: Partial<CheckpointBody> = {}): CheckpointBody {
  return {
    v: 1,
    database: 'readtrail',
    chain_id: 'access/0',
    index: 1,
    seq: 42,
    hash: 'ab'.repeat(32),
    kafka_offset: '41',
    signed_at: '2025-01-02T03:04:05.678Z',
    prev: GENESIS_CHECKPOINT,
    key_id: keyId(publicKey),
    ...overrides,
  }
}

/** A different valid value for every field, so each edit still passes the schema and only the signature can catch it. */
const EDITS: { [K in keyof SignedCheckpoint]: SignedCheckpoint[K] } = {
  v: 1,
  database: 'other',
  chain_id: 'access/1',
  index: 2,
  seq: 43,
  hash: 'cd'.repeat(32),
  kafka_offset: '42',
  signed_at: '2025-01-02T03:04:06.678Z',
  prev: 'ef'.repeat(32),
  key_id: keyId(other.publicKey),
  sig: '',
}

describe('signed checkpoints', () => {
  it('verifies with the signing key and parses as a SignedCheckpoint', () => {
    const cp = signCheckpoint(body(), privateKey)
    expect(SignedCheckpoint.parse(cp)).toEqual(cp)
    expect(isValidSignature(cp, publicKey)).toBe(true)
  })

  it.each(Object.keys(EDITS).filter((k) => k !== 'v' && k !== 'sig') as (keyof CheckpointBody)[])('fails verification when %s is changed after signing', (field) => {
    const cp = signCheckpoint(body(), privateKey)
    const edited = { ...cp, [field]: EDITS[field] }
    expect(SignedCheckpoint.safeParse(edited).success).toBe(true)
    expect(isValidSignature(edited, publicKey)).toBe(false)
  })

  it('fails verification when the signature is changed or comes from another key', () => {
    const cp = signCheckpoint(body(), privateKey)
    const sig = Buffer.from(cp.sig, 'base64')
    sig[0] = sig[0]! ^ 1
    expect(isValidSignature({ ...cp, sig: sig.toString('base64') }, publicKey)).toBe(false)
    const byOther = signCheckpoint(body(), other.privateKey)
    expect(isValidSignature(byOther, publicKey)).toBe(false)
    expect(isValidSignature(cp, other.publicKey)).toBe(false)
  })

  it('signs the same bytes whatever the key order of the parsed JSON', () => {
    const b = body()
    const reversed = Object.fromEntries(Object.entries(b).reverse()) as CheckpointBody
    expect(JSON.stringify(reversed)).not.toBe(JSON.stringify(b))
    expect(checkpointSigningBytes(reversed).equals(checkpointSigningBytes(b))).toBe(true)
    expect(checkpointDigest(reversed)).toBe(checkpointDigest(b))
    const cp = signCheckpoint(b, privateKey)
    const shuffled = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(cp).reverse()))) as SignedCheckpoint
    expect(isValidSignature(SignedCheckpoint.parse(shuffled), publicKey)).toBe(true)
  })

  it('names a key by a stable id that differs between keys', () => {
    const id = keyId(publicKey)
    expect(id).toMatch(/^[0-9a-f]{64}$/)
    expect(keyId(publicKey)).toBe(id)
    // The id survives a round trip through PEM and through the private key.
    expect(keyId(createPublicKey(publicKey.export({ format: 'pem', type: 'spki' })))).toBe(id)
    expect(keyId(createPublicKey(privateKey))).toBe(id)
    expect(keyId(generateKeyPairSync('ed25519').publicKey)).not.toBe(id)
  })

  it('chains checkpoints through prev: the digest changes with every field', () => {
    const first = body()
    expect(checkpointDigest(first)).toMatch(/^[0-9a-f]{64}$/)
    expect(checkpointDigest({ ...first, seq: 43 })).not.toBe(checkpointDigest(first))
  })

  it.each([
    ['an unknown version', { v: 2 }],
    ['an empty database', { database: '' }],
    ['index 0', { index: 0 }],
    ['a fractional seq', { seq: 1.5 }],
    ['an unsafe seq', { seq: Number.MAX_SAFE_INTEGER + 1 }],
    ['uppercase hex', { hash: 'AB'.repeat(32) }],
    ['a short hash', { hash: 'ab'.repeat(31) }],
    ['a negative offset', { kafka_offset: '-1' }],
    ['a numeric offset', { kafka_offset: 41 }],
    ['a non-UTC time', { signed_at: '2025-01-02T03:04:05+01:00' }],
    ['a short prev', { prev: '00' }],
    ['a bad key id', { key_id: 'x'.repeat(64) }],
    ['a non-base64 sig', { sig: '!'.repeat(86) + '==' }],
    ['an unknown key', { extra: 1 }],
  ])('rejects a checkpoint with %s', (_name, change) => {
    const cp = signCheckpoint(body(), privateKey)
    expect(SignedCheckpoint.safeParse({ ...cp, ...change }).success).toBe(false)
  })

  it('rejects a checkpoint with a missing field', () => {
    const { seq: _seq, ...rest } = signCheckpoint(body(), privateKey)
    expect(SignedCheckpoint.safeParse(rest).success).toBe(false)
  })
})
