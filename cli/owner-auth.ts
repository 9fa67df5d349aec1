import { createHash, randomBytes, sign, verify, type KeyObject } from 'node:crypto'

/**
 * How the owner of the embedded store proves each answer it gives on its
 * socket. Anyone who can write the data directory can put a socket and an
 * owner record of their own there, so neither says who answers. What does is
 * the checkpoint signing key, which only `readtrail consume` holds and which
 * lives outside the data directory: the owner signs every answer with it.
 *
 * Each answer is bound to the asker's fresh nonce, to the exact request bytes
 * and to the exact answer bytes, not only to a handshake. A handshake alone
 * could be relayed: a socket planted in the middle could pass the real
 * owner's handshake through and then substitute its own answers (or forward
 * a different question and return the real answer to it). One Ed25519
 * signature and a SHA-256 over the body per answer cost far less than the
 * store work behind any answer, so every answer carries its own proof.
 */

/** Domain separation: a signature made for this purpose is never also a valid checkpoint signature, nor the reverse. */
export const OWNER_PROOF_DOMAIN = 'readtrail-owner-v1\n'

/** What an owner's signature covers. */
export interface OwnerProofFields {
  /** The asker's fresh random nonce, hex. */
  nonce: string
  /** The socket path, with the data directory's symlinks resolved, as both sides see it. */
  socketPath: string
  /** The answering process's pid; the asker compares it with the owner record. */
  pid: number
  /** The database the owner's store serves. */
  database: string
  /** HTTP status of the answer: an error answer is proved like any other. */
  status: number
  /** 'json' or 'rows' (raw RowBinary bytes): how the asker will read the body. */
  kind: string
  /** SHA-256 of the request body exactly as sent. */
  requestDigest: Buffer
  /** SHA-256 of the answer body exactly as sent. */
  responseDigest: Buffer
}

export const NONCE_BYTES = 32

export function createNonce(): string {
  return randomBytes(NONCE_BYTES).toString('hex')
}

export function isNonce(value: unknown): value is string {
  return typeof value === 'string' && value.length === NONCE_BYTES * 2 && /^[0-9a-f]+$/.test(value)
}

export function digestOf(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest()
}

/** The exact bytes signed: the domain, then the fields as one JSON array (unambiguous whatever a path contains). */
export function ownerProofMessage(f: OwnerProofFields): Buffer {
  const fields = [f.nonce, f.socketPath, f.pid, f.database, f.status, f.kind, f.requestDigest.toString('hex'), f.responseDigest.toString('hex')]
  return Buffer.from(`${OWNER_PROOF_DOMAIN}${JSON.stringify(fields)}`, 'utf8')
}

/** Signs an answer with the checkpoint signing key; base64. */
export function signOwnerAnswer(privateKey: KeyObject, fields: OwnerProofFields): string {
  return sign(null, ownerProofMessage(fields), privateKey).toString('base64')
}

/** Whether `signature` (base64, canonical) proves the answer under the trusted checkpoint public key. */
export function isOwnerAnswerSigned(publicKey: KeyObject, fields: OwnerProofFields, signature: string): boolean {
  const bytes = Buffer.from(signature, 'base64')
  // Node's base64 decoding ignores spare bits: only the canonical text is accepted.
  if (bytes.length !== 64 || bytes.toString('base64') !== signature) return false
  try {
    return verify(null, ownerProofMessage(fields), publicKey, bytes)
  } catch {
    return false
  }
}
