import { isIP } from 'node:net'
import { z } from 'zod'
import { SignedCheckpoint } from '../checkpoints/checkpoint.js'
import { namedIssues } from '../common/zod-issues.js'
import { ACTIONS, DB_SESSION_PATTERN, LIMITS, OUTCOMES, PRINCIPAL_TYPES, STATEMENT_DIGEST_PATTERN } from '../schemas/access-event.js'
import type { ChainedRow } from '../store/access-log-columns.js'
import { ipToIPv6Bytes } from '../store/ip.js'
import { EvidenceError } from './errors.js'

/**
 * An evidence bundle: one JSON file that proves, offline and without the
 * database, that one access event is a row of the log and that the log's
 * signing key vouched for it. Everything in it is attacker-controlled when it
 * is read back, so every field is bounded and has exactly one textual form:
 * two different texts never describe the same hashed bytes, and so no edit of
 * the text can leave the proof intact.
 */
// v2: the event carries message_index, message_events and key_id, which the
// row hash covers; a v1 bundle (made before those columns) cannot re-hash.
// v3: and db_session and statement_digest, for the same reason.
export const EVIDENCE_FORMAT = 'readtrail-evidence-v3'

export const EVIDENCE_LIMITS = Object.freeze({
  /**
   * Rows after the event up to its checkpoint. The exporter picks the nearest
   * checkpoint, so a segment spans one signing interval; a million rows is
   * far beyond any real interval and keeps a hostile file's work bounded.
   */
  segmentRows: 1_000_000,
  /** Canonical bytes of one row: a Kafka message is at most 16 MiB, plus the chain columns. */
  rowBytes: 17 * 1024 * 1024,
  /** Record ids in one event: each costs at least one byte of a (≤16 MiB) message. */
  recordIds: 16 * 1024 * 1024,
  /** A bundle file the CLI will read (Node strings stop near 512 MiB). */
  fileBytes: 256 * 1024 * 1024,
})

const UINT16_MAX = 0xffff
const UINT32_MAX = 0xffff_ffff
const UINT64_MAX = 2n ** 64n - 1n

const hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits')
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lowercase UUID')
const safeInt = (min: number) => z.number().int().min(min).max(Number.MAX_SAFE_INTEGER)

// A lone surrogate has no UTF-8 form: the encoder writes U+FFFD in its place,
// so "\ud800" and "\ufffd" would hash alike. Only well-formed text is accepted.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u
const text = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine((v) => !LONE_SURROGATE.test(v), 'must be well-formed Unicode (no lone surrogate)')
const name = text(1, LIMITS.name)

/**
 * The one text of a 16-byte ClickHouse IPv6 value: an IPv4-mapped address as
 * a dotted quad (the stored form of every IPv4 client), anything else as RFC
 * 5952 text (lowercase, no leading zeros, the first longest run of two or more
 * zero groups as `::`). ipToIPv6Bytes maps it back to the same bytes.
 */
export function ipText(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError(`expected 16 bytes, got ${bytes.length}`)
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff
  if (mapped) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!)
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

const clientIp = z
  .string()
  .max(45)
  .refine((v) => isIP(v) !== 0 && !v.includes('%') && ipText(ipToIPv6Bytes(v)) === v, 'must be an IP address in canonical form (dotted quad for IPv4, RFC 5952 for IPv6)')

const kafkaOffset = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,19})$/, 'must be a decimal integer without leading zeros')
  .refine((v) => BigInt(v) <= UINT64_MAX, 'must fit in UInt64')

/** The producer key that signed the event's batch (trusted-producers key ids are SHA-256 hex), or '' for an unsigned message. */
const producerKeyId = z.string().regex(/^(|[0-9a-f]{64})$/, "must be '' (unsigned) or 64 lowercase hex digits")

/**
 * The event's row, every column of access_log in table order and then its
 * hash: bytes as lowercase hex, DateTime64 columns as integer microseconds
 * since the epoch, UUIDs as text, enums by name, the Kafka offset as a
 * decimal string (it is 64-bit). The verifier re-encodes exactly these values,
 * so nothing here is decoration. `key_id` here is the producer key that
 * signed the event's Kafka message, not the bundle's checkpoint key.
 */
