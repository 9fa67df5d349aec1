import { createHash, sign, verify, type KeyObject } from 'node:crypto'
import { z } from 'zod'

const hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits')

/** SHA-256 of nothing before the first checkpoint of a chain. */
export const GENESIS_CHECKPOINT = '0'.repeat(64)

/**
 * What a checkpoint signs: one chain's head as the chain writer stored it.
 * Checkpoints of a chain form their own chain through `prev`, so removing or
 * editing one breaks the next even where signatures still hold.
 */
export const CheckpointBody = z
  .object({
    v: z.literal(1),
    /** ClickHouse database of the log; verify ignores other databases' checkpoints. */
    database: z.string().min(1).max(256),
    chain_id: z.string().min(1).max(512),
    /** 1, 2, 3… within the chain. */
    index: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    /** Sequence number of the chain's newest stored row. */
    seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    /** That row's hash. */
    hash: hex32,
    /** That row's Kafka offset (a string: offsets are 64-bit). */
    kafka_offset: z.string().regex(/^\d{1,20}$/),
    signed_at: z.iso.datetime({ offset: false }),
    /** checkpointDigest() of the chain's previous checkpoint; GENESIS_CHECKPOINT for index 1. */
    prev: hex32,
    /** keyId() of the public key that verifies `sig`. */
    key_id: hex32,
  })
  .strict()
export type CheckpointBody = z.infer<typeof CheckpointBody>

export const SignedCheckpoint = CheckpointBody.extend({
  /** Ed25519 signature over checkpointSigningBytes(body), base64. */
  sig: z.string().regex(/^[A-Za-z0-9+/]{85}[AQgw]==$/, 'must be a canonical base64 Ed25519 signature'),
}).strict()
export type SignedCheckpoint = z.infer<typeof SignedCheckpoint>

const DOMAIN = 'readtrail-checkpoint-v1\n'

/**
 * The exact bytes signed: a domain tag and the fields in a fixed order, so a
 * line's key order or spacing never changes what was signed, and a signature
 * over anything else readtrail signs can never pass for a checkpoint.
 */
export function checkpointSigningBytes(b: CheckpointBody): Buffer {
  return Buffer.from(DOMAIN + JSON.stringify([b.v, b.database, b.chain_id, b.index, b.seq, b.hash, b.kafka_offset, b.signed_at, b.prev, b.key_id]), 'utf8')
}

/** What the next checkpoint of the chain puts in `prev`. */
export function checkpointDigest(b: CheckpointBody): string {
  return createHash('sha256').update(checkpointSigningBytes(b)).digest('hex')
}

/** SHA-256 of the raw 32-byte Ed25519 public key, hex: names the key in every checkpoint. */
export function keyId(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' })
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new TypeError('not an Ed25519 public key')
  return createHash('sha256').update(Buffer.from(jwk.x, 'base64url')).digest('hex')
}

export function signCheckpoint(body: CheckpointBody, privateKey: KeyObject): SignedCheckpoint {
  const sig = sign(null, checkpointSigningBytes(body), privateKey).toString('base64')
  return { ...body, sig }
}

/** True when `sig` is a valid Ed25519 signature of the body by `publicKey`. Never throws on attacker input. */
export function isValidSignature(cp: SignedCheckpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, checkpointSigningBytes(cp), publicKey, Buffer.from(cp.sig, 'base64'))
  } catch {
    return false
  }
}

/** One JSON line, fields in schema order (no trailing newline). */
export function formatCheckpointLine(cp: SignedCheckpoint): string {
  const ordered: SignedCheckpoint = {
    v: cp.v,
    database: cp.database,
    chain_id: cp.chain_id,
    index: cp.index,
    seq: cp.seq,
    hash: cp.hash,
    kafka_offset: cp.kafka_offset,
    signed_at: cp.signed_at,
    prev: cp.prev,
    key_id: cp.key_id,
    sig: cp.sig,
  }
  return JSON.stringify(ordered)
}
