import type { Connection, FieldPacket, Pool } from 'mysql2'
import type { Connection as PromiseConnection, Pool as PromisePool } from 'mysql2/promise'
import { ConfigError, describeError } from '../../common/errors.js'
import { componentLogger, silentLogger, type Logger } from '../../common/logger.js'
import { bindToAuditContext, currentAuditScope, runWithoutAuditContext, type AuditScope } from '../context/audit-context.js'
import { HookError } from './errors.js'
import { resolveMysqlTables, type CatalogQuery, type MysqlCatalog, type MysqlTable } from './mysql2-catalog.js'
import type { ReadRecorder } from './read-recorder.js'
import { compositeKeyText, keyText } from './row-keys.js'
import type { TableRead } from './table-read.js'

/** What instrumentMysql2 accepts: a mysql2 connection or pool, callback or promise API. */
export type Mysql2Target = Connection | Pool | PromiseConnection | PromisePool

export interface InstrumentMysql2Options {
  /** Where the hook's warnings go. @default none: an SDK writes nothing to the host's output unless given a logger */
  logger?: Logger
}

const HOOKED = Symbol.for('readtrail.mysql2.hooked')

/** Streamed rows are recorded in batches of this many (the first row of a result alone). */
const STREAM_BATCH_ROWS = 1000

type Callback = (this: unknown, ...args: unknown[]) => unknown

/** The parts of mysql2's core Connection the hook relies on (lib/base/connection.js). */
interface CoreConnection {
  addCommand(cmd: unknown): unknown
  /** The server's connection id, from its handshake; null until then. */
  threadId?: number | null
  execute(sql: string, values: unknown[], cb: Callback): unknown
}

/** The parts of mysql2's core Pool the hook relies on (lib/base/pool.js). */
interface CorePool {
  getConnection(cb: (err: Error | null, conn?: CoreConnection) => void): void
  execute(sql: string, values: unknown[], cb: Callback): unknown
  on(event: 'connection', listener: (conn: CoreConnection) => void): unknown
}

/** A Query or Execute command (lib/commands/query.js, execute.js): what runs SQL and returns rows. */
interface ResultCommand {
  onResult?: Callback
  emit(event: string | symbol, ...args: unknown[]): boolean
  listenerCount(event: string): number
  sql?: string
  statement?: { query?: string }
  /** The query's effective options, set when the command starts (before any field arrives). */
  options?: { nestTables?: boolean | string }
}

/** Reads the primary key of one aliased occurrence of a table from a row; undefined if NULL. */
type KeyReader = (row: unknown) => string | undefined

/** One sensitive table in one result set. */
interface PlannedTable {
  table: MysqlTable
  columns: string[]
  /** One reader per occurrence (alias) of the table carrying sensitive columns; undefined when one cannot be read. */
  keys: KeyReader[] | undefined
  ids: Set<string>
  rowCount: number
  /** Whether the result set has given this table an event yet (a zero-row read is recorded only if not). */
  recorded: boolean
}

/**
 * Audits a mysql2 Connection or Pool, or their promise wrappers (whose
 * `.connection` / `.pool` is the core object they call with a callback): every
 * result holding rows of a sensitive table becomes a read event naming the
 * primary key of each row. Tables are recognised by the column definitions
 * MySQL sends with each result (`schema`, `orgTable`, `orgName`), so aliases
 * and query builders on top (Kysely's MysqlDialect over this pool) change
 * nothing. What the server does not trace to a base table is not seen: the
 * columns of a UNION, a derived table or a CTE, and expressions; a view is seen
 * only if the view itself is configured (with its primaryKey).
 *
 * Every Query and Execute command passes through the connection's
 * `addCommand`, whatever API queued it (query, execute, a prepared
 * statement's execute, the pool, the promise wrappers): that is the one place
 * hooked. Resolves every configured table in information_schema first: an
 * unknown table or column, or a table without a primary key, is
 * HOOK_TABLE_UNKNOWN here. A pool's connections are hooked as the pool makes
 * or hands them out. An object already hooked is left as it is: the first
 * recorder attached keeps it.
 */
export async function instrumentMysql2<T extends Mysql2Target>(target: T, recorder: ReadRecorder, options: InstrumentMysql2Options = {}): Promise<T> {
  const core = coreOf(target)
  const catalogQuery: CatalogQuery = (sql, values) =>
    new Promise((resolve, reject) => {
      core.execute(sql, values, (err, rows) => (err ? reject(err as Error) : resolve(rows as Record<string, unknown>[])))
    })
  const catalog = await resolveMysqlTables(catalogQuery, recorder.config)
  const log = componentLogger(options.logger ?? silentLogger(), 'mysql2-hook')
  const hooks = createHooks(catalog, recorder, log)
  if (isCorePool(core)) hooks.pool(core)
  else hooks.connection(core)
  return target
}

