import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import type { IHeaders } from 'kafkajs'
import { keyId } from '../checkpoints/checkpoint.js'

/**
 * Headers of a dead letter (consumers/dead-letter-record.ts). The message's
 * key and value are copies of the source message's, except that a key over
 * a small bound is replaced by its SHA-256 (`keySha256`) and a value too
 * large for the dead-letter topic by its SHA-256 and size (`valueSha256`,
 * `valueSize`). The signature covers the source, the error code, SHA-256 of
 * the source's key and value (copied or replaced alike), the database, the
 * producer id and sequence number when the message named them, and the key
 * id; `error` and `valueSize` are free text for people and prove nothing.
 */
export const DEAD_LETTER_HEADERS = Object.freeze({
  code: 'readtrail-error-code',
  error: 'readtrail-error',
  source: 'readtrail-source',
  /** SHA-256 (hex) of the source's key, present instead of the key when it was too long to copy. */
  keySha256: 'readtrail-key-sha256',
  /** SHA-256 (hex) of the source's value, present instead of the value when the copy did not fit the dead-letter topic. */
  valueSha256: 'readtrail-value-sha256',
  /** Size in bytes of the value left out. */
  valueSize: 'readtrail-value-size',
  /** The producer id and sequence number the message named (decoded by the writer), so verify can account for the producer's hole. */
  producerId: 'readtrail-producer-id',
  producerSeq: 'readtrail-producer-seq',
  /** Events the message held from producerSeq on (a wire-2 batch of more than one); absent: one. */
  producerEvents: 'readtrail-producer-events',
  /** `2` when the signature covers the producer, `3` when it also covers producerEvents (deadLetterSigningBytes); absent for v1 letters. */
  version: 'readtrail-signature-version',
  /** keyId() of the signing key, hex. */
  keyId: 'readtrail-key-id',
  /** The raw 32-byte Ed25519 public key, base64: trusted only if its keyId is the checkpoint key's. */
  publicKey: 'readtrail-signing-key',
  /** Ed25519 over deadLetterSigningBytes(), base64. */
  signature: 'readtrail-signature',
})

/**
 * What a signed dead letter vouches for: the writer of `database` did not
 * store the message at `source` (`<topic>/<partition>@<offset>`) whose key and
 * value hash to these digests, for the reason `code`. Verify lets such a
 * dead letter explain an offset gap; an unsigned one explains nothing, since
 * anyone with produce rights on the dead-letter topic can write one.
 */
export interface DeadLetterClaim {
  database: string
  source: string
  /** SHA-256 of the source message's key, hex; null when it had none. */
  key_sha256: string | null
  /** SHA-256 of the source message's value, hex; null when it had none. */
  value_sha256: string | null
  code: string
  /**
   * The producer id and sequence number the source message named, where the
   * writer could decode them; absent or null: none (a v1 letter).
   */
  producer?: DeadLetterProducer | null
}

/** Who the dead-lettered message says produced it: the producer's claim, vouched for by nobody but the message. */
export interface DeadLetterProducer {
  producer_id: string
  /** The first event's seq. */
  producer_seq: number
  /** Events the message held (a batch's seqs run on from producer_seq); absent: one. */
  producer_events?: number
}

export interface DeadLetterSigningKey {
  privateKey: KeyObject
  publicKey: KeyObject
  keyId: string
}

const DOMAIN = 'readtrail-dead-letter-v1\n'
const DOMAIN_V2 = 'readtrail-dead-letter-v2\n'
const DOMAIN_V3 = 'readtrail-dead-letter-v3\n'
const SOURCE = /^([A-Za-z0-9._-]{1,249})\/(\d{1,10})@(\d{1,20})$/
const HEX32 = /^[0-9a-f]{64}$/
const SIGNATURE = /^[A-Za-z0-9+/]{85}[AQgw]==$/
const PUBLIC_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/
/** As schemas/access-event.ts bounds a producer id, and printable: it travels in a header and into reports. */
const PRODUCER_ID = /^[\x21-\x7e]{1,200}$/
const PRODUCER_SEQ = /^[1-9][0-9]{0,15}$/
/** Events in one batch: 2 to MAX_EVENTS_PER_BATCH (100,000). */
const PRODUCER_EVENTS = /^(?:[2-9]|[1-9][0-9]{1,4}|100000)$/

