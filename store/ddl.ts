import { ACCESS_LOG_COLUMNS, HASH_COLUMN } from './access-log-columns.js'

/** A read states no purpose when it has none or only white space (tabs and newlines too). */
export const NO_PURPOSE_SQL = `(purpose IS NULL OR match(purpose, '^[[:space:]]*$'))`

/**
 * A read split into parts (one event per part) is one read: every part
 * carries the whole read's row_count, so reads and rows are counted on part
 * 0 only. Record ids are per part and counted on every part.
 */
export const FIRST_PART_SQL = 'part_index = 0'

/**
 * Tables, created idempotently (IF NOT EXISTS). access_log is the chained
 * source of truth, ordered by (chain_id, seq) so verification streams each
 * chain in order. One materialised view keeps a query-shaped copy:
 *
 * - access_by_principal: one row per event, ordered by (principal_id,
 *   occurred_at), so "what did this account touch" reads one key range.
 *
 * The view is derived data: verify re-hashes the chain in access_log and
 * checks that the view holds exactly the rows access_log implies. Every
 * other query shape is a projection or skip index of access_log itself.
 * Rows arrive in access_log itself, as the RowBinary bytes the chain writer
 * hashed (store.ts insertRowBinary).
 */
export function accessLogDdl(database: string): string[] {
  const db = quoteIdent(database)
  const columns = [...ACCESS_LOG_COLUMNS, HASH_COLUMN].map((c) => `  ${c.name} ${c.type}`).join(',\n')
  return [
    `CREATE DATABASE IF NOT EXISTS ${db}`,
    `CREATE TABLE IF NOT EXISTS ${db}.access_log (\n${columns}\n)
ENGINE = MergeTree
ORDER BY (chain_id, seq)
SETTINGS index_granularity = 8192`,
    // Stores made before the RowBinary insert took rows as JSON into a
    // Null-engine table whose view unhexed them into access_log. Nothing
    // writes there now; left in place it would still turn any JSON written
    // to it into access_log rows. The view goes first: dropping the table
    // under it would leave a view that no longer resolves.
    `DROP VIEW IF EXISTS ${db}.access_log_ingest_mv`,
    `DROP TABLE IF EXISTS ${db}.access_log_ingest`,
    ...viewDdl(db, 'access_by_principal', PRINCIPAL_VIEW_COLUMNS, '(principal_id, occurred_at)'),
    // Stores made before the saved queries moved to access_log's projections
    // and indexes also kept record_access (one row per record id) and the
    // principal_hours / principal_days rollups. No query reads them, yet
    // every insert fed them (about 2x its cost) and verify and repair kept
    // them whole. Views first, so no insert feeds a table being dropped.
    `DROP VIEW IF EXISTS ${db}.record_access_mv`,
    `DROP VIEW IF EXISTS ${db}.principal_hours_mv`,
    `DROP VIEW IF EXISTS ${db}.principal_days_mv`,
    `DROP TABLE IF EXISTS ${db}.record_access`,
    `DROP TABLE IF EXISTS ${db}.principal_hours`,
    `DROP TABLE IF EXISTS ${db}.principal_days`,
    // The chain writer appends in arrival order, so occurred_at rises with seq
    // within each chain: a min/max index lets window-wide queries (off-hours,
    // top readers, …) read the window's granules of access_log, not all.
    `ALTER TABLE ${db}.access_log ADD INDEX IF NOT EXISTS occurred_at_minmax occurred_at TYPE minmax GRANULARITY 1`,
    // The query-time check of a record's answer reads the access_log rows
    // holding that record of that table: granules without it are skipped.
    // Keyed by table too, since ids like 100042 recur in every table.
    `ALTER TABLE ${db}.access_log ADD INDEX IF NOT EXISTS ${RECORD_KEYS_INDEX} ${RECORD_KEYS_SQL} TYPE bloom_filter(0.01) GRANULARITY 1`,
    // The same for each part of a composite key (a data subject is often one
    // part of it): its own index, so a lookup by whole id does not read it.
    `ALTER TABLE ${db}.access_log ADD INDEX IF NOT EXISTS ${RECORD_PARTS_INDEX} ${RECORD_PARTS_SQL} TYPE bloom_filter(0.01) GRANULARITY 1`,
    ...ACCESS_LOG_PROJECTIONS.map((p) => `ALTER TABLE ${db}.access_log ADD PROJECTION IF NOT EXISTS ${p.name} (${p.select})`),
    // Skip indexes for breach-scope by IP or session: rows of one attacker
    // cluster under one principal in this table's order, so most granules drop.
    `ALTER TABLE ${db}.access_by_principal ADD INDEX IF NOT EXISTS client_ip_bf client_ip TYPE bloom_filter(0.01) GRANULARITY 1`,
    `ALTER TABLE ${db}.access_by_principal ADD INDEX IF NOT EXISTS session_bf session_hash TYPE bloom_filter(0.01) GRANULARITY 1`,
  ]
}

