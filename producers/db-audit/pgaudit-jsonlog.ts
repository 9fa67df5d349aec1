import type { ParseResult } from './audit-entry.js'
import { NOTHING } from './audit-entry.js'
import { parseFlatJsonObject, type JsonScalar } from './json-object.js'
import { entryFromPgColumns, hostOf } from './pgaudit-entry.js'
import { isAuditMessage } from './pgaudit-message.js'

const EMPTY = Buffer.alloc(0)
// PostgreSQL 15 writes at most 26 keys; the bound leaves room for a later version's few more.
const MAX_KEYS = 48

/**
 * Reads one jsonlog line. PostgreSQL leaves a key out when its value is
 * empty, so a missing context or statement is an empty one.
 */
export function parsePgAuditJsonRecord(record: Buffer, tables: ReadonlySet<string>, offset: number): ParseResult {
  const object = parseFlatJsonObject(record, MAX_KEYS)
  if (!object) return record.includes('AUDIT: ') ? { entries: [], rejected: [{ offset, reason: 'a jsonlog line that is not a flat JSON object' }] } : NOTHING
  const message = bytesOf(object.get('message'))
  if (message === undefined || !isAuditMessage(message)) return NOTHING
  const text = (key: string) => textOf(object.get(key))
  return entryFromPgColumns(
    {
      timestamp: text('timestamp'),
      user: text('user'),
      database: text('dbname'),
      pid: text('pid'),
      clientAddr: hostOf(text('remote_host')),
      applicationName: text('application_name'),
      severity: text('error_severity'),
      message,
      context: bytesOf(object.get('context')) ?? EMPTY,
      statement: bytesOf(object.get('statement')) ?? EMPTY,
      internalQuery: bytesOf(object.get('internal_query')) ?? EMPTY,
    },
    tables,
    offset,
  )
}

function bytesOf(value: JsonScalar | undefined): Buffer | undefined {
  return value?.kind === 'string' ? value.bytes : undefined
}

function textOf(value: JsonScalar | undefined): string {
  if (value === undefined) return ''
  if (value.kind === 'string') return value.bytes.toString('utf8')
  if (value.kind === 'number') return value.text
  return ''
}