/** A producer id and seq as a dead letter may carry them; null for anything the headers cannot hold faithfully. */
export function deadLetterProducerOf(event: unknown, events = 1): DeadLetterProducer | null {
  if (event === null || typeof event !== 'object') return null
  const { producer_id: id, producer_seq: seq } = event as { producer_id?: unknown; producer_seq?: unknown }
  const n = typeof seq === 'bigint' ? Number(seq) : seq
  if (typeof id !== 'string' || !PRODUCER_ID.test(id) || typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) return null
  return events > 1 && Number.isSafeInteger(n + events) ? { producer_id: id, producer_seq: n, producer_events: events } : { producer_id: id, producer_seq: n }
}

/** The source string every dead letter names. */
export function deadLetterSource(topic: string, partition: number, offset: bigint | string): string {
  return `${topic}/${partition}@${offset}`
}

/** `<topic>/<partition>@<offset>` parsed; null for anything else (the header is attacker-controlled). */
export function parseDeadLetterSource(text: string): { topic: string; partition: number; offset: bigint } | null {
  const m = SOURCE.exec(text)
  if (!m) return null
  const partition = Number(m[2])
  return Number.isSafeInteger(partition) ? { topic: m[1]!, partition, offset: BigInt(m[3]!) } : null
}

export function sha256Hex(bytes: Buffer | null): string | null {
  return bytes === null ? null : createHash('sha256').update(bytes).digest('hex')
}

/** The claim a dead letter for `message` makes. */
export function deadLetterClaimOf(
  database: string,
  source: string,
  message: { key: Buffer | null; value: Buffer | null },
  code: string,
  producer: DeadLetterProducer | null = null,
): DeadLetterClaim {
  return { database, source, key_sha256: sha256Hex(message.key), value_sha256: sha256Hex(message.value), code, ...(producer ? { producer } : {}) }
}

/**
 * The exact bytes signed: a domain tag of its own, so no checkpoint
 * signature can pass for a dead letter's (or the reverse), and the fields in
 * a fixed order. The key id is inside, so a signature names the key that
 * made it. A claim naming a producer is signed as v2 (another domain tag,
 * the producer inside): its producer headers cannot be stripped, added or
 * edited without breaking the signature, and v1 letters verify as before.
 */
export function deadLetterSigningBytes(claim: DeadLetterClaim, signerKeyId: string): Buffer {
  const p = claim.producer
  if (p?.producer_events !== undefined) {
    return Buffer.from(DOMAIN_V3 + JSON.stringify([3, claim.database, claim.source, claim.key_sha256, claim.value_sha256, claim.code, p.producer_id, p.producer_seq, p.producer_events, signerKeyId]), 'utf8')
  }
  if (p) {
    return Buffer.from(DOMAIN_V2 + JSON.stringify([2, claim.database, claim.source, claim.key_sha256, claim.value_sha256, claim.code, p.producer_id, p.producer_seq, signerKeyId]), 'utf8')
  }
  return Buffer.from(DOMAIN + JSON.stringify([1, claim.database, claim.source, claim.key_sha256, claim.value_sha256, claim.code, signerKeyId]), 'utf8')
}