function isCoreConnection(x: unknown): x is CoreConnection {
  return typeof (x as Partial<CoreConnection> | null)?.addCommand === 'function' && typeof (x as Partial<CoreConnection>).execute === 'function'
}

function isCorePool(x: unknown): x is CorePool {
  // The promise pool has getConnection and execute too, but no config: it is
  // the core pool under `.pool` that must be hooked.
  const p = x as Partial<CorePool & { releaseConnection: unknown; config: { connectionConfig?: unknown } }> | null
  return typeof p?.getConnection === 'function' && typeof p.releaseConnection === 'function' && typeof p.execute === 'function' && typeof p.config?.connectionConfig === 'object'
}

function coreOf(target: unknown): CoreConnection | CorePool {
  const wrapped = target as { connection?: unknown; pool?: unknown } | null
  for (const candidate of [target, wrapped?.connection, wrapped?.pool]) {
    if (isCorePool(candidate) || isCoreConnection(candidate)) return candidate
  }
  throw new ConfigError('instrumentMysql2 expects a mysql2 Connection or Pool (callback or promise API); PoolCluster is not supported')
}

function isResultCommand(cmd: unknown): cmd is ResultCommand {
  // Query and Execute are the commands that read a result set: they alone
  // have these states. Asked by shape, not class name, which a bundler may mangle.
  const c = cmd as Partial<Record<'resultsetHeader' | 'row' | 'emit', unknown>> | null
  return typeof c?.resultsetHeader === 'function' && typeof c.row === 'function' && typeof c.emit === 'function'
}

interface Hooks {
  pool(pool: CorePool): void
  connection(conn: CoreConnection): void
}

