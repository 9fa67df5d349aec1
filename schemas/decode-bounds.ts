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
}

/**
 * The most UTF-8 bytes one UTF-16 unit encodes to (a surrogate pair is 4
 * bytes for 2 units): a string within a zod `.max(n)` encodes in 3n bytes.
 */
const UTF8_BYTES_PER_UNIT = 3

const chars = (units: number): DecodeBound => Object.freeze({ maxBytes: units * UTF8_BYTES_PER_UNIT })
/** Fixed-size values (numbers, enums, booleans, fixed): nothing to bound beyond the schema. */
const FIXED: DecodeBound = Object.freeze({})
const UUID_LENGTH = 36

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
  purpose: chars(LIMITS.text),
  trace_id: chars(LIMITS.text),
  outcome: FIXED,
  producer_id: chars(LIMITS.name),
  producer_seq: FIXED,
})

/**
 * Records nest only in recursive schemas (none is released); the bound keeps
 * a hostile nesting from exhausting the stack of the scan or of avsc.
 */
export const MAX_RECORD_DEPTH = 32
