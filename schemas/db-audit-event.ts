import { z } from 'zod'
import { LIMITS, MAX_LONG } from './access-event.js'

/**
 * One entry of a database server's own audit log (pgAudit, MariaDB
 * server_audit) touching a sensitive table: the TypeScript twin of the
 * DbAuditEvent record in schemas/avro/db-audit-batch.v1.avsc. The server
 * names the connection, user and statement, never the rows: readtrail
 * matches each entry to the hooked read that issued it (by connection id,
 * statement digest and time) or reports it as an unaudited read.
 */
export const DB_AUDIT_SOURCE_KINDS = ['pgaudit', 'server_audit'] as const
export type DbAuditSourceKind = (typeof DB_AUDIT_SOURCE_KINDS)[number]

export const DB_AUDIT_LIMITS = Object.freeze({
  /** Statement text kept per entry; the digest covers the whole text. */
  statement: 8192,
  /** A log file path. */
  path: 4096,
})

const name = z.string().max(LIMITS.name)
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a lowercase UUID')
const digest = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256')

export const DbAuditEvent = z
  .object({
    event_id: uuid,
    source_kind: z.enum(DB_AUDIT_SOURCE_KINDS),
    logged_at: z.number().int().min(0).max(MAX_LONG),
    db_name: name,
    db_user: name,
    client_addr: name,
    application_name: name,
    db_session: z.string().regex(/^[0-9]{1,20}$/, 'a decimal connection id'),
    command: z.string().min(1).max(64),
    object_name: z.string().min(1).max(LIMITS.name),
    statement: z.string().max(DB_AUDIT_LIMITS.statement),
    statement_truncated: z.boolean(),
    statement_digest: digest,
    log_file: z.string().max(DB_AUDIT_LIMITS.path),
    log_offset: z.number().int().min(0).max(MAX_LONG),
    reader_seq: z.number().int().min(1).max(MAX_LONG),
  })
  .strict()
export type DbAuditEvent = z.output<typeof DbAuditEvent>