function createHooks(catalog: MysqlCatalog, recorder: ReadRecorder, log: Logger): Hooks {
  const warnedStreamed = new Set<string>()

  function hookPool(pool: CorePool): void {
    if (!mark(pool)) return
    pool.on('connection', (conn) => hookConnection(conn))
    const getConnection = pool.getConnection
    // mysql2 hands a queued caller the connection another request released, in
    // that request's async scope: without the bind, a read made on it would be
    // attributed to whoever released the connection. Hooking here also covers
    // connections the pool made before it was instrumented.
    pool.getConnection = function hookedGetConnection(this: CorePool, cb) {
      const bound = bindToAuditContext((err: Error | null, conn?: CoreConnection) => {
        if (!err && conn) hookConnection(conn)
        cb(err, conn)
      })
      getConnection.call(this, bound)
    }
  }

  function hookConnection(conn: CoreConnection): void {
    if (!mark(conn)) return
    const addCommand = conn.addCommand
    // The connection id the server gave this connection in its handshake:
    // the one server_audit logs (connection_id) and CONNECTION_ID() returns.
    // Fixed for the connection's life (changeUser keeps it, mysql2 never
    // reconnects one); read when a result arrives, by then it is known.
    let dbSession: string | undefined
    const sessionOf = (): string | undefined => {
      if (dbSession === undefined) {
        const id = conn.threadId
        if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) dbSession = String(id)
      }
      return dbSession
    }
    conn.addCommand = function hookedAddCommand(this: CoreConnection, cmd: unknown): unknown {
      if (isResultCommand(cmd)) watch(cmd, sessionOf)
      return addCommand.call(this, cmd)
    }
  }

  /**
   * Called as the command is queued, in the caller's async scope: the audit
   * context is taken now, because mysql2 delivers results from the socket's
   * scope, where it is someone else's or none.
   *
   * The SQL is what the server receives: connection.query formats the
   * values into the text before it queues the Query (lib/base/connection.js),
   * so `cmd.sql` is the COM_QUERY text itself. An Execute's `sql` is the
   * text with its `?` placeholders, which is what COM_STMT_PREPARE sends; the
   * values travel apart, in binary, in COM_STMT_EXECUTE.
   */
  function watch(cmd: ResultCommand, sessionOf: () => string | undefined): void {
    const context = currentAuditScope()
    const sql = typeof cmd.sql === 'string' ? cmd.sql : cmd.statement?.query
    const record = recorderFor(sql, context, sessionOf)
    if (typeof cmd.onResult === 'function') watchCallback(cmd, record, cmd.onResult)
    else watchEvents(cmd, record)
  }

  /** Records one command's reads: its SQL, its caller's context, its connection. */
  function recorderFor(sql: string | undefined, context: AuditScope | undefined, sessionOf: () => string | undefined): RecordReads {
    return (reads) => {
      // Lexed as MySQL whatever the producer's sqlDialect: read as PostgreSQL, a
      // "double-quoted" MySQL string would pass for an identifier and its
      // personal data would stay in the fingerprint.
      if (context !== undefined) return recorder.record(reads, sql, catalog.database, context, 'mysql', sessionOf())
      // Given no context the recorder reads the current scope's, which here is
      // the socket's: the caller had none, so none it must find.
      const run = () => recorder.record(reads, sql, catalog.database, undefined, 'mysql', sessionOf())
      return currentAuditScope() === undefined ? run() : runWithoutAuditContext(run)
    }
  }

  /**
   * Callback mode, which the promise wrappers use too: the rows reach the
   * caller's callback only once the read is recorded as its tables' policies
   * require; a refused read reaches it as an error, without rows.
   */
  function watchCallback(cmd: ResultCommand, record: RecordReads, callback: Callback): void {
    cmd.onResult = function auditedResult(this: unknown, ...args: unknown[]): unknown {
      const [err, rows, fields] = args
      if (err || !Array.isArray(fields) || !Array.isArray(rows)) return callback.apply(this, args)
      let wait: Promise<void> | undefined
      try {
        const reads = readsOfResult(rows, fields, cmd)
        wait = reads === undefined ? undefined : record(reads)
      } catch (e) {
        return callback.call(this, e)
      }
      if (wait === undefined) return callback.apply(this, args)
      // process.nextTick keeps a throwing callback an uncaught exception, as
      // in plain mysql2, instead of a rejection of this chain.
      wait.then(
        () => process.nextTick(() => callback.apply(this, args)),
        (e: unknown) => process.nextTick(() => callback.call(this, e)),
      )
      return undefined
    }
  }

  /** TableReads of a callback-mode result: one result set, or one per statement. */
  function readsOfResult(rows: unknown[], fields: unknown[], cmd: ResultCommand): TableRead[] | undefined {
    if (fields.length === 0) return undefined
    // A multi-statement query (or a CALL) yields an array of result sets with
    // an array of field lists, undefined for statements that return no rows.
    if (fields[0] === undefined || Array.isArray(fields[0])) {
      let reads: TableRead[] | undefined
      for (let i = 0; i < fields.length; i++) {
        const setFields = fields[i]
        const setRows = rows[i]
        if (!Array.isArray(setFields) || !Array.isArray(setRows)) continue
        const more = readsOfResultSet(setRows, setFields as FieldPacket[], cmd)
        if (more) (reads ??= []).push(...more)
      }
      return reads
    }
    return readsOfResultSet(rows, fields as FieldPacket[], cmd)
  }

  /** A result set with no rows still reads its sensitive tables: the statement ran, and the server logged it. */
  function readsOfResultSet(rows: unknown[], fields: FieldPacket[], cmd: ResultCommand): TableRead[] | undefined {
    const plan = planResultSet(fields, rows[0], cmd.options?.nestTables, catalog)
    if (plan === undefined) return undefined
    for (const row of rows) addRow(plan, row)
    return takeReads(plan, true)
  }

  /**
   * Event and stream mode (`query(sql).on('result', …)`, `.stream()`, Kysely's
   * streamQuery): the command's own emit is wrapped, so every row is seen
   * before any listener, and a refused read stops rows reaching them. Rows are
   * recorded in batches: the first row of each result set alone, so strict
   * mode refuses before a single row is out, then every STREAM_BATCH_ROWS and
   * at the end. A fail-closed table cannot hold streamed rows back until their
   * event is durable (that would mean buffering the stream): the rows flow,
   * and if the event then fails the stream is cut with AUDIT_UNAVAILABLE.
   * maxRowsPerRead counts the rows of the result set here, across batches.
   */
  function watchEvents(cmd: ResultCommand, record: RecordReads): void {
    const emit = cmd.emit
    let fields: FieldPacket[] | undefined
    let plan: PlannedTable[] | undefined | null = null
    let pending = 0
    let delivered = 0
    let batches = 0
    let ended = false
    let refused = false

    const refuse = (err: unknown): void => {
      if (refused) return
      refused = true
      if (!ended && cmd.listenerCount('error') > 0) emit.call(cmd, 'error', err)
      else log.error({ code: (err as { code?: unknown }).code, reason: describeError(err) }, 'streamed read refused after its rows were out')
    }
    /** Records the rows seen since the last flush; `final` at the end of a result set, when a table with no event yet gets its zero-row read. */
    const flush = (final: boolean): boolean => {
      // A result set that ended without a row was never planned.
      if (final && plan === null && fields !== undefined && fields.length > 0) plan = planResultSet(fields, undefined, cmd.options?.nestTables, catalog)
      if (!plan || (pending === 0 && !final)) return true
      pending = 0
      batches += 1
      const reads = takeReads(plan, final)
      if (reads === undefined) return true
      try {
        const wait = record(reads)
        wait?.catch(refuse)
      } catch (e) {
        refuse(e)
        return false
      }
      return true
    }

    cmd.emit = function auditedEmit(this: ResultCommand, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'result') {
        if (refused) return false
        // After `fields` undefined (a statement without rows) comes its ResultSetHeader.
        if (fields !== undefined) {
          if (plan === null) {
            plan = planResultSet(fields, args[0], cmd.options?.nestTables, catalog)
            if (plan) warnStreamedFailClosed(plan)
          }
          if (plan) {
            if (delivered >= recorder.config.maxRowsPerRead) {
              flush(false)
              refuse(new HookError('READ_TOO_LARGE', `a streamed query returned more than maxRowsPerRead (${recorder.config.maxRowsPerRead}) rows of ${plan.map((t) => t.table.name).join(', ')}: refused`, { details: { tables: plan.map((t) => t.table.name), limit: recorder.config.maxRowsPerRead } }))
              return false
            }
            addRow(plan, args[0])
            pending += 1
            if ((batches === 0 || pending >= STREAM_BATCH_ROWS) && !flush(false)) return false
            delivered += 1
          }
        }
      } else if (event === 'fields') {
        flush(true)
        fields = args[0] as FieldPacket[] | undefined
        plan = null
        delivered = 0
        batches = 0
      } else if (event === 'end') {
        flush(true)
        ended = true
      }
      return emit.call(this, event, ...args)
    }
  }

  function warnStreamedFailClosed(plan: PlannedTable[]): void {
    for (const { table } of plan) {
      if (table.entry.policy !== 'fail-closed' || warnedStreamed.has(table.name)) continue
      warnedStreamed.add(table.name)
      log.warn({ table: table.name }, 'fail-closed table read in stream mode: rows reach the caller before their event is durable')
    }
  }

  return { pool: hookPool, connection: hookConnection }
}

