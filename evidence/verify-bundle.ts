import { createHash, type KeyObject } from 'node:crypto'
import { isValidSignature } from '../checkpoints/checkpoint.js'
import { publicKeyFromPem } from '../checkpoints/keys.js'
import { describeError } from '../common/errors.js'
import { writeCanonical } from '../store/access-log-columns.js'
import { RowBinaryWriter } from '../store/row-binary.js'
import { chainedRowOf, parseEvidenceBundle, type EvidenceBundle } from './bundle.js'

export interface VerifyEvidenceOptions {
  /**
   * SPKI PEM of the checkpoint key the verifier trusts (obtained from the
   * operator, not from the bundle). Without it nothing is proved: the key a
   * bundle carries is as editable as its rows, so a bundle changed and
   * re-signed with a key of the forger's own would pass every other step.
   * The verdict is then `ok: false` with code EVIDENCE_KEY_UNTRUSTED.
   */
  trustedKeyPem?: string
}

/** What the bundle says the event was; proved only when the verdict is ok. */
export interface EvidenceSummary {
  event_id: string
  chain_id: string
  seq: number
  principal_id: string
  principal_type: string
  action: string
  db_name: string
  table_name: string
  /** Record ids the event names (record_ids_complete says whether that is all of them). */
  record_count: number
  record_ids_complete: boolean
  /** When the application says the read happened, ISO 8601 UTC with microseconds. */
  occurred_at: string
}

export type StepResult = 'passed' | 'failed' | 'skipped' | 'not_run'

export interface EvidenceVerdict {
  ok: boolean
  /**
   * EVIDENCE_KEY_UNTRUSTED when every step passed but the one that pins the
   * signer had no trusted key to pin it to; absent otherwise.
   */
  code?: 'EVIDENCE_KEY_UNTRUSTED'
  /** The first step that failed; absent when ok. */
  failed_step?: string
  /** Why it failed, in a sentence. */
  problem?: string
  /** Every step in order and how it ended. */
  steps: { name: string; result: StepResult }[]
  /** What the bundle proves, in plain sentences; empty unless ok. */
  proved: string[]
  /** What it does not prove: the limits a reader must not assume away. */
  not_proved: string[]
  event: EvidenceSummary
}

interface Context {
  bundle: EvidenceBundle
  trusted: { publicKey: KeyObject; keyId: string } | undefined
  /** The newest row walked so far. */
  seq: number
  hash: Buffer
  /** Kafka offset of that row, decimal. */
  kafkaOffset: string
}

/** Why a step refused the bundle; caught by the step loop and turned into the verdict. */
class StepFailure extends Error {
  constructor(
    message: string,
    readonly code?: EvidenceVerdict['code'],
  ) {
    super(message)
  }
}

interface Step {
  name: string
  /** Throws StepFailure; returns 'skipped' when the step does not apply. */
  run(ctx: Context): void | 'skipped'
}

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/**
 * The checks, in order. Each trusts only what the steps before it proved:
 * the segment walk starts from the event's re-computed hash, the checkpoint is
 * compared with the walk's end, and only then does its signature mean
 * anything. The bundle is attacker-controlled throughout: offsets, lengths and
 * sequence numbers are read from it only after bounds checks, and no value is
 * taken on the bundle's word where it can be recomputed.
 */