/**
 * Per (UTC day, principal, table, chain): reads, rows, reads without a
 * purpose, first and last read, as access_log's p_days projection holds
 * them. Window-wide queries (first-time access, top readers, reads without
 * purpose) read whole days from it and only the partial days at the
 * window's edges from the events: a month is ~1M pre-aggregated rows
 * instead of 10M events. A `SimpleAggregateFunction(fn, …)` type marks an
 * aggregate and says how its partial values combine (fn).
 */
export const PRINCIPAL_DAYS_COLUMNS = Object.freeze([
  { name: 'day', type: 'Date', expr: "toDate(occurred_at, 'UTC')" },
  { name: 'principal_id', type: 'LowCardinality(String)', expr: 'principal_id' },
  { name: 'db_name', type: 'LowCardinality(String)', expr: 'db_name' },
  { name: 'table_name', type: 'LowCardinality(String)', expr: 'table_name' },
  { name: 'chain_id', type: 'LowCardinality(String)', expr: 'chain_id' },
  { name: 'events', type: 'SimpleAggregateFunction(sum, UInt64)', expr: 'count()' },
  { name: 'reads', type: 'SimpleAggregateFunction(sum, UInt64)', expr: `countIf(${FIRST_PART_SQL})` },
  { name: 'rows_read', type: 'SimpleAggregateFunction(sum, UInt64)', expr: `sumIf(row_count, ${FIRST_PART_SQL})` },
  { name: 'unpurposed_reads', type: 'SimpleAggregateFunction(sum, UInt64)', expr: `countIf(${FIRST_PART_SQL} AND ${NO_PURPOSE_SQL})` },
  { name: 'unpurposed_rows', type: 'SimpleAggregateFunction(sum, UInt64)', expr: `sumIf(row_count, ${FIRST_PART_SQL} AND ${NO_PURPOSE_SQL})` },
  { name: 'first_at', type: "SimpleAggregateFunction(min, DateTime64(6, 'UTC'))", expr: 'min(occurred_at)' },
  { name: 'last_at', type: "SimpleAggregateFunction(max, DateTime64(6, 'UTC'))", expr: 'max(occurred_at)' },
  { name: 'first_seq', type: 'SimpleAggregateFunction(min, UInt64)', expr: 'min(seq)' },
  { name: 'last_seq', type: 'SimpleAggregateFunction(max, UInt64)', expr: 'max(seq)' },
] as const)

/**
 * Per (hour, principal, chain), as access_log's p_hours projection holds
 * them: the key, then partial aggregates (marked as for the days). Readers
 * re-aggregate (sum/min/max GROUP BY key): each part of access_log holds
 * its own partial row for a key.
 */
export const PRINCIPAL_HOURS_COLUMNS = Object.freeze([
  { name: 'hour', type: "DateTime('UTC')", expr: "toStartOfHour(occurred_at, 'UTC')" },
  { name: 'principal_id', type: 'LowCardinality(String)', expr: 'principal_id' },
  { name: 'chain_id', type: 'LowCardinality(String)', expr: 'chain_id' },
  { name: 'reads', type: 'SimpleAggregateFunction(sum, UInt64)', expr: `countIf(${FIRST_PART_SQL})` },
  { name: 'rows_read', type: 'SimpleAggregateFunction(sum, UInt64)', expr: `sumIf(row_count, ${FIRST_PART_SQL})` },
  { name: 'first_seq', type: 'SimpleAggregateFunction(min, UInt64)', expr: 'min(seq)' },
  { name: 'last_seq', type: 'SimpleAggregateFunction(max, UInt64)', expr: 'max(seq)' },
] as const)

/** Columns copied from access_log, in view order; types come from the source. */
export const PRINCIPAL_VIEW_COLUMNS = [
  'principal_id', 'occurred_at', 'principal_type', 'on_behalf_of', 'db_name', 'table_name', 'columns', 'record_ids',
  'record_ids_complete', 'row_count', 'part_index', 'client_ip', 'service', 'session_hash', 'action', 'purpose', 'outcome', 'event_id', 'chain_id', 'seq',
] as const

