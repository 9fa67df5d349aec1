import type { Client, FieldDef, Pool, PoolClient, QueryResult } from 'pg'
import { bindToAuditContext, currentAuditScope, type AuditScope } from '../context/audit-context.js'
import { HookError } from './errors.js'
import type { SensitiveTable } from './hook-config.js'
import type { ReadRecorder } from './read-recorder.js'
import { compositeKeyText } from './row-keys.js'
import type { TableRead } from './table-read.js'

/** A sensitive table as the catalog knows it. */
interface PgTable {
  name: string
  entry: SensitiveTable
  /** attnum → column name. */
  columns: Map<number, string>
  /** attnums of the primary key, in key order. */
  keyAttnums: number[]
  /** Sensitive attnums, or undefined for "every column". */
  sensitive: Set<number> | undefined
}

/** What every hooked client of one instrumented target shares. */
interface HookState {
  /** Sensitive tables by OID; empty until the catalog lookup returns. */
  tables: Map<number, PgTable>
  /** The database reads are recorded under; undefined only until it is known. */
  database: string | undefined
}

type Callback = (err: Error | null, result?: unknown) => void
type QueryFn = (...args: unknown[]) => unknown
const HOOKED = Symbol.for('readtrail.pg.hooked')

interface Cursorish {
  read: (rows: number, cb?: (err: Error | null, rows: unknown[], result?: unknown) => void) => unknown
  _result?: { fields?: FieldDef[] }
}

/**
 * Audits a node-postgres Pool or Client: every result holding rows of a
 * sensitive table becomes a read event naming the primary key of each row.
 * Tables are recognised by the OID PostgreSQL puts in each result field
 * (`tableID`, `columnID`), so aliases, views of the SQL text and query
 * builders on top (Kysely, Knex with this pool) change nothing.
 *
 * Resolves every configured table in the catalog first: an unknown table,
 * column or a table without a primary key is HOOK_TABLE_UNKNOWN here, not
 * a silent gap later. A Client must be connected; a Pool's clients are
 * hooked as the pool creates them, so attach before its first query.
 */
export async function instrumentPg<T extends Pool | Client>(target: T, recorder: ReadRecorder): Promise<T> {
  const catalogQuery = (target.query as QueryFn).bind(target) as (text: string, values?: unknown[]) => Promise<QueryResult>
  // Hook before the catalog lookup: a pool creates its first client for that
  // lookup and hands the same client out later, so it must be hooked too.
  // Until the lookup returns, no table is sensitive (only catalog reads run).
  const state: HookState = { tables: new Map<number, PgTable>(), database: recorder.config.database }
  const hook = (client: Client | PoolClient) => hookClient(client, state, recorder)
  if (isPool(target)) {
    target.on('connect', hook)
    bindConnectToCaller(target)
  } else {
    hook(target as Client)
  }
  state.database ??= await serverDatabase(catalogQuery)
  state.tables = await resolveTables(catalogQuery, recorder)
  return target
}

/**
 * A pool that has no idle client queues the request and answers it from
 * whichever query releases a client next, in that query's async context:
 * `pool.query` would then issue the query, and record the read, as someone
 * else. Bind each callback to its caller. (The promise form needs nothing:
 * an awaiting caller resumes in its own context.)
 */
function bindConnectToCaller(pool: Pool): void {
  const connect = pool.connect.bind(pool) as (cb?: (...args: unknown[]) => void) => unknown
  ;(pool as { connect: unknown }).connect = (cb?: (...args: unknown[]) => void) => (cb ? connect(bindToAuditContext(cb)) : connect())
}

function isPool(target: Pool | Client): target is Pool {
  return typeof (target as Pool).totalCount === 'number'
}

/**
 * The database reads are recorded under, unless the hook option `database`
 * names one: what the server says the connection is to. Client options can
 * be silent about it (a `connectionString`, a service file, PGDATABASE, a
 * pooler alias), and a guessed name put every read under the wrong
 * database. Asked once, with the catalog: a pool's clients share one
 * configuration, so the first connection's answer is every one's (asking
 * each new client would queue a query ahead of the caller's, which pg
 * deprecates).
 */
async function serverDatabase(query: (text: string, values?: unknown[]) => Promise<QueryResult>): Promise<string | undefined> {
  const found = await query('SELECT current_database() AS db')
  const db = (found.rows[0] as { db?: unknown } | undefined)?.db
  return typeof db === 'string' && db !== '' ? db : undefined
}

function qualified(name: string): string {
  return name.includes('.') ? name : `public.${name}`
}

