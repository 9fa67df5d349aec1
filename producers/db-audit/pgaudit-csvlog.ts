import type { ParseResult } from './audit-entry.js'
import { NOTHING } from './audit-entry.js'
import { splitCsvRecord } from './csv-fields.js'
import { entryFromPgColumns, hostOf } from './pgaudit-entry.js'
import { isAuditMessage } from './pgaudit-message.js'

/** csvlog columns of PostgreSQL 14 and later (log_time … query_id). */
const COLUMNS = 26
const enum Col {
  logTime = 0,
  userName = 1,
  databaseName = 2,
  processId = 3,
  connectionFrom = 4,
  errorSeverity = 11,
  message = 13,
  internalQuery = 16,
  context = 18,
  query = 19,
  applicationName = 22,
}

/**
 * Reads one csvlog record (a whole CSV record, which may have spanned
 * lines). A record that is not 26 well-formed CSV fields is rejected only if
 * it looks like an audit entry; PostgreSQL's other lines are not the
 * reader's business.
 */
export function parsePgAuditCsvRecord(record: Buffer, tables: ReadonlySet<string>, offset: number): ParseResult {
  const fields = splitCsvRecord(record, COLUMNS + 1)
  if (!fields || fields.length !== COLUMNS) {
    return record.includes('AUDIT: ') ? { entries: [], rejected: [{ offset, reason: `a csvlog record that is not ${COLUMNS} CSV fields` }] } : NOTHING
  }
  const message = fields[Col.message]!
  if (!isAuditMessage(message)) return NOTHING
  const text = (c: Col) => fields[c]!.toString('utf8')
  return entryFromPgColumns(
    {
      timestamp: text(Col.logTime),
      user: text(Col.userName),
      database: text(Col.databaseName),
      pid: text(Col.processId),
      clientAddr: hostOf(text(Col.connectionFrom)),
      applicationName: text(Col.applicationName),
      severity: text(Col.errorSeverity),
      message,
      context: fields[Col.context]!,
      statement: fields[Col.query]!,
      internalQuery: fields[Col.internalQuery]!,
    },
    tables,
    offset,
  )
}