const STEPS: readonly Step[] = [
  {
    name: 'event-hash',
    run(ctx) {
      const { event } = ctx.bundle
      const w = new RowBinaryWriter()
      try {
        writeCanonical(w, chainedRowOf(event))
      } catch (cause) {
        throw new StepFailure(`the event's columns cannot be encoded: ${describeError(cause)}`)
      }
      const hash = sha256(w.view(0))
      if (hash.toString('hex') !== event.hash) {
        throw new StepFailure(`the event's columns hash to ${hash.toString('hex')}, not to the stated hash ${event.hash}: the event's columns or its hash were altered`)
      }
      ctx.seq = event.seq
      ctx.hash = hash
      ctx.kafkaOffset = event.kafka_offset
    },
  },
  {
    name: 'walk-segment',
    run(ctx) {
      const { chain_id } = ctx.bundle.event
      for (const [i, row] of ctx.bundle.segment.entries()) {
        const seq = ctx.seq + 1
        if (row.seq !== seq) throw new StepFailure(`segment row ${i} says seq ${row.seq}; the row after seq ${ctx.seq} must be seq ${seq}`)
        const bytes = Buffer.from(row.encoding, 'base64')
        // Base64 has spare bits in its last character: only the one text per byte string is accepted.
        if (bytes.toString('base64') !== row.encoding) throw new StepFailure(`segment row seq ${seq} is not canonical base64`)
        // The bytes after prev_hash begin with chain_id and seq: a row of another chain or place cannot stand in.
        const prefix = new RowBinaryWriter(64)
        prefix.string(chain_id)
        prefix.uint64(seq)
        const head = prefix.view(0)
        // Then the row's place in Kafka: kafka_offset (UInt64), message_index and message_events (UInt32 each).
        if (bytes.length < head.length + 16 || !bytes.subarray(0, head.length).equals(head)) {
          throw new StepFailure(`segment row seq ${seq} does not begin with chain ${JSON.stringify(chain_id)} and seq ${seq}`)
        }
        const index = bytes.readUInt32LE(head.length + 8)
        const events = bytes.readUInt32LE(head.length + 12)
        if (index >= events) throw new StepFailure(`segment row seq ${seq} claims event ${index + 1} of a Kafka message of ${events}`)
        ctx.hash = sha256(ctx.hash, bytes)
        ctx.seq = seq
        ctx.kafkaOffset = bytes.readBigUInt64LE(head.length).toString()
      }
    },
  },
  {
    name: 'match-checkpoint',
    run(ctx) {
      const { checkpoint: cp, event, database } = ctx.bundle
      if (cp.database !== database) throw new StepFailure(`the checkpoint is for database ${cp.database}, the bundle for ${database}`)
      if (cp.chain_id !== event.chain_id) throw new StepFailure(`the checkpoint is for chain ${JSON.stringify(cp.chain_id)}, the event is in chain ${JSON.stringify(event.chain_id)}`)
      if (cp.seq !== ctx.seq) throw new StepFailure(`the segment ends at seq ${ctx.seq} but the checkpoint is at seq ${cp.seq}`)
      if (cp.hash !== ctx.hash.toString('hex')) {
        throw new StepFailure(`the rows hash to ${ctx.hash.toString('hex')} at seq ${ctx.seq}, but the checkpoint signs ${cp.hash}`)
      }
      if (cp.kafka_offset !== ctx.kafkaOffset) throw new StepFailure(`row seq ${ctx.seq} has Kafka offset ${ctx.kafkaOffset}, the checkpoint says ${cp.kafka_offset}`)
    },
  },
  {
    name: 'check-signature',
    run(ctx) {
      const { checkpoint: cp, key_id } = ctx.bundle
      let key: { publicKey: KeyObject; keyId: string }
      try {
        key = publicKeyFromPem(ctx.bundle.public_key)
      } catch (cause) {
        throw new StepFailure(`the bundle's public key is unusable: ${describeError(cause)}`)
      }
      if (key.keyId !== key_id) throw new StepFailure(`the bundle's public key has key id ${key.keyId}, not the stated ${key_id}`)
      if (cp.key_id !== key_id) throw new StepFailure(`the checkpoint names key ${cp.key_id}, the bundle carries key ${key_id}`)
      // Node decodes base64 ignoring the spare bits of the last character, so a
      // signature has several texts; only the canonical one is accepted, or an
      // edited file could still verify.
      if (Buffer.from(cp.sig, 'base64').toString('base64') !== cp.sig) throw new StepFailure('the checkpoint signature is not canonical base64')
      if (!isValidSignature(cp, key.publicKey)) throw new StepFailure(`the checkpoint's signature is not valid under key ${key_id}`)
    },
  },
  {
    name: 'check-trusted-key',
    run(ctx) {
      // Every step so far holds under the key the bundle carries, which anyone can make.
      if (!ctx.trusted) {
        throw new StepFailure(
          `untrusted key: the bundle is signed by key ${ctx.bundle.key_id}, which came with the bundle itself; ` +
            "give the operator's public key with --public-key (or READTRAIL_CHECKPOINT_PUBLIC_KEY) to prove anything",
          'EVIDENCE_KEY_UNTRUSTED',
        )
      }
      // Key ids are SHA-256 of the raw public key: equal ids mean the same key.
      if (ctx.trusted.keyId !== ctx.bundle.key_id) {
        throw new StepFailure(`the checkpoint was signed by key ${ctx.bundle.key_id}, not by the trusted key ${ctx.trusted.keyId}`)
      }
    },
  },
]

/** Names of the checks in the order they run ('parse' failures throw EVIDENCE_INVALID instead). */
export const EVIDENCE_VERIFY_STEPS: readonly string[] = Object.freeze(['parse', ...STEPS.map((s) => s.name)])

