/**
 * One read of a sensitive table as a database's audit log states it, before
 * it becomes a DbAuditEvent: what the parsers of every log format agree on.
 * The statement stays bytes: its digest must be over exactly what the client
 * sent, and a hostile statement may not be valid UTF-8.
 */
export interface AuditEntry {
  /** µs since the epoch, from the server's own timestamp. */
  loggedAt: number
  dbName: string
  dbUser: string
  clientAddr: string
  applicationName: string
  /** Decimal backend pid or connection id. */
  dbSession: string
  command: string
  /** The sensitive table as configured. */
  objectName: string
  statement: Buffer
  /** Byte offset of the log entry this was read from (for MariaDB: the QUERY line). */
  offset: number
}

/** A log record the reader cannot take as an audit entry although it claims to be one; counted and logged, never published. */
export interface RejectedRecord {
  offset: number
  /** A short reason, never the record's text. */
  reason: string
}

/** What one record yields: entries for configured tables, and rejections. */
export interface ParseResult {
  entries: AuditEntry[]
  rejected: RejectedRecord[]
}

export const NOTHING: ParseResult = Object.freeze({ entries: [], rejected: [] }) as ParseResult