export const EvidenceEvent = z
  .object({
    prev_hash: hex32,
    chain_id: text(1, 512),
    seq: safeInt(1),
    kafka_offset: kafkaOffset,
    message_index: z.number().int().min(0).max(UINT32_MAX),
    message_events: z.number().int().min(1).max(UINT32_MAX),
    ingested_at: safeInt(0),
    schema_version: z.number().int().min(0).max(UINT16_MAX),
    key_id: producerKeyId,
    event_id: uuid,
    read_id: uuid,
    part_index: z.number().int().min(0).max(UINT32_MAX),
    part_count: z.number().int().min(0).max(UINT32_MAX),
    occurred_at: safeInt(0),
    principal_id: name,
    principal_type: z.enum(PRINCIPAL_TYPES),
    on_behalf_of: name.nullable(),
    session_hash: hex32.nullable(),
    client_ip: clientIp.nullable(),
    service: name,
    environment: name,
    action: z.enum(ACTIONS),
    db_name: name,
    table_name: name,
    columns: z.array(name).max(LIMITS.columns),
    record_ids: z.array(text(0, LIMITS.recordId)).max(EVIDENCE_LIMITS.recordIds),
    record_ids_complete: z.boolean(),
    row_count: safeInt(0),
    query_fingerprint: text(0, LIMITS.fingerprint),
    db_session: z.string().regex(DB_SESSION_PATTERN, "must be '' or a decimal connection id"),
    statement_digest: z.string().regex(STATEMENT_DIGEST_PATTERN, "must be '' or 64 lowercase hex digits"),
    purpose: text(0, LIMITS.text).nullable(),
    trace_id: text(0, LIMITS.text).nullable(),
    outcome: z.enum(OUTCOMES),
    producer_id: name,
    producer_seq: safeInt(0),
    /** SHA-256 of the RowBinary encoding of every column above. */
    hash: hex32,
  })
  .strict()
  // The writer stores an event at its place among its message's events: a row past its message's end was never written.
  .refine((e) => e.message_index < e.message_events, { path: ['message_index'], message: 'must be below message_events' })
export type EvidenceEvent = z.infer<typeof EvidenceEvent>

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * One row after the event: its canonical RowBinary bytes without the leading
 * 32-byte prev_hash (which is the previous row's hash, so the verifier
 * supplies it). The bytes start with chain_id and seq, which the verifier
 * checks; the rest is opaque and only hashed.
 */
export const SegmentRow = z
  .object({
    seq: safeInt(2),
    encoding: z
      .string()
      .min(4)
      .max(4 * Math.ceil(EVIDENCE_LIMITS.rowBytes / 3))
      .regex(BASE64, 'must be padded base64'),
  })
  .strict()
export type SegmentRow = z.infer<typeof SegmentRow>

// The exact SPKI PEM Node writes for an Ed25519 key: a fixed 12-byte DER
// header (MCowBQYDK2VwAyEA) and the 32-byte key. One form only, so the text
// cannot be padded or varied.
const ED25519_SPKI_PEM = /^-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n-----END PUBLIC KEY-----\n$/

export const EvidenceBundle = z
  .object({
    format: z.literal(EVIDENCE_FORMAT),
    /** When the bundle was made (UTC); says nothing about the rows' state afterwards. */
    exported_at: z.iso.datetime({ offset: false }),
    /** ClickHouse database of the log; the checkpoint must name the same one. */
    database: z
      .string()
      .max(256)
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a ClickHouse identifier'),
    event: EvidenceEvent,
    /** Rows event.seq + 1 … checkpoint.seq of the event's chain, in order; empty when the checkpoint is at the event. */
    segment: z.array(SegmentRow).max(EVIDENCE_LIMITS.segmentRows),
    checkpoint: SignedCheckpoint,
    /** The Ed25519 key that signed the checkpoint, SPKI PEM. */
    public_key: z.string().max(256).regex(ED25519_SPKI_PEM, 'must be an Ed25519 public key in SPKI PEM'),
    /** keyId() of public_key: the name to compare with the operator's published key id. */
    key_id: hex32,
  })
  .strict()
export type EvidenceBundle = z.infer<typeof EvidenceBundle>

