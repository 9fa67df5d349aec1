import { createPrivateKey, createPublicKey, KeyObject } from 'node:crypto'
import { keyId } from '../checkpoints/checkpoint.js'
import { readCheckedFile } from '../common/checked-read.js'
import { ProducerError } from './errors.js'

/** The Ed25519 key a producing service signs its batches with. */
export interface ProducerSigningKey {
  privateKey: KeyObject
  publicKey: KeyObject
  /** keyId(publicKey): the id the trusted-producers file lists this service's key under. */
  keyId: string
}

// A PKCS#8 PEM of an Ed25519 key is 119 bytes; the bound only keeps a
// mistaken path (a log file, a device) from being read whole into memory.
const MAX_KEY_FILE_BYTES = 16 * 1024

/**
 * Loads a producer's signing key from a PKCS#8 PEM file, or checks one
 * handed over as a KeyObject. Whoever reads this key can sign batches the
 * chain writer stores as this service's, so the file must be the current
 * user's and private to them (no group or other bits), and nothing about the
 * key ever goes into an error or a log line: only the path and the problem.
 * Throws PRODUCER_KEY_INVALID (never retriable: the same file fails again).
 */
export function loadProducerSigningKey(source: string | KeyObject): ProducerSigningKey {
  const privateKey = typeof source === 'string' ? privateKeyFromFile(source) : privateKeyFromObject(source)
  const publicKey = createPublicKey(privateKey)
  return Object.freeze({ privateKey, publicKey, keyId: keyId(publicKey) })
}

function privateKeyFromFile(path: string): KeyObject {
  const pem = readCheckedFile(path, { maxBytes: MAX_KEY_FILE_BYTES, forbiddenModeBits: 0o077, rootMayOwn: false }, (refusal) =>
    invalid(path, refusal.problem, `the producer signing key ${path} ${refusal.message}`, refusal.cause),
  )
  let privateKey: KeyObject
  try {
    if (!pem.includes('-----BEGIN PRIVATE KEY-----')) {
      const encrypted = pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')
      throw invalid(path, 'not-pkcs8-pem', `${path} is not ${encrypted ? 'an unencrypted' : 'a'} PKCS#8 PEM private key (no BEGIN PRIVATE KEY line)${encrypted ? '; the producer reads it unattended, so it cannot be passphrase-protected' : ''}`)
    }
    try {
      privateKey = createPrivateKey({ key: pem, format: 'pem' })
    } catch (cause) {
      // Node's parse errors describe the encoding, never the key bytes.
      throw invalid(path, 'not-pkcs8-pem', `${path} is not a readable PEM private key: ${(cause as Error).message}`, cause)
    }
  } finally {
    // The PEM text is the secret itself; do not leave a copy for a heap dump.
    pem.fill(0)
  }
  assertEd25519(privateKey, path)
  return privateKey
}

function privateKeyFromObject(key: KeyObject): KeyObject {
  if (!(key instanceof KeyObject) || key.type !== 'private') {
    throw invalid(undefined, 'not-private-key', `the producer signing key given is ${key instanceof KeyObject ? `a ${key.type} KeyObject` : 'not a KeyObject'}; expected an Ed25519 private KeyObject or the path of a PKCS#8 PEM file`)
  }
  assertEd25519(key, undefined)
  return key
}

function assertEd25519(key: KeyObject, path: string | undefined): void {
  if (key.asymmetricKeyType === 'ed25519') return
  const type = key.asymmetricKeyType ?? 'unknown'
  throw invalid(path, 'not-ed25519', `${path ?? 'the producer signing key given'} holds a ${type} key; producers sign batches with Ed25519`, undefined, { key_type: type })
}

function invalid(path: string | undefined, problem: string, message: string, cause?: unknown, extra: Record<string, unknown> = {}): ProducerError {
  return new ProducerError('PRODUCER_KEY_INVALID', message, { cause, details: { ...(path === undefined ? {} : { path }), problem, ...extra } })
}
