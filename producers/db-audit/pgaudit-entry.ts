import { NOTHING, type ParseResult } from './audit-entry.js'
import { isAuditMessage, parsePgAuditMessage } from './pgaudit-message.js'
import { parsePgTimestamp } from './pg-timestamp.js'

/** The columns of one PostgreSQL log entry (csvlog or jsonlog) that decide whether and what pgAudit logged. */
export interface PgLogColumns {
  timestamp: string
  user: string
  database: string
  pid: string
  clientAddr: string
  applicationName: string
  severity: string
  message: Buffer
  /** context, statement (query) and internal_query, each empty when absent. */
  context: Buffer
  statement: Buffer
  internalQuery: Buffer
}

/**
 * The audit entry a PostgreSQL log entry holds, if pgAudit wrote it, it is a
 * READ and its table is configured. pgAudit's own lines hide the statement
 * and the context (errhidestmt, errhidecontext); a message that merely
 * starts with "AUDIT: " and carries either (RAISE LOG 'AUDIT: ...' from
 * PL/pgSQL always has a context) is someone imitating it: rejected, counted.
 */
export function entryFromPgColumns(columns: PgLogColumns, tables: ReadonlySet<string>, offset: number): ParseResult {
  if (!isAuditMessage(columns.message)) return NOTHING
  if (columns.severity !== 'LOG' || columns.context.length > 0 || columns.statement.length > 0 || columns.internalQuery.length > 0) {
    return { entries: [], rejected: [{ offset, reason: 'an "AUDIT:" message pgAudit did not write (it has a context or statement, or is not at level LOG)' }] }
  }
  const audit = parsePgAuditMessage(columns.message)
  if (!audit) return { entries: [], rejected: [{ offset, reason: 'a pgAudit message that is not in the expected form' }] }
  if (audit.auditClass !== 'READ' || !tables.has(audit.objectName)) return NOTHING
  const loggedAt = parsePgTimestamp(columns.timestamp)
  if (loggedAt === undefined) return { entries: [], rejected: [{ offset, reason: 'a pgAudit entry whose timestamp is not readable' }] }
  if (!/^\d{1,20}$/.test(columns.pid)) return { entries: [], rejected: [{ offset, reason: 'a pgAudit entry without a backend pid' }] }
  return {
    entries: [
      {
        loggedAt,
        dbName: columns.database,
        dbUser: columns.user,
        clientAddr: columns.clientAddr,
        applicationName: columns.applicationName,
        dbSession: columns.pid,
        command: audit.command,
        objectName: audit.objectName,
        statement: audit.statement,
        offset,
      },
    ],
    rejected: [],
  }
}

/** A client address without its port: '' for a Unix socket ("[local]") or none. */
export function hostOf(address: string): string {
  if (address === '' || address === '[local]') return ''
  const m = /^(.*):\d{1,5}$/.exec(address)
  return m ? m[1]! : address
}