/** Records one command's reads (its SQL, context and connection are bound in). */
type RecordReads = (reads: TableRead[]) => Promise<void> | undefined

/** Marks an object hooked; false if it already was. */
function mark(target: object): boolean {
  const marked = target as Record<symbol, boolean>
  if (marked[HOOKED]) return false
  marked[HOOKED] = true
  return true
}

/**
 * One pass over a result set's fields: which sensitive tables it holds, their
 * sensitive columns by real name, and how to read each occurrence's primary
 * key from a row shaped as `sample` is. Undefined when no sensitive column is
 * in the result.
 */
function planResultSet(fields: FieldPacket[], sample: unknown, nestTables: boolean | string | undefined, catalog: MysqlCatalog): PlannedTable[] | undefined {
  let plan: PlannedTable[] | undefined
  // Per table: alias → field index of each key column (-1 while unseen), and
  // whether that occurrence carries a sensitive column.
  let occurrences: Map<PlannedTable, Map<string, { keyFields: number[]; sensitive: boolean }>> | undefined
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!
    const table = catalog.tables.get(field.schema ?? '')?.get(field.orgTable)
    if (table === undefined) continue
    const column = table.columns.get(field.orgName) ?? table.columns.get(field.orgName.toLowerCase())
    if (column === undefined) continue
    let planned = plan?.find((p) => p.table === table)
    if (planned === undefined) {
      planned = { table, columns: [], keys: undefined, ids: new Set(), rowCount: 0, recorded: false }
      ;(plan ??= []).push(planned)
      ;(occurrences ??= new Map()).set(planned, new Map())
    }
    const byAlias = occurrences!.get(planned)!
    let occurrence = byAlias.get(field.table)
    if (occurrence === undefined) byAlias.set(field.table, (occurrence = { keyFields: table.primaryKey.map(() => -1), sensitive: false }))
    const keyAt = table.primaryKey.indexOf(column)
    if (keyAt >= 0 && occurrence.keyFields[keyAt] === -1) occurrence.keyFields[keyAt] = i
    if (table.sensitive && !table.sensitive.has(column)) continue
    occurrence.sensitive = true
    if (!planned.columns.includes(column)) planned.columns.push(column)
  }
  if (plan === undefined) return undefined
  plan = plan.filter((p) => p.columns.length > 0)
  if (plan.length === 0) return undefined
  const shape = rowShape(sample, nestTables, fields)
  const lastOfSlot = shape === 'array' ? undefined : lastFieldOfSlot(fields, shape, nestTables)
  for (const planned of plan) {
    const readers: KeyReader[] = []
    for (const occurrence of occurrences!.get(planned)!.values()) {
      if (!occurrence.sensitive) continue
      // Object rows are keyed by field name, and a later field of the same name
      // overwrites an earlier one (`SELECT p.id, c.id`): a key field that lost
      // its slot cannot be read back, and that occurrence's records cannot be named.
      const readable = occurrence.keyFields.every((f) => f >= 0 && (lastOfSlot === undefined || lastOfSlot.get(slotOf(fields[f]!, shape, nestTables)) === f))
      if (!readable) {
        readers.length = 0
        break
      }
      readers.push(keyReader(occurrence.keyFields.map((f) => accessor(fields[f]!, f, shape, nestTables))))
    }
    planned.keys = readers.length > 0 ? readers : undefined
  }
  return plan
}

