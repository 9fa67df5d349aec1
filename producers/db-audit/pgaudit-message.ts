import { splitCsvRecord } from './csv-fields.js'

/** The fields of a pgAudit message that the reader uses. */
export interface PgAuditMessage {
  auditType: 'SESSION' | 'OBJECT'
  auditClass: string
  command: string
  objectType: string
  objectName: string
  /** Exactly the text the client sent (pgAudit's CSV quoting undone). */
  statement: Buffer
}

const PREFIX = Buffer.from('AUDIT: ')

/** Whether the message text claims to be pgAudit's (whether it is, the caller checks on the other columns). */
export function isAuditMessage(message: Buffer): boolean {
  return message.subarray(0, PREFIX.length).equals(PREFIX)
}

/**
 * Parses pgAudit's message: `AUDIT: type,statement id,substatement id,class,
 * command,object type,object name,statement,parameter[,rows]`, each field
 * quoted CSV-style by pgAudit when it needs to be. Returns undefined when it
 * does not have that shape.
 */
export function parsePgAuditMessage(message: Buffer): PgAuditMessage | undefined {
  if (!isAuditMessage(message)) return undefined
  const fields = splitCsvRecord(message.subarray(PREFIX.length), 10)
  if (!fields || (fields.length !== 9 && fields.length !== 10)) return undefined
  const text = (i: number) => fields[i]!.toString('utf8')
  const auditType = text(0)
  if (auditType !== 'SESSION' && auditType !== 'OBJECT') return undefined
  if (!/^\d+$/.test(text(1)) || !/^\d+$/.test(text(2))) return undefined
  return { auditType, auditClass: text(3), command: text(4), objectType: text(5), objectName: text(6), statement: fields[7]! }
}
