import { LIMITS } from './access-event.js'

/**
 * The most a decoder may read for one value: bytes for a string or bytes
 * value, items for an array or map (summed over its blocks), with `items`
 * bounding each element. A union passes its bound to every branch, so a
 * nullable string is bounded like the string.
 */
export interface DecodeBound {
  readonly maxBytes?: number
  readonly maxItems?: number
  readonly items?: DecodeBound
  /** For a record value (a batch's events): its fields' bounds by name. */
  readonly fields?: Readonly<Record<string, DecodeBound>>
}

/**
 * The most UTF-8 bytes one character encodes to. zod's `.max(n)` counts code
 * points, not UTF-16 units (256 emoji pass a 256-character limit), and an
 * astral code point is 4 bytes: a string within `.max(n)` encodes in 4n
 * bytes. At 3 the decoder refused names the validator accepts.
 */
export const UTF8_BYTES_PER_CHAR = 4

const chars = (n: number): DecodeBound => Object.freeze({ maxBytes: n * UTF8_BYTES_PER_CHAR })
/** Fixed-size values (numbers, enums, booleans, fixed): nothing to bound beyond the schema. */
const FIXED: DecodeBound = Object.freeze({})
const UUID_LENGTH = 36
/** DB_SESSION_PATTERN's most digits: a 64-bit connection id. */
const DB_SESSION_LENGTH = 20
/** A SHA-256 in hex. */
const DIGEST_LENGTH = 64

/**
 * Bounds of every access-event field, derived from the zod limits in
 * access-event.ts so the decoder never refuses an event the validator would
 * accept (test/unit/codec-bounds.test.ts checks every field of every released
 * schema version is named here). They are enforced on the writer's bytes
 * before avsc allocates anything: avsc sizes an array from its declared count.
 */
export const ACCESS_EVENT_BOUNDS: Readonly<Record<string, DecodeBound>> = Object.freeze({
  event_id: chars(UUID_LENGTH),
  read_id: chars(UUID_LENGTH),
  part_index: FIXED,
  part_count: FIXED,
  occurred_at: FIXED,
  principal_id: chars(LIMITS.name),
  principal_type: FIXED,
  on_behalf_of: chars(LIMITS.name),
  session_hash: FIXED,
  client_ip: chars(LIMITS.ip),
  service: chars(LIMITS.name),
  environment: chars(LIMITS.name),
  action: FIXED,
  db_name: chars(LIMITS.name),
  table_name: chars(LIMITS.name),
  columns: Object.freeze({ maxItems: LIMITS.columns, items: chars(LIMITS.name) }),
  record_ids: Object.freeze({ maxItems: LIMITS.recordIdsPerEvent, items: chars(LIMITS.recordId) }),
  record_ids_complete: FIXED,
  row_count: FIXED,
  query_fingerprint: chars(LIMITS.fingerprint),
  db_session: chars(DB_SESSION_LENGTH),
  statement_digest: chars(DIGEST_LENGTH),
  purpose: chars(LIMITS.text),
  trace_id: chars(LIMITS.text),
  outcome: FIXED,
  producer_id: chars(LIMITS.name),
  producer_seq: FIXED,
})

/**
 * Most events in one batch (wire v2): the ceiling of the producer's
 * maxBatchMessages. The writer refuses a batch declaring more before
 * reading one of them.
 */
export const MAX_EVENTS_PER_BATCH = 100_000

/** Bounds of a batch's fields (wire v2 on): its events are bounded as access events are. */
export const ACCESS_BATCH_BOUNDS: Readonly<Record<string, DecodeBound>> = Object.freeze({
  signature: FIXED,
  key_id: chars(LIMITS.name),
  producer_id: chars(LIMITS.name),
  service: chars(LIMITS.name),
  environment: chars(LIMITS.name),
  events: Object.freeze({ maxItems: MAX_EVENTS_PER_BATCH, items: Object.freeze({ fields: ACCESS_EVENT_BOUNDS }) }),
})

/**
 * Records nest only in recursive schemas (none is released); the bound keeps
 * a hostile nesting from exhausting the stack of the scan or of avsc.
 */
export const MAX_RECORD_DEPTH = 32
