import { editDistance } from '../common/suggest.js'
import type { Store } from '../store/store.js'
import { QueryError } from './errors.js'

/** One table as reads of it are recorded: access_log's db_name and table_name. */
export interface RecordedTable {
  db_name: string
  table_name: string
}

/** The recorded tables a query's table parameters resolved to; bound as parallel arrays. */
export interface ResolvedTables {
  /** Empty when the query was given no table or database: every table. */
  db_names: string[]
  table_names: string[]
}

/**
 * Which parameters of a saved query name tables (one name, or a list) and
 * which names a database; they are resolved against the recorded tables
 * before the query runs (resolveTableParams).
 */
export interface TableParams {
  readonly table?: string
  readonly database?: string
  /** Extra values to bind once the tables are known (e.g. record index keys). */
  bind?(resolved: ResolvedTables, params: Record<string, unknown>): Record<string, unknown>
}

/**
 * The resolved tables as a condition on db_name and table_name: every table
 * when none was named. Bound arrays only, and only columns access_log's
 * p_days projection carries, so daily answers keep reading it.
 */
export const TABLE_FILTER = `(empty({table_names:Array(String)}) OR has(arrayZip({db_names:Array(String)}, {table_names:Array(String)}), (toString(db_name), toString(table_name))))`

/**
 * Most distinct tables read for resolution. A store holds reads of tens of
 * sensitive tables, not thousands; past this the lookup says it was cut.
 */
export const MAX_RECORDED_TABLES = 10_000

/**
 * Every (db_name, table_name) recorded, from access_log itself: a GROUP BY
 * on two key columns of its p_days projection, so ClickHouse reads the
 * pre-aggregated daily rows, not the events.
 */
export function recordedTablesSql(store: Store): string {
  return `SELECT toString(db_name) AS db_name, toString(table_name) AS table_name FROM ${store.table('access_log')}
    GROUP BY db_name, table_name ORDER BY db_name, table_name LIMIT ${MAX_RECORDED_TABLES + 1}`
}

/** PostgreSQL's default schema: `patients` and `public.patients` name the same table there. */
const DEFAULT_SCHEMA = 'public'

/**
 * The ways a recorded table can be written, each as its dot-separated
 * parts, fully qualified: `db.table` as recorded, the table's own qualified
 * name (a PostgreSQL hook records `public.patients` or `patients`, as
 * configured; a MySQL hook `patients` or `clinic.patients`, its database
 * repeated), with PostgreSQL's default schema written or left out.
 */
function spellings(t: RecordedTable): string[][] {
  const parts = t.table_name.split('.')
  const out = [[t.db_name, ...parts]]
  if (parts.length === 1) out.push([t.db_name, DEFAULT_SCHEMA, parts[0]!])
  if (parts.length === 2 && (parts[0] === DEFAULT_SCHEMA || parts[0] === t.db_name)) out.push([t.db_name, parts[1]!])
  return out
}

/** Whether `typed` is a trailing part of one of the table's spellings: `patients`, `public.patients`, `db.patients`, `db.public.patients`. */
export function tableMatches(typed: string, t: RecordedTable, fold = false): boolean {
  const norm = (s: string) => (fold ? s.toLowerCase() : s)
  const want = typed.split('.').map(norm)
  return spellings(t).some((parts) => want.length <= parts.length && want.every((p, i) => p === norm(parts[parts.length - want.length + i]!)))
}

/** How a recorded table is shown in suggestions: the name to type, unambiguous. */
export function displayName(t: RecordedTable): string {
  return `${t.db_name}.${t.table_name}`
}

/**
 * Resolves a query's table and database parameters to the recorded tables
 * they mean, so a table is found however it is written. A name (or a
 * database) that matches nothing recorded is QUERY_TABLE_UNKNOWN with the
 * closest recorded names, never an empty answer that reads as "nobody".
 */
