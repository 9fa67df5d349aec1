import { z } from 'zod'
import { NOTHING, type AuditEntry, type ParseResult } from './audit-entry.js'
import { parseServerAuditLine, type ServerAuditHeader } from './server-audit-line.js'

/**
 * Reads of configured tables whose QUERY line has not come yet. server_audit
 * writes a statement's TABLE lines when it opens the tables and its QUERY
 * line when it ends, both with the same connection and query id: the join
 * gives each read both its tables and its text. The pending reads are part
 * of the reader's position (they must survive a restart, or a statement
 * whose QUERY line lands after the restart would lose its tables).
 */
export const PendingRead = z
  .object({
    connection_id: z.string().regex(/^\d{1,20}$/),
    query_id: z.string().regex(/^\d{1,20}$/),
    offset: z.number().int().min(0),
    logged_at: z.number().int().min(0),
    user: z.string().max(1024),
    host: z.string().max(1024),
    database: z.string().max(1024),
    tables: z.array(z.string().max(1024)).min(1).max(10_000),
  })
  .strict()
export type PendingRead = z.output<typeof PendingRead>

const ORPHAN_STATEMENT = Buffer.alloc(0)

export interface ServerAuditJoinerOptions {
  /** database.table names whose reads are published. */
  tables: ReadonlySet<string>
  /** Pending statements kept at most; beyond, the oldest is published without its text. */
  maxPending: number
  utcOffsetMinutes: number
}

/**
 * Joins TABLE (READ) and QUERY lines into one entry per (statement,
 * configured table), deterministically: read again from the same position
 * with the same pending reads, it yields the same entries in the same order
 * (the reader's exactly-once resume depends on it).
 *
 * A pending read whose QUERY line never comes (its connection reconnects
 * or disconnects first, or too many are pending) is still published, with
 * an empty statement: a read of a sensitive table is never dropped because
 * its text is missing.
 */
export class ServerAuditJoiner {
  private pending = new Map<string, PendingRead>()

  constructor(private readonly options: ServerAuditJoinerOptions) {}

  restore(pending: readonly PendingRead[]): void {
    this.pending = new Map(pending.map((p) => [`${p.connection_id}:${p.query_id}`, { ...p, tables: [...p.tables] }]))
  }

  snapshot(): PendingRead[] {
    return [...this.pending.values()].map((p) => ({ ...p, tables: [...p.tables] }))
  }

  /** The most entries one record can yield: one per configured table (plus orphans flushed by a bound). */
  get pendingCount(): number {
    return this.pending.size
  }

  parse(record: Buffer, offset: number): ParseResult {
    const line = parseServerAuditLine(record, this.options.utcOffsetMinutes)
    if (!line) return { entries: [], rejected: [{ offset, reason: 'a server_audit line not in the expected form' }] }
    const key = `${line.header.connectionId}:${line.header.queryId}`
    if (line.kind === 'table') {
      if (line.operation !== 'READ') return NOTHING
      const name = `${line.header.database}.${line.table}`
      if (!this.options.tables.has(name)) return NOTHING
      const seen = this.pending.get(key)
      if (seen) {
        if (!seen.tables.includes(name)) seen.tables.push(name)
        return NOTHING
      }
      const entries = this.pending.size >= this.options.maxPending ? this.flushOldest() : []
      this.pending.set(key, { ...headerFields(line.header), offset, tables: [name] })
      return entries.length > 0 ? { entries, rejected: [] } : NOTHING
    }
    if (line.kind === 'connection') {
      // A connection id seen connecting or leaving ends whatever its earlier statements left pending.
      const entries = this.flushConnection(line.header.connectionId)
      return entries.length > 0 ? { entries, rejected: [] } : NOTHING
    }
    const read = this.pending.get(key)
    if (!read) return NOTHING
    this.pending.delete(key)
    const command = commandOf(line.statement)
    return { entries: read.tables.map((table) => entryOf(read, table, line.statement, command, offset)), rejected: [] }
  }

  private flushOldest(): AuditEntry[] {
    const [key, read] = this.pending.entries().next().value as [string, PendingRead]
    this.pending.delete(key)
    return read.tables.map((table) => entryOf(read, table, ORPHAN_STATEMENT, 'READ', read.offset))
  }

  private flushConnection(connectionId: string): AuditEntry[] {
    const entries: AuditEntry[] = []
    for (const [key, read] of this.pending) {
      if (read.connection_id !== connectionId) continue
      this.pending.delete(key)
      for (const table of read.tables) entries.push(entryOf(read, table, ORPHAN_STATEMENT, 'READ', read.offset))
    }
    return entries
  }
}

function headerFields(h: ServerAuditHeader): Omit<PendingRead, 'offset' | 'tables'> {
  return { connection_id: h.connectionId, query_id: h.queryId, logged_at: h.loggedAt, user: h.user, host: h.host, database: h.database }
}

function entryOf(read: PendingRead, table: string, statement: Buffer, command: string, offset: number): AuditEntry {
  return {
    // The TABLE line's time: when the server opened the table for the read.
    loggedAt: read.logged_at,
    dbName: read.database,
    dbUser: read.user,
    clientAddr: read.host === 'localhost' ? '' : read.host,
    applicationName: '',
    dbSession: read.connection_id,
    command,
    objectName: table,
    statement,
    offset,
  }
}

/** The statement's first keyword (SELECT, WITH, CALL…), after whitespace and comments; READ when there is none. */
export function commandOf(statement: Buffer): string {
  const text = statement.toString('latin1', 0, 4096)
  const m = /^(?:\s+|\/\*[\s\S]*?\*\/|--[^\n]*\n|#[^\n]*\n)*([A-Za-z]{1,64})/.exec(text)
  return m ? m[1]!.toUpperCase() : 'READ'
}
