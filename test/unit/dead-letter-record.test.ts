import { createHash, generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { keyId } from '../../checkpoints/checkpoint.js'
import { batchDeadLetters, buildDeadLetter, DEAD_LETTER_KEY_MAX, recordBytes } from '../../consumers/dead-letter-record.js'
import { DEAD_LETTER_HEADERS, deadLetterProducerOf, isClaimAbout, verifyDeadLetter, type DeadLetterSigningKey } from '../../consumers/dead-letter-signature.js'

function newKey(): DeadLetterSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey, keyId: keyId(publicKey) }
}
const key = newKey()
const DB = 'readtrail'
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const LIMITS = { partitions: 1, maxMessageBytes: 1024 * 1024 }

function input(message: { key: Buffer | null; value: Buffer | null }, options: { partition?: number; producer?: { producer_id: string; producer_seq: number } | null } = {}) {
  return { topic: 'access', partition: options.partition ?? 0, message: { ...message, offset: '17' }, code: 'MESSAGE_MALFORMED', error: 'not avro', producer: options.producer ?? null }
}

/** What a reader of the dead-letter topic gets back: the record's key, value and headers. */
const asRead = (r: { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }) => ({ key: r.key, value: r.value, headers: r.headers })

describe('dead letters never cost their partition more than a hash', () => {
  it('a key over the bound is replaced by its SHA-256; the letter still verifies and still matches its source', () => {
    const source = { key: Buffer.alloc(2 * 1024 * 1024, 7), value: Buffer.from('garbage') }
    const record = buildDeadLetter(input(source), DB, key, LIMITS)
    expect(record.key).toBeNull()
    expect(record.headers[DEAD_LETTER_HEADERS.keySha256]).toBe(sha(source.key))
    expect(record.value!.equals(source.value)).toBe(true)
    const verdict = verifyDeadLetter(asRead(record), key.keyId, DB)
    expect(verdict).toMatchObject({ ok: true })
    if (verdict.ok) expect(isClaimAbout(verdict.claim, source)).toBe(true)
  })

  it('a key at the bound is copied', () => {
    const source = { key: Buffer.alloc(DEAD_LETTER_KEY_MAX, 1), value: Buffer.from('x') }
    const record = buildDeadLetter(input(source), DB, key, LIMITS)
    expect(record.key!.equals(source.key)).toBe(true)
    expect(record.headers[DEAD_LETTER_HEADERS.keySha256]).toBeUndefined()
  })

  it('a value too large for the dead-letter topic is left out, its hash and size kept, still signed and matching its source', () => {
    const source = { key: Buffer.from('k'), value: Buffer.alloc(LIMITS.maxMessageBytes - 100, 3) }
    const record = buildDeadLetter(input(source), DB, key, LIMITS)
    expect(record.truncated).toBe(true)
    expect(record.value).toBeNull()
    expect(record.headers[DEAD_LETTER_HEADERS.valueSha256]).toBe(sha(source.value))
    expect(record.headers[DEAD_LETTER_HEADERS.valueSize]).toBe(String(source.value.length))
    expect(record.headers[DEAD_LETTER_HEADERS.source]).toBe('access/0@17')
    expect(record.bytes).toBeLessThanOrEqual(LIMITS.maxMessageBytes)
    const verdict = verifyDeadLetter(asRead(record), key.keyId, DB)
    expect(verdict).toMatchObject({ ok: true })
    if (verdict.ok) expect(isClaimAbout(verdict.claim, source)).toBe(true)
    if (verdict.ok) expect(isClaimAbout(verdict.claim, { ...source, value: Buffer.alloc(source.value.length, 4) })).toBe(false)
  })

  it('a letter that fits keeps its value', () => {
    const record = buildDeadLetter(input({ key: null, value: Buffer.alloc(1000) }), DB, key, LIMITS)
    expect(record.truncated).toBe(false)
    expect(record.bytes).toBe(recordBytes(record))
  })

  it('goes to an explicit partition: the source partition modulo the dead-letter partitions', () => {
    expect(buildDeadLetter(input({ key: null, value: null }, { partition: 5 }), DB, key, { partitions: 3, maxMessageBytes: 1e6 }).partition).toBe(2)
    expect(buildDeadLetter(input({ key: null, value: null }, { partition: 5 }), DB, key, { partitions: 1, maxMessageBytes: 1e6 }).partition).toBe(0)
  })

  it('a hash header beside a copied key or value is malformed, never read either way', () => {
    const record = buildDeadLetter(input({ key: Buffer.alloc(5000), value: Buffer.from('v') }), DB, key, LIMITS)
    expect(verifyDeadLetter({ ...asRead(record), key: Buffer.from('k') }, key.keyId, DB)).toMatchObject({ ok: false, problem: 'malformed' })
    const full = buildDeadLetter(input({ key: null, value: Buffer.from('v') }), DB, key, LIMITS)
    const both = { ...asRead(full), headers: { ...full.headers, [DEAD_LETTER_HEADERS.valueSha256]: sha(Buffer.from('v')) } }
    expect(verifyDeadLetter(both, key.keyId, DB)).toMatchObject({ ok: false, problem: 'malformed' })
  })

  it('a replaced key hash edited breaks the signature', () => {
    const record = buildDeadLetter(input({ key: Buffer.alloc(5000), value: Buffer.from('v') }), DB, key, LIMITS)
    const edited = { ...asRead(record), headers: { ...record.headers, [DEAD_LETTER_HEADERS.keySha256]: 'ab'.repeat(32) } }
    expect(verifyDeadLetter(edited, key.keyId, DB)).toMatchObject({ ok: false, problem: 'bad_signature' })
  })
})