/** The signature headers of a dead letter making `claim` (with its producer headers when it names one). */
export function signDeadLetter(claim: DeadLetterClaim, key: DeadLetterSigningKey): Record<string, string> {
  const raw = Buffer.from(key.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url')
  const p = claim.producer
  return {
    ...(p ? { [DEAD_LETTER_HEADERS.version]: p.producer_events !== undefined ? '3' : '2', [DEAD_LETTER_HEADERS.producerId]: p.producer_id, [DEAD_LETTER_HEADERS.producerSeq]: String(p.producer_seq) } : {}),
    ...(p?.producer_events !== undefined ? { [DEAD_LETTER_HEADERS.producerEvents]: String(p.producer_events) } : {}),
    [DEAD_LETTER_HEADERS.keyId]: key.keyId,
    [DEAD_LETTER_HEADERS.publicKey]: raw.toString('base64'),
    [DEAD_LETTER_HEADERS.signature]: sign(null, deadLetterSigningBytes(claim, key.keyId), key.privateKey).toString('base64'),
  }
}

/** One header as text; the first value of a repeated header. */
export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name]
  const value = Array.isArray(raw) ? raw[0] : raw
  return value === undefined ? undefined : value.toString()
}

/** What a dead letter's headers say, before any of it is believed. */
export interface DeadLetterHeaders {
  source: string
  code: string
  keyId: string | undefined
  publicKey: string | undefined
  signature: string | undefined
  keySha256: string | undefined
  valueSha256: string | undefined
  producerId: string | undefined
  producerSeq: string | undefined
  producerEvents: string | undefined
  version: string | undefined
}

/** The dead-letter headers of a message; null when it names no source at all. */
export function readDeadLetterHeaders(headers: IHeaders | undefined): DeadLetterHeaders | null {
  const source = headerText(headers, DEAD_LETTER_HEADERS.source)
  if (source === undefined) return null
  return {
    source,
    code: headerText(headers, DEAD_LETTER_HEADERS.code) ?? '',
    keyId: headerText(headers, DEAD_LETTER_HEADERS.keyId),
    publicKey: headerText(headers, DEAD_LETTER_HEADERS.publicKey),
    signature: headerText(headers, DEAD_LETTER_HEADERS.signature),
    keySha256: headerText(headers, DEAD_LETTER_HEADERS.keySha256),
    valueSha256: headerText(headers, DEAD_LETTER_HEADERS.valueSha256),
    producerId: headerText(headers, DEAD_LETTER_HEADERS.producerId),
    producerSeq: headerText(headers, DEAD_LETTER_HEADERS.producerSeq),
    producerEvents: headerText(headers, DEAD_LETTER_HEADERS.producerEvents),
    version: headerText(headers, DEAD_LETTER_HEADERS.version),
  }
}

/**
 * What the letter's headers say its source's key and value hashed to, and
 * the producer it names: a replaced key or value stands in by its hash
 * header, which then must be the only form (a letter carrying both a key
 * and a key hash is malformed, never read one way or the other). null when
 * the headers are not well formed.
 */
function claimedParts(
  letter: { key: Buffer | null; value: Buffer | null },
  h: DeadLetterHeaders,
): { key_sha256: string | null; value_sha256: string | null; producer: DeadLetterProducer | null } | null {
  const hashOf = (copy: Buffer | null, header: string | undefined): string | null | undefined => {
    if (header === undefined) return sha256Hex(copy)
    if (copy !== null || !HEX32.test(header)) return undefined
    return header
  }
  const key = hashOf(letter.key, h.keySha256)
  const value = hashOf(letter.value, h.valueSha256)
  if (key === undefined || value === undefined) return null
  if (h.version === undefined) {
    if (h.producerId !== undefined || h.producerSeq !== undefined || h.producerEvents !== undefined) return null
    return { key_sha256: key, value_sha256: value, producer: null }
  }
  if ((h.version !== '2' && h.version !== '3') || h.producerId === undefined || h.producerSeq === undefined) return null
  // A v2 letter names one event, a v3 letter how many: the header is there exactly when the version says so.
  if ((h.version === '3') !== (h.producerEvents !== undefined)) return null
  const seq = Number(h.producerSeq)
  if (!PRODUCER_ID.test(h.producerId) || !PRODUCER_SEQ.test(h.producerSeq) || !Number.isSafeInteger(seq)) return null
  if (h.producerEvents === undefined) return { key_sha256: key, value_sha256: value, producer: { producer_id: h.producerId, producer_seq: seq } }
  const events = Number(h.producerEvents)
  if (!PRODUCER_EVENTS.test(h.producerEvents) || !Number.isSafeInteger(seq + events)) return null
  return { key_sha256: key, value_sha256: value, producer: { producer_id: h.producerId, producer_seq: seq, producer_events: events } }
}

