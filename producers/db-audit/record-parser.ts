import type { ParseResult } from './audit-entry.js'
import { parsePgAuditCsvRecord } from './pgaudit-csvlog.js'
import { parsePgAuditJsonRecord } from './pgaudit-jsonlog.js'
import type { PgLogFormat } from './reader-config.js'
import type { Framing } from './record-framer.js'
import { ServerAuditJoiner, type PendingRead } from './server-audit-joiner.js'

/** One log format: how its records are framed, and what each record yields. */
export interface RecordParser {
  readonly framing: Framing
  parse(record: Buffer, offset: number): ParseResult
  /** State carried from record to record (MariaDB statements awaiting their QUERY line), saved with the position. */
  snapshot(): PendingRead[]
  restore(pending: readonly PendingRead[]): void
}

export type ParserChoice = { kind: 'pgaudit'; format: PgLogFormat } | { kind: 'server_audit'; utcOffsetMinutes: number; maxPending: number }

export function createRecordParser(choice: ParserChoice, tables: ReadonlySet<string>): RecordParser {
  if (choice.kind === 'server_audit') {
    const joiner = new ServerAuditJoiner({ tables, maxPending: choice.maxPending, utcOffsetMinutes: choice.utcOffsetMinutes })
    return { framing: 'line', parse: (r, o) => joiner.parse(r, o), snapshot: () => joiner.snapshot(), restore: (p) => joiner.restore(p) }
  }
  const parse = choice.format === 'csvlog' ? parsePgAuditCsvRecord : parsePgAuditJsonRecord
  return {
    framing: choice.format === 'csvlog' ? 'csv' : 'line',
    parse: (r, o) => parse(r, tables, o),
    snapshot: () => [],
    restore: () => {},
  }
}