describe('dead letters name the producer and seq, bound by the signature', () => {
  const producer = { producer_id: 'billing-api', producer_seq: 42 }
  const record = buildDeadLetter(input({ key: null, value: Buffer.from('v') }, { producer }), DB, key, LIMITS)

  it('signed as v2 with the producer inside', () => {
    expect(record.headers).toMatchObject({ [DEAD_LETTER_HEADERS.version]: '2', [DEAD_LETTER_HEADERS.producerId]: 'billing-api', [DEAD_LETTER_HEADERS.producerSeq]: '42' })
    expect(verifyDeadLetter(asRead(record), key.keyId, DB)).toMatchObject({ ok: true, claim: { producer } })
  })

  it.each([
    ['another seq', { [DEAD_LETTER_HEADERS.producerSeq]: '43' }, 'bad_signature'],
    ['another producer', { [DEAD_LETTER_HEADERS.producerId]: 'payroll' }, 'bad_signature'],
    ['the version stripped', { [DEAD_LETTER_HEADERS.version]: undefined }, 'malformed'],
    ['the producer stripped', { [DEAD_LETTER_HEADERS.producerId]: undefined, [DEAD_LETTER_HEADERS.producerSeq]: undefined, [DEAD_LETTER_HEADERS.version]: undefined }, 'bad_signature'],
    ['a seq that is not a number', { [DEAD_LETTER_HEADERS.producerSeq]: '4e1' }, 'malformed'],
  ])('%s does not hold', (_, edit, problem) => {
    const headers: Record<string, string | undefined> = { ...record.headers, ...edit }
    for (const [k, v] of Object.entries(headers)) if (v === undefined) delete headers[k]
    expect(verifyDeadLetter({ ...asRead(record), headers: headers as Record<string, string> }, key.keyId, DB)).toMatchObject({ ok: false, problem })
  })

  it('producer headers added to a v1 letter make it malformed', () => {
    const v1 = buildDeadLetter(input({ key: null, value: Buffer.from('v') }), DB, key, LIMITS)
    const added = { ...asRead(v1), headers: { ...v1.headers, [DEAD_LETTER_HEADERS.producerId]: 'p', [DEAD_LETTER_HEADERS.producerSeq]: '1' } }
    expect(verifyDeadLetter(added, key.keyId, DB)).toMatchObject({ ok: false, problem: 'malformed' })
  })

  it('only what a header can carry faithfully is taken from a decoded message', () => {
    expect(deadLetterProducerOf({ producer_id: 'p', producer_seq: 3 })).toEqual({ producer_id: 'p', producer_seq: 3 })
    expect(deadLetterProducerOf({ producer_id: 'p', producer_seq: 3n })).toEqual({ producer_id: 'p', producer_seq: 3 })
    for (const bad of [null, 'x', {}, { producer_id: 'p' }, { producer_id: 'p', producer_seq: 0 }, { producer_id: 'p q', producer_seq: 1 }, { producer_id: 'p', producer_seq: 2 ** 60 }, { producer_id: 'x'.repeat(300), producer_seq: 1 }]) {
      expect(deadLetterProducerOf(bad)).toBeNull()
    }
  })
})

describe('batchDeadLetters', () => {
  it('splits sends so no record batch exceeds the limit, and keeps order', () => {
    const records = [600, 600, 100, 900].map((n, i) => buildDeadLetter({ ...input({ key: null, value: Buffer.alloc(n * 1024) }), error: String(i) }, DB, key, LIMITS))
    const batches = batchDeadLetters(records, LIMITS.maxMessageBytes)
    expect(batches.map((b) => b.map((r) => r.headers[DEAD_LETTER_HEADERS.error]))).toEqual([['0'], ['1', '2'], ['3']])
    for (const b of batches) expect(b.reduce((n, r) => n + r.bytes, 0)).toBeLessThanOrEqual(LIMITS.maxMessageBytes + 200 * b.length)
  })
})
