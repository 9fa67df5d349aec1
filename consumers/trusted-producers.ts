import type { KeyObject } from 'node:crypto'
import { z } from 'zod'
import { publicKeyFromPem } from '../checkpoints/keys.js'
import { readCheckedFile } from '../common/checked-read.js'
import { ReadtrailError } from '../common/errors.js'
import { namedIssues } from '../common/zod-issues.js'

/** One producing service's key, as the chain writer trusts it. */
export interface TrustedProducer {
  /** keyId(publicKey), recomputed from the key: the id a signed batch names. */
  keyId: string
  service: string
  publicKey: KeyObject
  /** The SPKI PEM text the file holds, so the file can be rewritten as it was. */
  publicKeyPem: string
  /** When the key was added (ISO 8601), for operators; it grants nothing. */
  addedAt: string
}

/** The trusted-producers file, loaded and checked; frozen. */
export interface TrustedProducers {
  path: string
  producers: readonly TrustedProducer[]
  byKeyId(keyId: string): TrustedProducer | undefined
}

/**
 * Largest trusted-producers file read: an entry as `keys generate` writes it
 * is about 300 bytes, so MAX_TRUSTED_PRODUCERS of them (3 MB) fit with room
 * for long service names, and a planted file is refused before it is parsed.
 */
export const MAX_TRUSTED_PRODUCERS_BYTES = 4 * 1024 * 1024
/** Most entries the file may hold: far more services than any deployment, few enough to check at start-up. */
export const MAX_TRUSTED_PRODUCERS = 10_000

/** A producing service's name as the file holds it. No control characters: it is printed on operators' terminals and in log lines. */
// eslint-disable-next-line no-control-regex
export const ProducerService = z.string().min(1).max(256).regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'must not contain control characters')

/**
 * The file format, version 1. Strict: an unknown field is refused rather
 * than ignored, since a field this version does not understand (an expiry,
 * a scope) may be one the file's author relied on.
 */
export const TrustedProducersFile = z
  .object({
    version: z.literal(1),
    producers: z
      .array(
        z
          .object({
            key_id: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits (SHA-256 of the raw Ed25519 public key)'),
            service: ProducerService,
            public_key: z.string().min(1).max(4096),
            added_at: z.iso.datetime({ offset: true }),
          })
          .strict(),
      )
      .max(MAX_TRUSTED_PRODUCERS),
  })
  .strict()

export type TrustedProducersFile = z.infer<typeof TrustedProducersFile>

/**
 * Loads the file that tells the chain writer whose signatures it accepts.
 * The file is treated as hostile: it must be the current user's or root's
 * and writable by no one else (whoever can write it can make the writer
 * store forged batches), its size is bounded before it is parsed, every
 * public key must be Ed25519 SPKI, and each `key_id` must equal the id
 * recomputed from its key, so an entry cannot borrow another key's id.
 * Throws TRUSTED_PRODUCERS_MISSING when there is no file (whether that is
 * allowed is the writer configuration's decision) and TRUSTED_PRODUCERS_INVALID
 * naming the path, the entry index and the field otherwise.
 */
export function loadTrustedProducers(path: string): TrustedProducers {
  const bytes = readCheckedFile(path, { maxBytes: MAX_TRUSTED_PRODUCERS_BYTES, forbiddenModeBits: 0o022, rootMayOwn: true }, (refusal) => {
    if (refusal.problem === 'missing') {
      return new ReadtrailError('TRUSTED_PRODUCERS_MISSING', `no trusted-producers file at ${path}; run \`readtrail keys generate --producer <service>\` to make one`, {
        cause: refusal.cause,
        details: { path },
      })
    }
    return invalid(path, `the trusted-producers file ${path} ${refusal.message}`, [{ key: '(file)', problem: refusal.problem }], refusal.cause)
  })
  return parseTrustedProducers(bytes.toString('utf8'), path)
}

/** Checks the text of a trusted-producers file as loadTrustedProducers does; `path` is named in errors. */
export function parseTrustedProducers(text: string, path: string): TrustedProducers {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (cause) {
    throw invalid(path, `${path} is not valid JSON: ${(cause as Error).message}`, [{ key: '(file)', problem: 'not JSON' }], cause)
  }
  const parsed = TrustedProducersFile.safeParse(json)
  if (!parsed.success) {
    const issues = namedIssues(parsed.error, '(file)')
    // A hostile file can carry thousands of bad entries: the message names the first few, details all of them.
    const shown = issues.slice(0, 5).map((i) => `${i.key}: ${i.problem}`)
    if (issues.length > shown.length) shown.push(`and ${issues.length - shown.length} more (details.issues)`)
    throw invalid(path, `${path}: ${shown.join('; ')}`, issues)
  }
  const byId = new Map<string, TrustedProducer>()
  const producers = parsed.data.producers.map((entry, index) => {
    const producer = trustedProducerOf(entry, index, path)
    const first = byId.get(producer.keyId)
    if (first !== undefined) {
      const firstIndex = parsed.data.producers.findIndex((e) => e.key_id === producer.keyId)
      throw invalid(path, `${path}: producers.${index}.key_id: key ${producer.keyId} is listed already at producers.${firstIndex} (service ${JSON.stringify(first.service)})`, [
        { key: `producers.${index}.key_id`, problem: `duplicate of producers.${firstIndex}` },
      ])
    }
    byId.set(producer.keyId, producer)
    return producer
  })
  return Object.freeze({
    path,
    producers: Object.freeze(producers),
    byKeyId: (id: string) => byId.get(id),
  })
}

/** The file's text for `producers`, in the format loadTrustedProducers reads. */
export function formatTrustedProducers(producers: readonly Pick<TrustedProducer, 'keyId' | 'service' | 'publicKeyPem' | 'addedAt'>[]): string {
  const file: TrustedProducersFile = {
    version: 1,
    producers: producers.map((p) => ({ key_id: p.keyId, service: p.service, public_key: p.publicKeyPem, added_at: p.addedAt })),
  }
  return `${JSON.stringify(file, null, 2)}\n`
}

function trustedProducerOf(entry: TrustedProducersFile['producers'][number], index: number, path: string): TrustedProducer {
  let key: { publicKey: KeyObject; keyId: string }
  try {
    key = publicKeyFromPem(entry.public_key)
  } catch (cause) {
    throw invalid(path, `${path}: producers.${index}.public_key: not an Ed25519 SPKI PEM public key (${(cause as Error).message})`, [
      { key: `producers.${index}.public_key`, problem: 'not an Ed25519 SPKI PEM public key' },
    ], cause)
  }
  // The id is what a batch names; taking it from the file would let an entry
  // claim the id of a key it does not hold.
  if (key.keyId !== entry.key_id) {
    throw invalid(path, `${path}: producers.${index}.key_id: ${entry.key_id} is not the id of its public_key (${key.keyId})`, [
      { key: `producers.${index}.key_id`, problem: 'does not match the public key' },
    ])
  }
  return Object.freeze({ keyId: key.keyId, service: entry.service, publicKey: key.publicKey, publicKeyPem: entry.public_key, addedAt: entry.added_at })
}

function invalid(path: string, message: string, issues: readonly { key: string; problem: string }[], cause?: unknown): ReadtrailError {
  return new ReadtrailError('TRUSTED_PRODUCERS_INVALID', message, { cause, details: { path, issues } })
}
