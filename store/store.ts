import { Readable } from 'node:stream'
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client'
import { createRequire } from 'node:module'
import type * as ChdbConnectionModule from 'chdb/connection'
import { ReadtrailError } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import type { StoreConfig } from './config.js'
import { withSettingsClause } from './settings-clause.js'
import { ACCESS_LOG_PROJECTIONS, accessLogDdl, BACKFILLED_INDEXES, quoteIdent } from './ddl.js'
import { ACCESS_LOG_COLUMNS, HASH_COLUMN, STORED_COLUMN_NAMES } from './access-log-columns.js'
import { createInsertFiles, quoteStringLiteral, removeStaleInsertDirs, type InsertFiles } from './insert-file.js'
import { StoreError, storeUnavailable } from './errors.js'
import { claimDataDir } from './owner-lock.js'

export interface Store {
  readonly kind: 'embedded' | 'server'
  readonly database: string
  readonly client: ClickHouseClient
  /** `<database>.<table>`, quoted. */
  table(name: string): string
  /** Creates the database, tables and views if missing. */
  ensureSchema(): Promise<void>
  /**
   * Throws STORE_SCHEMA_MISMATCH unless access_log exists with exactly the
   * columns this version writes. Read-only commands call this instead of
   * ensureSchema, so a wrong database never passes for an empty, intact log.
   */
  checkSchema(): Promise<void>
  /** Runs a SELECT with bound parameters and returns its rows. */
  queryRows<T>(query: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<T[]>
  /**
   * Inserts `rowCount` RowBinary rows into a table in one atomic insert (one
   * block: up to ClickHouse's max_insert_block_size rows). A row ClickHouse
   * refuses fails the whole insert as STORE_REJECTED (isDataError), so the
   * writer can retry the rows one by one and dead-letter the refused one.
   *
   * `columns` names what each row holds, in order; it defaults to
   * STORED_COLUMN_NAMES, every column of access_log with `hash` last, as
   * linkEntries encodes them. Another table passes its own list: the insert
   * names its columns explicitly, so a column added to a table later takes
   * its default instead of shifting the bytes into the wrong columns.
   */
  insertRowBinary(table: string, rows: Buffer, rowCount: number, columns?: readonly string[]): Promise<void>
  /** The same connection on another database (closing the view does not close the connection). */
  withDatabase(database: string): Store
  close(): Promise<void>
}

export interface OpenStoreOptions {
  /** Names this process in the embedded owner lock, e.g. `readtrail consume`. */
  command: string
  logger?: Logger
}

/**
 * Opens the store through @clickhouse/client either way: chDB's connection for
 * the embedded engine, HTTP for a server. Everything above this file is the
 * same code for both.
 */
export function openStore(config: StoreConfig, options: OpenStoreOptions): Store {
  const embedded = config.url === undefined
  const release = embedded ? claimDataDir(config.dataDir, options.command) : () => {}
  if (embedded) {
    try {
      removeStaleInsertDirs(config.dataDir)
    } catch (cause) {
      release()
      throw storeUnavailable(`removing insert files a previous owner of ${config.dataDir} left failed`, cause)
    }
  }
  const clickhouse_settings = {
    // seq and row counts fit in a double; offsets are selected with toString().
    output_format_json_quote_64bit_integers: 0 as const,
    date_time_output_format: 'iso' as const,
  }
  const client = embedded
    ? createClient({ connection: loadChdb().createChdbConnection({ path: config.dataDir }), clickhouse_settings } as Parameters<typeof createClient>[0])
    : createClient({ url: config.url, username: config.username, password: config.password, clickhouse_settings, request_timeout: 300_000 })
  options.logger?.debug({ kind: embedded ? 'embedded' : 'server', database: config.database }, 'store opened')
  // Only the embedded engine needs insert files; the directory is made on the first insert.
  const files = embedded ? createInsertFiles(config.dataDir) : undefined
  return storeOn(client, embedded ? 'embedded' : 'server', config.database, files, async () => {
    try {
      await client.close()
    } finally {
      files?.remove()
      release()
    }
  })
}

/**
 * The embedded engine is loaded only when used: a deployment against a
 * ClickHouse server never maps libchdb into its process, and an application
 * that only produces events does not install it (chdb is an optional peer
 * dependency, 543 MB with its native library).
 */
function loadChdb(): typeof ChdbConnectionModule {
  const require = createRequire(import.meta.url)
  try {
    require.resolve('chdb/connection')
  } catch (cause) {
    throw new StoreError('STORE_ENGINE_MISSING', 'the embedded ClickHouse engine (chdb) is not installed: run `npm install chdb`, or set READTRAIL_CLICKHOUSE_URL to use a ClickHouse server', { cause })
  }
  return require('chdb/connection') as typeof ChdbConnectionModule
}

/**
 * `files` carries the embedded engine's inserts (undefined for a server); a
 * store and its withDatabase views share it.
 */
function storeOn(client: ClickHouseClient, kind: Store['kind'], database: string, files: InsertFiles | undefined, close: () => Promise<void>): Store {
  const db = quoteIdent(database)
  return Object.freeze({
    kind,
    database,
    client,
    table: (name: string) => `${db}.${quoteIdent(name)}`,
    async ensureSchema() {
      for (const statement of [...accessLogDdl(database), ...(await schemaBackfill(this))]) {
        try {
          await client.command({ query: statement })
        } catch (cause) {
          throw storeUnavailable('creating the readtrail schema failed', cause)
        }
      }
    },
    async checkSchema() {
      const want = [...ACCESS_LOG_COLUMNS, HASH_COLUMN].map((c) => `${c.name} ${c.type}`)
      const rows = await this.queryRows<{ name: string; type: string }>(
        `SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'access_log' ORDER BY position`,
        { db: database },
      )
      if (rows.length === 0) {
        throw new StoreError('STORE_NOT_FOUND', `no readtrail log here: database ${database} has no access_log table`, { details: { database } })
      }
      const have = rows.map((r) => `${r.name} ${r.type}`)
      const missing = want.filter((c) => !have.includes(c))
      const unexpected = have.filter((c) => !want.includes(c))
      if (missing.length > 0 || unexpected.length > 0 || have.join() !== want.join()) {
        throw new StoreError(
          'STORE_SCHEMA_MISMATCH',
          `${database}.access_log was not created by this readtrail version: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]`,
          { details: { database, missing, unexpected } },
        )
      }
    },
    async queryRows<T>(query: string, params: Record<string, unknown> = {}, settings?: ClickHouseSettings): Promise<T[]> {
      try {
        const request =
          settings === undefined ? { query } : kind === 'embedded' ? { query: withSettingsClause(query, settings) } : { query, clickhouse_settings: settings }
        const rs = await client.query({ ...request, query_params: params, format: 'JSONEachRow' })
        return await rs.json<T>()
      } catch (cause) {
        throw storeUnavailable('query failed', cause)
      }
    },
    async insertRowBinary(table: string, rows: Buffer, rowCount: number, columns: readonly string[] = STORED_COLUMN_NAMES) {
      if (rowCount === 0) return
      const head = `INSERT INTO ${db}.${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')})`
      try {
        if (files === undefined) {
          // Over HTTP the bytes are the request body as they are.
          const result = await client.exec({ query: `${head} FORMAT RowBinary`, values: Readable.from([rows]) })
          result.stream.resume()
        } else {
          await files.withFile(rows, (path) => client.command({ query: `${head} FROM INFILE ${quoteStringLiteral(path)} FORMAT RowBinary` }))
        }
      } catch (cause) {
        // A coded error of ours (an insert directory others can reach) keeps its code: retrying cannot fix it.
        if (cause instanceof ReadtrailError) throw cause
        throw storeUnavailable(`insert of ${rowCount} rows into ${table} failed`, cause, { details: { table, rows: rowCount } })
      }
    },
    withDatabase: (other: string) => storeOn(client, kind, other, files, async () => {}),
    close,
  })
}

/**
 * A store created before access_log had its projections and record key
 * indexes gets them added by the DDL, but only parts written from then on
 * hold them: queries on older parts read the rows themselves (right,
 * slower). One background mutation each fills them in, queued only while
 * some part lacks a projection, or when an index is about to be added to a
 * table with rows.
 */
async function schemaBackfill(store: Store): Promise<string[]> {
  const log = store.table('access_log')
  const known = new Set<string>(ACCESS_LOG_PROJECTIONS.map((p) => p.name))
  const [rows, index] = await Promise.all([
    store.queryRows<{ missing_name: string }>(
      `SELECT DISTINCT arrayJoin(arrayFilter(p -> NOT has(projections, p), {names:Array(String)})) AS missing_name
       FROM system.parts WHERE database = {db:String} AND table = 'access_log' AND active`,
      { db: store.database, names: [...known] },
    ),
    store.queryRows<{ present: string[]; stored: number }>(
      `SELECT (SELECT groupArray(name) FROM system.data_skipping_indices WHERE database = {db:String} AND table = 'access_log') AS present,
              (SELECT count() FROM system.parts WHERE database = {db:String} AND table = 'access_log' AND active) AS stored`,
      { db: store.database },
    ),
  ])
  // Names go into SQL text: only ours, never what the store answered.
  const statements = rows.filter((r) => known.has(r.missing_name)).map((r) => `ALTER TABLE ${log} MATERIALIZE PROJECTION ${r.missing_name}`)
  if (Number(index[0]?.stored) > 0) {
    const present = new Set(index[0]?.present ?? [])
    for (const name of BACKFILLED_INDEXES) if (!present.has(name)) statements.push(`ALTER TABLE ${log} MATERIALIZE INDEX ${name}`)
  }
  return statements
}