function viewDdl(db: string, table: string, names: readonly string[], orderBy: string): string[] {
  const columns = names.map((n) => `  ${n} ${ACCESS_LOG_COLUMNS.find((c) => c.name === n)!.type}`).join(',\n')
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.${table} (\n${columns}\n)\nENGINE = MergeTree\nORDER BY ${orderBy}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${table}_mv TO ${db}.${table} AS\nSELECT ${names.join(', ')}\nFROM ${db}.access_log`,
  ]
}

/**
 * Each record id of a row qualified by its table, as access_log's
 * record_keys_bf index holds them: `applicants/100042`. Keyed by table,
 * since ids like 100042 recur in every table.
 */
export const RECORD_KEYS_SQL = "arrayMap(r -> concat(table_name, '/', r), record_ids)"
export const RECORD_KEYS_INDEX = 'record_keys_bf'

/**
 * Each part of each composite record id (recorded as a JSON array of
 * strings, `["42","7"]`) qualified by its table and 1-based position, as
 * the record_parts_bf index holds them: `treatments/#1/42`,
 * `treatments/#2/7`. Ids that are not arrays add nothing.
 */
export const RECORD_PARTS_SQL =
  "arrayFlatten(arrayMap(r -> if(startsWith(r, '['), arrayMap(i -> concat(table_name, '/#', toString(i), '/', JSONExtractString(r, i)), range(1, toUInt64(JSONLength(r)) + 1)), []), record_ids))"
export const RECORD_PARTS_INDEX = 'record_parts_bf'

/** The skip indexes a store made before them gets materialised for its stored rows (store.ts). */
export const BACKFILLED_INDEXES = Object.freeze([RECORD_KEYS_INDEX, RECORD_PARTS_INDEX])

/**
 * A condition on access_log rows that the record_keys_bf index can skip
 * granules by: the row may hold one of `keys` (SQL for an Array(String) of
 * `table/record`). Only a pre-filter: callers keep their exact condition.
 * ClickHouse uses the index only for this exact expression.
 */
export function mayHoldRecordKeys(keys: string): string {
  return `hasAny(${RECORD_KEYS_SQL}, ${keys})`
}

/**
 * The same for composite key parts (record_parts_bf): `keys` is SQL for an
 * Array(String) of `table/#part/value`. Only a pre-filter.
 */
export function mayHoldRecordParts(keys: string): string {
  return `hasAny(${RECORD_PARTS_SQL}, ${keys})`
}

/**
 * Projections of access_log: copies of its own rows in the shapes the saved
 * queries read (one principal's events; per day and per hour aggregates),
 * kept by ClickHouse inside access_log's parts. The engine writes them from
 * the rows of the same insert and rebuilds them on every mutation, so SQL
 * on the store cannot make them say anything access_log does not: a query
 * answered from access_log is answered from the hash-chained table itself,
 * at the cost of a materialised view, and needs no re-check at query time.
 * ClickHouse uses a projection only where it computes exactly the
 * expressions a query asks for; a dropped or redefined projection makes the
 * query read the rows themselves (slower, never different), and verify's
 * definitions check reports it.
 *
 * The day shape is built from the column list queries/principal-days.ts
 * aggregates with, so its expressions match; bulk-extraction.ts spells
 * out the hour shape's expressions as PRINCIPAL_HOURS_COLUMNS has them.
 */
export const ACCESS_LOG_PROJECTIONS = Object.freeze([
  { name: 'p_principal', select: `SELECT ${PRINCIPAL_VIEW_COLUMNS.join(', ')} ORDER BY principal_id, occurred_at` },
  { name: 'p_days', select: aggregateProjection(PRINCIPAL_DAYS_COLUMNS) },
  { name: 'p_hours', select: aggregateProjection(PRINCIPAL_HOURS_COLUMNS) },
] as const)

function aggregateProjection(columns: readonly { name: string; type: string; expr: string }[]): string {
  const key = columns.filter((c) => !c.type.startsWith('SimpleAggregateFunction')).map((c) => c.expr)
  const aggregates = columns.filter((c) => c.type.startsWith('SimpleAggregateFunction')).map((c) => c.expr)
  return `SELECT ${[...key, ...aggregates].join(', ')} GROUP BY ${key.join(', ')}`
}

/** Database names come from validated config ([A-Za-z0-9_]), never from input. */
export function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new RangeError(`not a safe identifier: ${name}`)
  return `\`${name}\``
}
