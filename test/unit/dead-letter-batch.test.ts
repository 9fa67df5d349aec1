import { generateKeyPairSync } from 'node:crypto'
import type { IHeaders } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { keyId } from '../../checkpoints/checkpoint.js'
import { DEAD_LETTER_HEADERS, deadLetterClaimOf, deadLetterProducerOf, signDeadLetter, verifyDeadLetter, type DeadLetterProducer } from '../../consumers/dead-letter-signature.js'

const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const key = { privateKey, publicKey, keyId: keyId(publicKey) }
const source = { key: null, value: Buffer.from('a refused batch') }

/** A dead letter for a batch, as the writer sends it; `edit` changes its headers after signing. */
function letter(producer: DeadLetterProducer | null, edit: (h: Record<string, string>) => void = () => {}): { key: Buffer | null; value: Buffer | null; headers: IHeaders } {
  const headers: Record<string, string> = {
    [DEAD_LETTER_HEADERS.code]: 'SIGNATURE_INVALID',
    [DEAD_LETTER_HEADERS.source]: 'access/0@9',
    ...signDeadLetter(deadLetterClaimOf('readtrail', 'access/0@9', source, 'SIGNATURE_INVALID', producer), key),
  }
  edit(headers)
  return { ...source, headers }
}

describe('a dead letter for a refused batch names every seq it held', () => {
  it('the writer claims the first event and the count (one event: the v2 form)', () => {
    const first = { producer_id: 'registry-api:h:1', producer_seq: 41 }
    expect(deadLetterProducerOf(first, 5)).toEqual({ producer_id: 'registry-api:h:1', producer_seq: 41, producer_events: 5 })
    expect(deadLetterProducerOf(first, 1)).toEqual({ producer_id: 'registry-api:h:1', producer_seq: 41 })
  })

  it('verifies with the count signed, and the count cannot be edited, added or dropped', () => {
    const producer = { producer_id: 'registry-api:h:1', producer_seq: 41, producer_events: 5 }
    const good = verifyDeadLetter(letter(producer), key.keyId, 'readtrail')
    expect(good).toEqual({ ok: true, claim: expect.objectContaining({ producer }) })
    expect(verifyDeadLetter(letter(producer, (h) => (h[DEAD_LETTER_HEADERS.producerEvents] = '500')), key.keyId, 'readtrail')).toMatchObject({ ok: false, problem: 'bad_signature' })
    expect(verifyDeadLetter(letter(producer, (h) => delete h[DEAD_LETTER_HEADERS.producerEvents]), key.keyId, 'readtrail')).toMatchObject({ ok: false, problem: 'malformed' })
    const single = { producer_id: 'registry-api:h:1', producer_seq: 41 }
    expect(verifyDeadLetter(letter(single, (h) => (h[DEAD_LETTER_HEADERS.producerEvents] = '5')), key.keyId, 'readtrail')).toMatchObject({ ok: false, problem: 'malformed' })
  })

  it.each(['1', '0', '-3', '100001', '5e3', ' 5', '05'])('refuses a count of %j as malformed', (count) => {
    const producer = { producer_id: 'p', producer_seq: 1, producer_events: 5 }
    expect(verifyDeadLetter(letter(producer, (h) => (h[DEAD_LETTER_HEADERS.producerEvents] = count)), key.keyId, 'readtrail')).toMatchObject({ ok: false, problem: 'malformed' })
  })
})