async function resolveTables(query: (text: string, values?: unknown[]) => Promise<QueryResult>, recorder: ReadRecorder): Promise<Map<number, PgTable>> {
  const byOid = new Map<number, PgTable>()
  for (const [configured, entry] of Object.entries(recorder.config.tables)) {
    const name = qualified(configured)
    const found = await query('SELECT to_regclass($1)::oid::int8 AS oid', [name])
    const oidText = (found.rows[0] as { oid: string | null } | undefined)?.oid
    if (oidText === null || oidText === undefined) throw new HookError('HOOK_TABLE_UNKNOWN', `sensitive table ${configured} does not exist in this database`, { details: { table: configured } })
    const oid = Number(oidText)
    const cols = await query('SELECT attnum::int AS attnum, attname FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped', [oid])
    const columns = new Map<number, string>((cols.rows as { attnum: number; attname: string }[]).map((r) => [r.attnum, r.attname]))
    const attnumOf = (column: string): number => {
      for (const [n, c] of columns) if (c === column) return n
      throw new HookError('HOOK_TABLE_UNKNOWN', `sensitive table ${configured} has no column ${column}`, { details: { table: configured, column } })
    }
    let keyAttnums: number[]
    if (entry.primaryKey) {
      keyAttnums = entry.primaryKey.map(attnumOf)
    } else {
      const pk = await query('SELECT unnest(indkey)::int AS attnum FROM pg_index WHERE indrelid = $1::oid AND indisprimary', [oid])
      keyAttnums = (pk.rows as { attnum: number }[]).map((r) => r.attnum)
      if (keyAttnums.length === 0) {
        throw new HookError('HOOK_TABLE_UNKNOWN', `sensitive table ${configured} has no primary key: configure primaryKey`, { details: { table: configured } })
      }
    }
    const sensitive = entry.columns ? new Set(entry.columns.map(attnumOf)) : undefined
    byOid.set(oid, { name: configured, entry, columns, keyAttnums, sensitive })
  }
  return byOid
}

function hookClient(client: Client | PoolClient, state: HookState, recorder: ReadRecorder): void {
  const marked = client as unknown as Record<symbol, boolean>
  if (marked[HOOKED]) return
  marked[HOOKED] = true
  const original = (client.query as QueryFn).bind(client)
  // Tables become sensitive only once the database is known; the client's own
  // connection parameter is a fallback that cannot be reached in practice.
  const databaseOf = () => state.database ?? (client as Client).database ?? 'unknown'
  // The backend's pid (BackendKeyData, set once the connection is up): the
  // id pgAudit's log lines carry (%p), so a read is matched to the server's
  // own entry for it. Fixed for the life of a client: pg never reconnects
  // one, a pool makes a new client instead. Read when a result arrives, by
  // then the connection is up; undefined on a driver that does not say.
  let dbSession: string | undefined
  const sessionOf = (): string | undefined => {
    if (dbSession === undefined) {
      const pid = (client as { processID?: unknown }).processID
      if (typeof pid === 'number' && Number.isSafeInteger(pid) && pid >= 0) dbSession = String(pid)
    }
    return dbSession
  }

  function audit(result: unknown, sql: string | undefined, context: AuditScope | undefined): Promise<void> | undefined {
    if (Array.isArray(result)) {
      // A multi-statement simple query: one result per statement.
      const waits = result.map((r: QueryResult) => audit(r, sql, context)).filter((p): p is Promise<void> => p !== undefined)
      return waits.length === 0 ? undefined : Promise.all(waits).then(() => undefined)
    }
    const r = result as QueryResult | undefined
    // No rows is still a read: the probe happened, and the server's audit
    // log shows its statement, which a missing event would leave unmatched.
    if (!r?.fields || r.fields.length === 0) return undefined
    const reads = tableReads(r.fields, r.rows as unknown[], state.tables)
    return reads === undefined ? undefined : recorder.record(reads, sql, databaseOf(), context, 'postgres', sessionOf())
  }

  function hookCursor(cursor: Cursorish, sql: string | undefined): void {
    const read = cursor.read.bind(cursor)
    // The statement's tables that have an event: a cursor hands out its rows
    // in batches, and an empty batch (the last one) or one whose rows carry
    // none of a table's records is a zero-row read only if that table has
    // no event yet. One zero-row event per table keeps a cursor that found
    // nothing matched to the statement the server logged.
    const recorded = new Set<string>()
    // Streams are recorded as rows are consumed: one event per batch the
    // cursor hands out, released to the reader only under the table's policy.
    cursor.read = (n, cb) => {
      const context = currentAuditScope()
      const deliver = (rows: unknown[]): Promise<unknown[]> | unknown[] => {
        const fields = cursor._result?.fields
        if (!fields || fields.length === 0) return rows
        let reads = tableReads(fields, rows, state.tables)
        if (reads !== undefined) {
          reads = reads.filter((r) => r.rowCount > 0 || !recorded.has(r.table))
          for (const r of reads) recorded.add(r.table)
        }
        const wait = reads === undefined || reads.length === 0 ? undefined : recorder.record(reads, sql, databaseOf(), context, 'postgres', sessionOf())
        return wait ? wait.then(() => rows) : rows
      }
      if (!cb) return (read(n) as Promise<unknown[]>).then(deliver)
      return read(n, (err, rows, result) => {
        if (err) return cb(err, rows, result)
        try {
          const out = deliver(rows)
          if (Array.isArray(out)) cb(null, out, result)
          else out.then((r) => cb(null, r, result), (e: Error) => cb(e, []))
        } catch (e) {
          cb(e as Error, [])
        }
      })
    }
  }

  ;(client as { query: QueryFn }).query = function hookedQuery(...args: unknown[]): unknown {
    const first = args[0] as { submit?: unknown; text?: string; cursor?: Cursorish; read?: unknown } | string | undefined
    const sql = typeof first === 'string' ? first : first?.text
    // Results arrive in the connection's async context: take the caller's now.
    const context = currentAuditScope()
    if (first && typeof first === 'object' && typeof first.submit === 'function') {
      const cursor = first.cursor ?? (typeof first.read === 'function' ? (first as unknown as Cursorish) : undefined)
      if (cursor) hookCursor(cursor, sql ?? (first as { text?: string }).text)
      return original(...args)
    }
    const last = args.length - 1
    if (typeof args[last] === 'function') {
      args[last] = auditedCallback(args[last] as Callback, audit, sql, context)
      return original(...args)
    }
    return (original(...args) as Promise<unknown>).then(auditedResult(audit, sql, context))
  }
}

