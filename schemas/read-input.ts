import { z } from 'zod'
import { ACTIONS, LIMITS, MAX_LONG, OUTCOMES, PRINCIPAL_TYPES, ipAddress } from './access-event.js'

const name = z.string().min(1).max(LIMITS.name)

/** Who read: the same shape in a read and in an audit context. */
export const Principal = z
  .object({
    id: name,
    type: z.enum(PRINCIPAL_TYPES).default('user'),
    onBehalfOf: name.optional(),
  })
  .strict()

/**
 * Every limit here is at least as strict as AccessEvent's: a read the SDK
 * accepts must never be refused by the chain writer after the broker
 * acknowledged it (test/unit/read-input-to-event.test.ts).
 *
 * What an application hands the SDK for one read. The SDK turns it into one or
 * more AccessEvents: it hashes the session id, fingerprints the SQL and numbers
 * the event, so neither raw SQL nor a raw session id ever leaves the process.
 */
export const ReadInput = z
  .object({
    principal: Principal,
    /** Raw session id; only its keyed hash is sent. */
    sessionId: z.string().min(1).max(LIMITS.text).optional(),
    clientIp: ipAddress.optional(),
    action: z.enum(ACTIONS).default('read'),
    resource: z.object({ database: name, table: name }).strict(),
    columns: z.array(name).min(1).max(LIMITS.columns),
    /** Primary keys of every row the read returned. */
    recordIds: z
      .array(
        z.union([z.string(), z.number(), z.bigint()]).refine((id) => String(id).length <= LIMITS.recordId, `at most ${LIMITS.recordId} characters`),
      )
      .max(LIMITS.recordIdsPerRead),
    /** Rows returned; defaults to recordIds.length. */
    rowCount: z.number().int().min(0).max(MAX_LONG).optional(),
    recordIdsComplete: z.boolean().default(true),
    /** The SQL as executed; only its literal-free fingerprint is sent. */
    query: z.string().max(1_000_000).optional(),
    /** A fingerprint computed by the caller, when there is no SQL text. */
    queryFingerprint: z.string().max(LIMITS.fingerprint).optional(),
    /**
     * The database server's own id of the connection that ran the read: the
     * PostgreSQL backend pid, the MySQL/MariaDB connection (thread) id. With
     * statementDigest it is the key that matches the server's audit log
     * (pgAudit, server_audit) to this read: the server assigns it, so a
     * client cannot claim another connection's.
     */
    dbSession: z.string().regex(/^[0-9]{1,20}$/, 'a decimal connection id').optional(),
    /** SHA-256 (hex) of the statement text exactly as sent to the server. */
    statementDigest: z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256').optional(),
    purpose: z.string().min(1).max(LIMITS.text).optional(),
    traceId: z.string().min(1).max(LIMITS.text).optional(),
    outcome: z.enum(OUTCOMES).default('success'),
    /** When the read happened, in microseconds since the epoch, or a Date. */
    occurredAt: z
      .union([z.number().int().min(0).max(MAX_LONG), z.date().refine((d) => d.getTime() >= 0 && d.getTime() * 1000 <= MAX_LONG, 'must be after 1970')])
      .optional(),
  })
  .strict()
  .refine((r) => r.rowCount === undefined || r.rowCount >= r.recordIds.length, {
    message: 'rowCount cannot be smaller than the number of recordIds',
    path: ['rowCount'],
  })

export type ReadInput = z.input<typeof ReadInput>
export type ParsedReadInput = z.output<typeof ReadInput>