/** The event's JSON form of a stored row and its hash. */
export function evidenceEventOf(row: ChainedRow, hash: Buffer): EvidenceEvent {
  return {
    prev_hash: row.prev_hash.toString('hex'),
    chain_id: row.chain_id,
    seq: row.seq,
    kafka_offset: row.kafka_offset.toString(),
    message_index: row.message_index,
    message_events: row.message_events,
    ingested_at: row.ingested_at,
    schema_version: row.schema_version,
    key_id: row.key_id,
    event_id: row.event_id,
    read_id: row.read_id,
    part_index: row.part_index,
    part_count: row.part_count,
    occurred_at: row.occurred_at,
    principal_id: row.principal_id,
    principal_type: row.principal_type,
    on_behalf_of: row.on_behalf_of,
    session_hash: row.session_hash === null ? null : row.session_hash.toString('hex'),
    client_ip: row.client_ip === null ? null : ipText(ipToIPv6Bytes(row.client_ip)),
    service: row.service,
    environment: row.environment,
    action: row.action,
    db_name: row.db_name,
    table_name: row.table_name,
    columns: row.columns,
    record_ids: row.record_ids,
    record_ids_complete: row.record_ids_complete,
    row_count: row.row_count,
    query_fingerprint: row.query_fingerprint,
    db_session: row.db_session,
    statement_digest: row.statement_digest,
    purpose: row.purpose,
    trace_id: row.trace_id,
    outcome: row.outcome,
    producer_id: row.producer_id,
    producer_seq: row.producer_seq,
    hash: hash.toString('hex'),
  } satisfies Record<keyof ChainedRow | 'hash', unknown>
}

/** The stored row an event's JSON describes, ready for writeCanonical. */
export function chainedRowOf(e: EvidenceEvent): ChainedRow {
  return {
    prev_hash: Buffer.from(e.prev_hash, 'hex'),
    chain_id: e.chain_id,
    seq: e.seq,
    kafka_offset: BigInt(e.kafka_offset),
    message_index: e.message_index,
    message_events: e.message_events,
    ingested_at: e.ingested_at,
    schema_version: e.schema_version,
    key_id: e.key_id,
    event_id: e.event_id,
    read_id: e.read_id,
    part_index: e.part_index,
    part_count: e.part_count,
    occurred_at: e.occurred_at,
    principal_id: e.principal_id,
    principal_type: e.principal_type,
    on_behalf_of: e.on_behalf_of,
    session_hash: e.session_hash === null ? null : Buffer.from(e.session_hash, 'hex'),
    client_ip: e.client_ip,
    service: e.service,
    environment: e.environment,
    action: e.action,
    db_name: e.db_name,
    table_name: e.table_name,
    columns: e.columns,
    record_ids: e.record_ids,
    record_ids_complete: e.record_ids_complete,
    row_count: e.row_count,
    query_fingerprint: e.query_fingerprint,
    db_session: e.db_session,
    statement_digest: e.statement_digest,
    purpose: e.purpose,
    trace_id: e.trace_id,
    outcome: e.outcome,
    producer_id: e.producer_id,
    producer_seq: e.producer_seq,
  }
}

/**
 * The file's text: two-space indented so an investigator can read the event,
 * with a final newline. The verifier does not depend on the layout.
 */
export function serializeEvidenceBundle(bundle: EvidenceBundle): string {
  return `${JSON.stringify(bundle, null, 2)}\n`
}

/** Parses a bundle, throwing EVIDENCE_INVALID with every malformed field in `details.issues`. */
export function parseEvidenceBundle(value: unknown): EvidenceBundle {
  const parsed = EvidenceBundle.safeParse(value)
  if (!parsed.success) {
    const issues = namedIssues(parsed.error)
    const shown = issues.slice(0, 5).map((i) => `${i.key}: ${i.problem}`)
    const more = issues.length > shown.length ? `; and ${issues.length - shown.length} more` : ''
    throw new EvidenceError('EVIDENCE_INVALID', `not a ${EVIDENCE_FORMAT} bundle: ${shown.join('; ')}${more}`, { details: { issues } })
  }
  return parsed.data
}

/** Parses a bundle file's text; anything but one JSON value is EVIDENCE_INVALID. */
export function parseEvidenceText(json: string): unknown {
  try {
    return JSON.parse(json) as unknown
  } catch (cause) {
    throw new EvidenceError('EVIDENCE_INVALID', `the evidence file is not JSON: ${(cause as Error).message}`, {
      cause,
      details: { issues: [{ key: '(root)', problem: 'not JSON' }] },
    })
  }
}