type Audit = (result: unknown, sql: string | undefined, context: AuditScope | undefined) => Promise<void> | undefined

// The two wrappers below are built here, not inline in the hooked query: a
// closure created inside it and handed to pg through its rest-parameter
// array made a 100-row query cost 2.5× the CPU and ~20× the GC of an
// unhooked one, even with recording switched off (bench/README.md), while
// the same closure built in a separate function costs nothing measurable.

/** The caller's callback, called once the read is recorded (fail-closed: durable), or with the refusal. */
function auditedCallback(cb: Callback, audit: Audit, sql: string | undefined, context: AuditScope | undefined): Callback {
  return (err, result) => {
    if (err) return cb(err, result)
    let wait: Promise<void> | undefined
    try {
      wait = audit(result, sql, context)
    } catch (e) {
      return cb(e as Error)
    }
    if (wait) wait.then(() => cb(null, result), (e: Error) => cb(e))
    else cb(null, result)
  }
}

/** The promise form of the same: resolves with the result once the read is recorded. */
function auditedResult(audit: Audit, sql: string | undefined, context: AuditScope | undefined): (result: unknown) => unknown {
  return (result) => {
    const wait = audit(result, sql, context)
    return wait ? wait.then(() => result) : result
  }
}

/** Groups a result's fields by sensitive table and collects each table's keys. */
function tableReads(fields: FieldDef[], rows: unknown[], tables: Map<number, PgTable>): TableRead[] | undefined {
  let reads: TableRead[] | undefined
  let seen: Set<number> | undefined
  for (const field of fields) {
    const table = tables.get(field.tableID)
    if (table === undefined || seen?.has(field.tableID)) continue
    ;(seen ??= new Set()).add(field.tableID)
    const read = readOfTable(table, field.tableID, fields, rows)
    if (read) (reads ??= []).push(read)
  }
  return reads
}

function readOfTable(table: PgTable, oid: number, fields: FieldDef[], rows: unknown[]): TableRead | undefined {
  const columns: string[] = []
  const keyIndexes: number[] = new Array<number>(table.keyAttnums.length).fill(-1)
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!
    if (f.tableID !== oid) continue
    const keyAt = table.keyAttnums.indexOf(f.columnID)
    if (keyAt >= 0 && keyIndexes[keyAt] === -1) keyIndexes[keyAt] = i
    if (table.sensitive && !table.sensitive.has(f.columnID)) continue
    const column = table.columns.get(f.columnID) ?? f.name
    if (!columns.includes(column)) columns.push(column)
  }
  if (columns.length === 0) return undefined
  const arrayRows = rows.length > 0 && Array.isArray(rows[0])
  // Object rows are keyed by field name and a later field of the same name
  // overwrites an earlier one (`SELECT p.id, a.id`): a key field that lost
  // its name cannot be read back.
  let complete = keyIndexes.every((i) => i >= 0)
  if (complete && !arrayRows) complete = keyIndexes.every((i) => lastIndexOfName(fields, fields[i]!.name) === i)
  // No rows, no record left unnamed: a probe without the key is complete.
  if (!complete) return { table: table.name, policy: table.entry.policy, columns, recordIds: [], rowCount: rows.length, recordIdsComplete: rows.length === 0 }
  const names = keyIndexes.map((i) => fields[i]!.name)
  const ids = new Set<string>()
  let rowCount = 0
  for (const row of rows) {
    const values = arrayRows ? keyIndexes.map((i) => (row as unknown[])[i]) : names.map((n) => (row as Record<string, unknown>)[n])
    const id = compositeKeyText(values)
    if (id === undefined) continue
    rowCount += 1
    ids.add(id)
  }
  // rowCount 0 (no rows, or only the outer side of a join that found none of
  // this table's) is still a read of the table: its statement ran.
  return { table: table.name, policy: table.entry.policy, columns, recordIds: [...ids], rowCount, recordIdsComplete: true }
}

function lastIndexOfName(fields: FieldDef[], name: string): number {
  for (let i = fields.length - 1; i >= 0; i--) if (fields[i]!.name === name) return i
  return -1
}