/** Why a dead letter is not believed; `unsigned` ones predate signing, or were forged. */
export type DeadLetterProblem = 'unsigned' | 'malformed' | 'other_key' | 'bad_signature'

export type DeadLetterVerdict = { ok: true; claim: DeadLetterClaim } | { ok: false; problem: DeadLetterProblem; detail: string }

/**
 * Checks a dead letter's signature. The digests signed for are those of the
 * dead letter's own key and value, the copy of its source message (or the
 * hash headers standing in for a key or value left out), so a
 * signed dead letter can be checked after its source left Kafka; the caller
 * compares claim.key_sha256/value_sha256 with the source message while it is
 * there. The public key travels in a header, so the verifier needs no key
 * file of its own: it counts only if its keyId is `trustedKeyId`, the
 * checkpoint key's (faking that takes a SHA-256 preimage). Never throws on
 * attacker input.
 */
export function verifyDeadLetter(
  letter: { key: Buffer | null; value: Buffer | null; headers?: IHeaders | undefined },
  trustedKeyId: string,
  database: string,
): DeadLetterVerdict {
  const h = readDeadLetterHeaders(letter.headers)
  if (h === null) return { ok: false, problem: 'malformed', detail: 'it names no source' }
  if (h.signature === undefined && h.publicKey === undefined && h.keyId === undefined) {
    return { ok: false, problem: 'unsigned', detail: 'it is unsigned (written before dead letters were signed, or forged by a producer of the dead-letter topic)' }
  }
  if (h.signature === undefined || h.publicKey === undefined || h.keyId === undefined) {
    return { ok: false, problem: 'malformed', detail: 'its signature headers are incomplete' }
  }
  if (!SIGNATURE.test(h.signature) || !PUBLIC_KEY.test(h.publicKey) || !HEX32.test(h.keyId) || !CODE.test(h.code)) {
    return { ok: false, problem: 'malformed', detail: 'its signature, key or error code headers are not well formed' }
  }
  const parts = claimedParts(letter, h)
  if (parts === null) return { ok: false, problem: 'malformed', detail: 'its key, value or producer headers are not well formed' }
  let publicKey: KeyObject
  let id: string
  try {
    publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(h.publicKey, 'base64').toString('base64url') }, format: 'jwk' })
    id = keyId(publicKey)
  } catch {
    return { ok: false, problem: 'malformed', detail: 'its signing key is not an Ed25519 public key' }
  }
  if (id !== h.keyId || id !== trustedKeyId) {
    return { ok: false, problem: 'other_key', detail: `it is signed by another key (${h.keyId.slice(0, 16)}…) than the checkpoint key (${trustedKeyId.slice(0, 16)}…)` }
  }
  const claim: DeadLetterClaim = { database, source: h.source, key_sha256: parts.key_sha256, value_sha256: parts.value_sha256, code: h.code, ...(parts.producer ? { producer: parts.producer } : {}) }
  let valid = false
  try {
    valid = verify(null, deadLetterSigningBytes(claim, id), publicKey, Buffer.from(h.signature, 'base64'))
  } catch {
    valid = false
  }
  if (!valid) {
    return {
      ok: false,
      problem: 'bad_signature',
      detail: 'its signature does not hold for its source, error code and message (copied from another dead letter, edited, or made for another database)',
    }
  }
  return { ok: true, claim }
}

/** Whether a believed claim is about exactly this source message. */
export function isClaimAbout(claim: DeadLetterClaim, message: { key: Buffer | null; value: Buffer | null }): boolean {
  return claim.key_sha256 === sha256Hex(message.key) && claim.value_sha256 === sha256Hex(message.value)
}