export async function resolveTableParams(store: Store, query: string, spec: TableParams, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  const typed = namesOf(spec.table === undefined ? undefined : params[spec.table])
  const database = spec.database === undefined ? undefined : params[spec.database]
  const db = typeof database === 'string' && database !== '' ? database : undefined
  let resolved: ResolvedTables = { db_names: [], table_names: [] }
  if (typed.length > 0 || db !== undefined) {
    const recorded = await store.queryRows<RecordedTable>(recordedTablesSql(store), {})
    const cut = recorded.length > MAX_RECORDED_TABLES
    if (cut) recorded.length = MAX_RECORDED_TABLES
    resolved = resolveTables(query, { table: spec.table, database: spec.database }, typed, db, recorded, cut)
  }
  return { ...resolved, ...spec.bind?.(resolved, params) }
}

function namesOf(value: unknown): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value]
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

/**
 * The pure half of resolveTableParams: the recorded tables `names` (any
 * spelling) in `database` (when given) mean. Throws QUERY_TABLE_UNKNOWN
 * naming the first parameter value that matches nothing.
 */
export function resolveTables(
  query: string,
  paramNames: { table?: string | undefined; database?: string | undefined },
  names: readonly string[],
  database: string | undefined,
  recorded: readonly RecordedTable[],
  cut = false,
): ResolvedTables {
  if (names.length === 0 && database === undefined) return { db_names: [], table_names: [] }
  const inDatabase = database === undefined ? recorded : recorded.filter((t) => t.db_name === database)
  if (database !== undefined && inDatabase.length === 0) {
    const databases = [...new Set(recorded.map((t) => t.db_name))]
    throw unknown(query, paramNames.database ?? 'database', database, closest(database, databases, (d) => editDistance(database.toLowerCase(), d.toLowerCase())), databases, cut, 'database')
  }
  if (names.length === 0) return { db_names: inDatabase.map((t) => t.db_name), table_names: inDatabase.map((t) => t.table_name) }
  const chosen = new Map<string, RecordedTable>()
  for (const name of names) {
    const matches = inDatabase.filter((t) => tableMatches(name, t))
    if (matches.length === 0) {
      const shown = inDatabase.map(displayName)
      // A different case first (PostgreSQL folds unquoted names, MySQL may
      // not), then the recorded names closest in spelling.
      const folded = inDatabase.filter((t) => tableMatches(name, t, true)).map(displayName)
      const near = folded.length > 0 ? folded : closest(name, inDatabase, (t) => tableDistance(name, t)).map(displayName)
      throw unknown(query, paramNames.table ?? 'table', name, near, shown, cut, database === undefined ? 'table' : `table in database ${database}`)
    }
    for (const t of matches) chosen.set(`${t.db_name}\u0000${t.table_name}`, t)
  }
  const tables = [...chosen.values()]
  return { db_names: tables.map((t) => t.db_name), table_names: tables.map((t) => t.table_name) }
}

function unknown(query: string, param: string, value: string, suggestions: string[], known: string[], cut: boolean, what: string): QueryError {
  const hint =
    suggestions.length > 0
      ? `did you mean ${suggestions.map((s) => JSON.stringify(s)).join(' or ')}?`
      : known.length === 0
        ? 'no reads are recorded in this store yet'
        : `recorded: ${known.slice(0, 10).map((s) => JSON.stringify(s)).join(', ')}${known.length > 10 ? `, and ${known.length - 10} more` : ''}`
  return new QueryError('QUERY_TABLE_UNKNOWN', `${query}: ${param}: no ${what} named ${JSON.stringify(value)} has recorded reads${cut ? ` among the first ${MAX_RECORDED_TABLES} tables` : ''}; ${hint}`, {
    details: { query, param, value, suggestions, recorded: known.slice(0, 100) },
  })
}

/**
 * Up to three of `candidates` nearest to `typed` (by `distance`, edits of
 * the lower-cased text) within a third of its length, at least two edits.
 */
function closest<T>(typed: string, candidates: readonly T[], distance: (c: T) => number): T[] {
  const limit = Math.max(2, Math.floor(typed.length / 3))
  return candidates
    .map((c) => ({ c, d: distance(c) }))
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map((x) => x.c)
}

/** Edits from `typed` to the table's spelling with as many dotted parts: `registry.applicant` is one from registry.applicants, many from archive.applicants. */
function tableDistance(typed: string, t: RecordedTable): number {
  const want = typed.toLowerCase()
  const n = want.split('.').length
  return Math.min(...spellings(t).filter((parts) => parts.length >= n).map((parts) => editDistance(want, parts.slice(-n).join('.').toLowerCase())))
}
