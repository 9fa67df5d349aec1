import { isIP } from 'node:net'
import { z } from 'zod'

/**
 * The access event as it travels on Kafka and is stored: the TypeScript twin
 * of the current wire schema's event (schemas/avro/access-batch.v3.avsc, with
 * the three fields its batch carries once; test/unit/schema-agreement.test.ts
 * proves they agree field by field). Consumers treat every field as
 * attacker-controlled, so the limits here are enforced after decoding too.
 */
export const PRINCIPAL_TYPES = ['user', 'service', 'system'] as const
export const ACTIONS = ['read', 'export', 'search'] as const
export const OUTCOMES = ['success', 'denied', 'error'] as const

/**
 * The largest encoded message (single-object header included) any producer
 * may write: the ceiling of the SDK's `maxMessageBytes` option. The chain
 * writer refuses a larger message before reading a byte of it.
 */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024

/**
 * String limits count code points, as zod's `.max` does; the decoder bounds
 * the same fields in UTF-8 bytes at four bytes per code point
 * (schemas/decode-bounds.ts), so nothing valid here is refused there.
 */
export const LIMITS = Object.freeze({
  name: 256,
  columns: 1024,
  recordId: 512,
  fingerprint: 16_384,
  text: 1024,
  /** The longest IPv6 text (IPv4 tail, leading zeros) is 45 characters. */
  ip: 64,
  /**
   * Record ids in one event. The SDK counts at least 3 bytes per id when it
   * splits a read (producers/build-events.ts) and never writes a message
   * above MAX_MESSAGE_BYTES, so none of its events names more.
   */
  recordIdsPerEvent: Math.floor(MAX_MESSAGE_BYTES / 3),
  /**
   * Record ids in one read: the ceiling of the hooks' maxRowsPerRead. A read
   * splits into at most one part per record id, so this bounds part_count.
   */
  recordIdsPerRead: 100_000_000,
  parts: 100_000_000,
})

/** avsc encodes longs as doubles and refuses 2^53 - 1; stay below. */
export const MAX_LONG = 2 ** 53 - 2

const name = z.string().min(1).max(LIMITS.name)
/**
 * The server's connection id, decimal (a PostgreSQL pid, a MySQL thread id:
 * both below 2^64, so 20 digits), or '' when unknown. The patterns are
 * exported because consumers/check-event.ts must apply the very same ones.
 */
export const DB_SESSION_PATTERN = /^(?:[0-9]{1,20})?$/
/** SHA-256 in lowercase hex, or '' when unknown. */
export const STATEMENT_DIGEST_PATTERN = /^(?:[0-9a-f]{64})?$/
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lowercase UUID')
// Zone ids (fe80::1%eth0) are refused: ClickHouse's IPv6 type cannot store
// them, and one such row would make it refuse a whole batch.
export const ipAddress = z
  .string()
  .max(LIMITS.ip)
  .refine((v) => isIP(v) !== 0 && !v.includes('%'), 'must be an IPv4 or IPv6 address (no zone id)')

export const AccessEvent = z
  .object({
    event_id: uuid,
    read_id: uuid,
    part_index: z.number().int().min(0).max(LIMITS.parts - 1),
    part_count: z.number().int().min(1).max(LIMITS.parts),
    occurred_at: z.number().int().min(0).max(MAX_LONG),
    principal_id: name,
    principal_type: z.enum(PRINCIPAL_TYPES),
    on_behalf_of: name.nullable(),
    session_hash: z.instanceof(Buffer).refine((b) => b.length === 32, 'must be 32 bytes').nullable(),
    client_ip: ipAddress.nullable(),
    service: name,
    environment: name,
    action: z.enum(ACTIONS),
    db_name: name,
    table_name: name,
    columns: z.array(name).min(1).max(LIMITS.columns),
    record_ids: z.array(z.string().max(LIMITS.recordId)).max(LIMITS.recordIdsPerEvent),
    record_ids_complete: z.boolean(),
    row_count: z.number().int().min(0).max(MAX_LONG),
    query_fingerprint: z.string().max(LIMITS.fingerprint),
    /**
     * With statement_digest, what the database-side cross-check matches the
     * server's own audit log (pgAudit, server_audit) on. '' rather than null
     * when unknown, as Avro writes it (a string with a default, so events of
     * wire versions 1 and 2 resolve to '') and as ClickHouse stores it.
     */
    db_session: z.string().regex(DB_SESSION_PATTERN, 'must be a decimal connection id or empty'),
    statement_digest: z.string().regex(STATEMENT_DIGEST_PATTERN, 'must be a lowercase hex SHA-256 or empty'),
    purpose: z.string().max(LIMITS.text).nullable(),
    trace_id: z.string().max(LIMITS.text).nullable(),
    outcome: z.enum(OUTCOMES),
    producer_id: name,
    producer_seq: z.number().int().min(1).max(MAX_LONG),
  })
  .strict()
  .refine((e) => e.part_index < e.part_count, { message: 'part_index must be below part_count', path: ['part_index'] })

export type AccessEvent = z.infer<typeof AccessEvent>
export type PrincipalType = (typeof PRINCIPAL_TYPES)[number]
export type Action = (typeof ACTIONS)[number]
export type Outcome = (typeof OUTCOMES)[number]
