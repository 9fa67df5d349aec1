import { createHash } from 'node:crypto'
import { uuidv7 } from '../../common/uuid.js'
import { LIMITS } from '../../schemas/access-event.js'
import { DB_AUDIT_LIMITS, type DbAuditEvent, type DbAuditSourceKind } from '../../schemas/db-audit-event.js'
import type { AuditEntry } from './audit-entry.js'

/** Fixed Avro bytes of one event beside its strings (ids, longs, lengths), rounded up: for sizing batches. */
const EVENT_OVERHEAD_BYTES = 160

/**
 * The event published for one entry. The digest is over the statement's
 * bytes exactly as the client sent them (the hooks hash the text they send,
 * so equal digests pair a hooked read with its database entry); the text
 * kept is cut to DB_AUDIT_LIMITS.statement characters, never mid-character.
 */
export function buildDbAuditEvent(entry: AuditEntry, sourceKind: DbAuditSourceKind, logFile: string, seq: number): DbAuditEvent {
  const full = entry.statement.toString('utf8')
  const statement = cut(full, DB_AUDIT_LIMITS.statement)
  return {
    event_id: uuidv7(),
    source_kind: sourceKind,
    logged_at: entry.loggedAt,
    db_name: cut(entry.dbName, LIMITS.name),
    db_user: cut(entry.dbUser, LIMITS.name),
    client_addr: cut(entry.clientAddr, LIMITS.name),
    application_name: cut(entry.applicationName, LIMITS.name),
    db_session: entry.dbSession,
    command: cut(entry.command, 64) || 'READ',
    object_name: entry.objectName,
    statement,
    statement_truncated: statement.length < full.length,
    statement_digest: createHash('sha256').update(entry.statement).digest('hex'),
    log_file: cut(logFile, DB_AUDIT_LIMITS.path),
    log_offset: entry.offset,
    reader_seq: seq,
  }
}

/** Estimated encoded size of an event, for keeping batches under the topic's message limit. */
export function estimateEventBytes(event: DbAuditEvent): number {
  let n = EVENT_OVERHEAD_BYTES
  for (const s of [event.db_name, event.db_user, event.client_addr, event.application_name, event.command, event.object_name, event.statement, event.log_file]) n += Buffer.byteLength(s, 'utf8')
  return n
}

/** `text` cut to at most `max` UTF-16 units, not inside a surrogate pair. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text
  const code = text.charCodeAt(max - 1)
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max)
}