/**
 * Checks an evidence bundle offline. A value that is not a bundle throws
 * EvidenceError EVIDENCE_INVALID (details.issues); a trusted key that cannot
 * be read throws CHECKPOINT_KEY_INVALID. A bundle that parses but does not
 * prove its claim returns `ok: false` naming the step that refused it.
 */
export function verifyEvidence(value: unknown, options: VerifyEvidenceOptions = {}): EvidenceVerdict {
  // The trusted key is the verifier's own input: a bad one is an operator error, thrown before any verdict.
  const trusted = options.trustedKeyPem === undefined ? undefined : publicKeyFromPem(options.trustedKeyPem)
  const bundle = parseEvidenceBundle(value)
  const ctx: Context = { bundle, trusted, seq: 0, hash: Buffer.alloc(0), kafkaOffset: '' }
  const steps: EvidenceVerdict['steps'] = [{ name: 'parse', result: 'passed' }]
  let failure: { step: string; problem: string; code: EvidenceVerdict['code'] } | undefined
  for (const step of STEPS) {
    if (failure) {
      steps.push({ name: step.name, result: 'not_run' })
      continue
    }
    try {
      steps.push({ name: step.name, result: step.run(ctx) ?? 'passed' })
    } catch (err) {
      if (!(err instanceof StepFailure)) throw err
      steps.push({ name: step.name, result: 'failed' })
      failure = { step: step.name, problem: err.message, code: err.code }
    }
  }
  const event = summaryOf(bundle)
  if (failure) {
    return {
      ok: false,
      ...(failure.code ? { code: failure.code } : {}),
      failed_step: failure.step,
      problem: failure.problem,
      steps,
      proved: [],
      not_proved: [
        failure.code === 'EVIDENCE_KEY_UNTRUSTED'
          ? `anything: the rows link to a checkpoint signed by key ${bundle.key_id}, but that key came with the bundle, so whoever made the bundle could have made the key; nothing in it is proved, including the event details it states`
          : `anything: the ${failure.step} step refused the bundle, so nothing in it is proved, including the event details it states`,
      ],
      event,
    }
  }
  return { ok: true, steps, proved: provedBy(bundle), not_proved: notProvedBy(bundle), event }
}

function provedBy(b: EvidenceBundle): string[] {
  const { event: e, checkpoint: cp } = b
  const rows = e.seq === cp.seq ? `row seq ${e.seq}` : `rows seq ${e.seq}..${cp.seq}`
  return [
    `event ${e.event_id} is row seq ${e.seq} of chain ${JSON.stringify(e.chain_id)} in database ${b.database}, with exactly the column values the bundle lists (they re-encode to the row hash ${e.hash})`,
    `${rows} of that chain link by SHA-256 to checkpoint #${cp.index} (seq ${cp.seq}, hash ${cp.hash}) signed at ${cp.signed_at} by key ${b.key_id}, so the row was in the log no later than that time by the signer's clock`,
    `key ${b.key_id} is the trusted public key given to the verifier`,
  ]
}

function notProvedBy(b: EvidenceBundle): string[] {
  const { event: e, checkpoint: cp } = b
  return [
    `that no other event exists: this proves that event ${e.event_id} was logged, not what else was or was not logged about principal ${JSON.stringify(e.principal_id)} or these records`,
    `that the rows are still in the database: the bundle is a copy (it says it was exported at ${b.exported_at}, which nothing signs); run readtrail verify on the store for its current state`,
    `anything about the rows of chain ${JSON.stringify(e.chain_id)} before seq ${e.seq} or after seq ${cp.seq}`,
    `that the event's content is true: the log holds what the application reported when it recorded the read, not whether that report was accurate`,
  ]
}

function summaryOf(b: EvidenceBundle): EvidenceSummary {
  const e = b.event
  return {
    event_id: e.event_id,
    chain_id: e.chain_id,
    seq: e.seq,
    principal_id: e.principal_id,
    principal_type: e.principal_type,
    action: e.action,
    db_name: e.db_name,
    table_name: e.table_name,
    record_count: e.record_ids.length,
    record_ids_complete: e.record_ids_complete,
    occurred_at: microsToIso(e.occurred_at),
  }
}

/** ISO 8601 UTC with all six fractional digits: DateTime64(6) values are microseconds. */
export function microsToIso(micros: number): string {
  const ms = Math.floor(micros / 1000)
  const iso = new Date(ms).toISOString()
  return `${iso.slice(0, 23)}${String(micros - ms * 1000).padStart(3, '0')}Z`
}
