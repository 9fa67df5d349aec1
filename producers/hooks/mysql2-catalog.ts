import { HookError } from './errors.js'
import type { AuditHookConfig, SensitiveTable } from './hook-config.js'

/** A sensitive table as information_schema knows it. */
export interface MysqlTable {
  /** The configuration key (`people` or `app.people`): the table name events carry. */
  name: string
  /**
   * The database (MySQL's schema) the table lives in, as information_schema
   * spells it: the db_name its reads carry, whatever the connection's
   * default database is (`USE` and changeUser move that, not the table).
   */
  database: string
  entry: SensitiveTable
  /** Column name, as the catalog spells it and lower-cased → the catalog's spelling. */
  columns: Map<string, string>
  /** Primary key columns in key order, catalog spelling. */
  primaryKey: string[]
  /** Sensitive columns (catalog spelling), or undefined for "every column". */
  sensitive: Set<string> | undefined
}

export interface MysqlCatalog {
  /** The database events name: the hook option, else the connection's default database. */
  database: string
  /** schema → table (catalog spelling, as the protocol's `schema` and `orgTable` report them) → table. */
  tables: Map<string, Map<string, MysqlTable>>
}

/** Runs one catalog query with server-side bound parameters and returns its rows. */
export type CatalogQuery = (sql: string, values: unknown[]) => Promise<Record<string, unknown>[]>

/**
 * Resolves every configured table in information_schema, so an unknown table
 * or column, or a table without a primary key, is HOOK_TABLE_UNKNOWN at start
 * instead of a read nobody recorded later. A view may be configured too (its
 * columns then name the view), but has no primary key of its own: configure it.
 */
export async function resolveMysqlTables(query: CatalogQuery, config: Readonly<AuditHookConfig>): Promise<MysqlCatalog> {
  const current = await query('SELECT DATABASE() AS db', [])
  const defaultDb = stringOrUndefined(current[0]?.['db'])
  const tables = new Map<string, Map<string, MysqlTable>>()
  let firstSchema: string | undefined
  for (const [configured, entry] of Object.entries(config.tables)) {
    const dot = configured.indexOf('.')
    const schema = dot >= 0 ? configured.slice(0, dot) : defaultDb
    const wanted = dot >= 0 ? configured.slice(dot + 1) : configured
    if (schema === undefined) {
      throw new HookError('HOOK_TABLE_UNKNOWN', `sensitive table ${configured} names no database and the connection has no default database: write database.table`, { details: { table: configured } })
    }
    // information_schema compares names case-insensitively while table names on
    // Linux are case-sensitive: prefer the exact spelling, accept a unique
    // case-insensitive match, and remember what the catalog calls it, since
    // that is what the protocol reports as orgTable.
    const found = await query('SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, wanted])
    const exact = found.filter((r) => r['s'] === schema && r['t'] === wanted)
    const match = exact.length === 1 ? exact[0] : found.length === 1 ? found[0] : undefined
    if (match === undefined) {
      const why = found.length > 1 ? 'matches several tables that differ only in case' : `does not exist in database ${schema}`
      throw new HookError('HOOK_TABLE_UNKNOWN', `sensitive table ${configured} ${why}`, { details: { table: configured } })
    }
    const tableSchema = String(match['s'])
    const tableName = String(match['t'])
    const cols = await query('SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [tableSchema, tableName])
    const columns = new Map<string, string>()
    for (const row of cols) {
      const column = String(row['c'])
      columns.set(column, column)
      // Column names are case-insensitive in MySQL: `SELECT FULL_NAME` reads full_name.
      if (!columns.has(column.toLowerCase())) columns.set(column.toLowerCase(), column)
    }
    const columnOf = (column: string): string => {
      const known = columns.get(column) ?? columns.get(column.toLowerCase())
      if (known === undefined) throw new HookError('HOOK_TABLE_UNKNOWN', `sensitive table ${configured} has no column ${column}`, { details: { table: configured, column } })
      return known
    }
    let primaryKey: string[]
    if (entry.primaryKey) {
      primaryKey = entry.primaryKey.map(columnOf)
    } else {
      const pk = await query("SELECT COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", [tableSchema, tableName])
      primaryKey = pk.map((r) => String(r['c']))
      if (primaryKey.length === 0) {
        throw new HookError('HOOK_TABLE_UNKNOWN', `sensitive table ${configured} has no primary key: configure primaryKey`, { details: { table: configured } })
      }
    }
    const sensitive = entry.columns ? new Set(entry.columns.map(columnOf)) : undefined
    let inSchema = tables.get(tableSchema)
    if (inSchema === undefined) tables.set(tableSchema, (inSchema = new Map()))
    inSchema.set(tableName, { name: configured, database: tableSchema, entry, columns, primaryKey, sensitive })
    firstSchema ??= tableSchema
  }
  // Without a default database every table was configured as database.table;
  // the first one's database stands for the connection.
  return { database: config.database ?? defaultDb ?? firstSchema ?? 'mysql', tables }
}

function stringOrUndefined(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value)
}
