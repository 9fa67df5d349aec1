import { ACCESS_LOG_COLUMNS, HASH_COLUMN, INGEST_COLUMNS } from './access-log-columns.js'

/**
 * Tables, created idempotently (IF NOT EXISTS). access_log is the chained
 * source of truth, ordered by (chain_id, seq) so verification streams each
 * chain in order. Two materialised views keep query-shaped copies:
 *
 * - access_by_principal: one row per event, ordered by (principal_id,
 *   occurred_at), so "what did this account touch" reads one key range.
 * - record_access: one row per (event, record id), ordered by (table_name,
 *   record_id, occurred_at), so "who touched this record" is a
 *   primary-key lookup instead of a scan of every record_ids array.
 *
 * The views are derived data: verify re-hashes the chain in access_log and
 * checks that each view holds exactly the rows access_log implies.
 * Rows arrive through access_log_ingest (Null engine) because the JSON insert
 * format cannot carry raw hash bytes; its view unhexes them into access_log.
 */
export function accessLogDdl(database: string): string[] {
  const db = quoteIdent(database)
  const columns = [...ACCESS_LOG_COLUMNS, HASH_COLUMN].map((c) => `  ${c.name} ${c.type}`).join(',\n')
  const ingestColumns = INGEST_COLUMNS.map((c) => `  ${c.name} ${c.type}`).join(',\n')
  const ingestSelect = INGEST_COLUMNS.map((c) => (c.expr === c.name ? c.name : `${c.expr} AS ${c.name}`)).join(', ')
  return [
    `CREATE DATABASE IF NOT EXISTS ${db}`,
    `CREATE TABLE IF NOT EXISTS ${db}.access_log (\n${columns}\n)
ENGINE = MergeTree
ORDER BY (chain_id, seq)
SETTINGS index_granularity = 8192`,
    `CREATE TABLE IF NOT EXISTS ${db}.access_log_ingest (\n${ingestColumns}\n) ENGINE = Null`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.access_log_ingest_mv TO ${db}.access_log AS
SELECT ${ingestSelect} FROM ${db}.access_log_ingest`,
    ...viewDdl(db, 'access_by_principal', PRINCIPAL_VIEW_COLUMNS, '(principal_id, occurred_at)'),
    ...viewDdl(db, 'record_access', RECORD_VIEW_COLUMNS, '(table_name, record_id, occurred_at)'),
  ]
}

/** Columns copied from access_log, in view order; types come from the source. */
export const PRINCIPAL_VIEW_COLUMNS = [
  'principal_id', 'occurred_at', 'principal_type', 'on_behalf_of', 'db_name', 'table_name', 'columns', 'record_ids',
  'record_ids_complete', 'row_count', 'client_ip', 'service', 'session_hash', 'action', 'purpose', 'outcome', 'event_id', 'chain_id', 'seq',
] as const

/** `record_id` is the one derived column: one row per element of record_ids. */
export const RECORD_VIEW_COLUMNS = [
  'db_name', 'table_name', 'record_id', 'occurred_at', 'principal_id', 'principal_type', 'on_behalf_of', 'columns',
  'client_ip', 'service', 'session_hash', 'action', 'purpose', 'outcome', 'event_id', 'chain_id', 'seq',
] as const

const DERIVED: Record<string, { type: string; expr: string }> = {
  record_id: { type: 'String', expr: 'arrayJoin(record_ids) AS record_id' },
}

/** What each query view selects from access_log rows: its materialised view's SELECT list. */
export function viewSelect(names: readonly string[]): string {
  return names.map((n) => DERIVED[n]?.expr ?? n).join(', ')
}

function viewDdl(db: string, table: string, names: readonly string[], orderBy: string): string[] {
  const typeOf = (name: string) => DERIVED[name]?.type ?? ACCESS_LOG_COLUMNS.find((c) => c.name === name)!.type
  const columns = names.map((n) => `  ${n} ${typeOf(n)}`).join(',\n')
  const select = viewSelect(names)
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.${table} (\n${columns}\n)\nENGINE = MergeTree\nORDER BY ${orderBy}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${table}_mv TO ${db}.${table} AS\nSELECT ${select}\nFROM ${db}.access_log`,
  ]
}

/** Database names come from validated config ([A-Za-z0-9_]), never from input. */
export function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new RangeError(`not a safe identifier: ${name}`)
  return `\`${name}\``
}