type RowShape = 'array' | 'object' | 'nested' | 'prefixed'

/**
 * How mysql2 built the rows. The eval and the static parsers disagree on which
 * of rowsAsArray and nestTables wins, so the row itself is asked.
 */
function rowShape(sample: unknown, nestTables: boolean | string | undefined, fields: FieldPacket[]): RowShape {
  if (typeof nestTables === 'string' && !Array.isArray(sample)) return 'prefixed'
  if (nestTables === true) {
    // No sample (a result set without rows): no row will be read either.
    const first = fields[0] && typeof sample === 'object' && sample !== null ? (sample as Record<string, unknown>)[fields[0].table] : undefined
    if (first !== null && typeof first === 'object') return 'nested'
  }
  return Array.isArray(sample) ? 'array' : 'object'
}

function slotOf(field: FieldPacket, shape: RowShape, nestTables: boolean | string | undefined): string {
  if (shape === 'nested') return `${field.table}\u0000${field.name}`
  if (shape === 'prefixed') return `${field.table}${String(nestTables)}${field.name}`
  return field.name
}

function lastFieldOfSlot(fields: FieldPacket[], shape: RowShape, nestTables: boolean | string | undefined): Map<string, number> {
  const last = new Map<string, number>()
  for (let i = 0; i < fields.length; i++) last.set(slotOf(fields[i]!, shape, nestTables), i)
  return last
}

type Accessor = (row: unknown) => unknown

function accessor(field: FieldPacket, index: number, shape: RowShape, nestTables: boolean | string | undefined): Accessor {
  switch (shape) {
    case 'array':
      return (row) => (row as unknown[])[index]
    case 'nested': {
      const table = field.table
      const name = field.name
      return (row) => (row as Record<string, Record<string, unknown> | undefined>)[table]?.[name]
    }
    case 'prefixed':
    case 'object': {
      const slot = slotOf(field, shape, nestTables)
      return (row) => (row as Record<string, unknown>)[slot]
    }
  }
}

function keyReader(parts: Accessor[]): KeyReader {
  if (parts.length === 1) {
    const part = parts[0]!
    return (row) => keyText(part(row))
  }
  return (row) => compositeKeyText(parts.map((p) => p(row)))
}

function addRow(plan: PlannedTable[], row: unknown): void {
  for (const planned of plan) {
    if (planned.keys === undefined) {
      planned.rowCount += 1
      continue
    }
    let carries = false
    for (const read of planned.keys) {
      const id = read(row)
      if (id === undefined) continue
      planned.ids.add(id)
      carries = true
    }
    // A row whose key is NULL in every occurrence (the outer side of a join
    // that found nothing) carries no record of this table.
    if (carries) planned.rowCount += 1
  }
}

/**
 * The reads collected since the last call, which resets the plan for the
 * next batch. With `final` (the result set is over), a table that has had
 * no event yet gets one of zero rows: no rows, or only the outer side of a
 * join that found none of its records, is still a read of it.
 */
function takeReads(plan: PlannedTable[], final: boolean): TableRead[] | undefined {
  let reads: TableRead[] | undefined
  for (const planned of plan) {
    if (planned.rowCount === 0 && (!final || planned.recorded)) continue
    // No rows, no record left unnamed.
    const complete = planned.keys !== undefined || planned.rowCount === 0
    ;(reads ??= []).push({
      table: planned.table.name,
      database: planned.table.database,
      policy: planned.table.entry.policy,
      columns: planned.columns,
      recordIds: complete ? [...planned.ids] : [],
      rowCount: planned.rowCount,
      recordIdsComplete: complete,
    })
    planned.ids = new Set()
    planned.rowCount = 0
    planned.recorded = true
  }
  return reads
}
