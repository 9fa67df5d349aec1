import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import type { IHeaders } from 'kafkajs'
import { keyId } from '../checkpoints/checkpoint.js'

/**
 * Headers of a dead letter (consumers/chain-writer.ts sendDeadLetters). The
 * message's key and value are copies of the source message's. The signature
 * covers the source, the error code, SHA-256 of that key and value, the
 * database and the key id; `error` is free text for people and proves nothing.
 */
export const DEAD_LETTER_HEADERS = Object.freeze({
  code: 'readtrail-error-code',
  error: 'readtrail-error',
  source: 'readtrail-source',
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
}

export interface DeadLetterSigningKey {
  privateKey: KeyObject
  publicKey: KeyObject
  keyId: string
}

const DOMAIN = 'readtrail-dead-letter-v1\n'
const SOURCE = /^([A-Za-z0-9._-]{1,249})\/(\d{1,10})@(\d{1,20})$/
const HEX32 = /^[0-9a-f]{64}$/
const SIGNATURE = /^[A-Za-z0-9+/]{85}[AQgw]==$/
const PUBLIC_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/

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
export function deadLetterClaimOf(database: string, source: string, message: { key: Buffer | null; value: Buffer | null }, code: string): DeadLetterClaim {
  return { database, source, key_sha256: sha256Hex(message.key), value_sha256: sha256Hex(message.value), code }
}

/**
 * The exact bytes signed: a domain tag of its own, so no checkpoint
 * signature can pass for a dead letter's (or the reverse), and the fields in
 * a fixed order. The key id is inside, so a signature names the key that
 * made it.
 */
export function deadLetterSigningBytes(claim: DeadLetterClaim, signerKeyId: string): Buffer {
  return Buffer.from(DOMAIN + JSON.stringify([1, claim.database, claim.source, claim.key_sha256, claim.value_sha256, claim.code, signerKeyId]), 'utf8')
}

/** The signature headers of a dead letter making `claim`. */
export function signDeadLetter(claim: DeadLetterClaim, key: DeadLetterSigningKey): Record<string, string> {
  const raw = Buffer.from(key.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url')
  return {
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
  }
}

/** Why a dead letter is not believed; `unsigned` ones predate signing, or were forged. */
export type DeadLetterProblem = 'unsigned' | 'malformed' | 'other_key' | 'bad_signature'

export type DeadLetterVerdict = { ok: true; claim: DeadLetterClaim } | { ok: false; problem: DeadLetterProblem; detail: string }

/**
 * Checks a dead letter's signature. The digests signed for are those of the
 * dead letter's own key and value, the copy of its source message, so a
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
  const claim = deadLetterClaimOf(database, h.source, letter, h.code)
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
