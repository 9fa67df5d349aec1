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
 * The views are derived data: integrity checks always run on access_log.
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
    `CREATE TABLE IF NOT EXISTS ${db}.access_by_principal (
  principal_id LowCardinality(String),
  occurred_at DateTime64(6, 'UTC'),
  principal_type Enum8('user' = 1, 'service' = 2, 'system' = 3),
  on_behalf_of Nullable(String),
  db_name LowCardinality(String),
  table_name LowCardinality(String),
  columns Array(LowCardinality(String)),
  record_ids Array(String),
  record_ids_complete Bool,
  row_count UInt64,
  client_ip Nullable(IPv6),
  service LowCardinality(String),
  session_hash Nullable(FixedString(32)),
  action Enum8('read' = 1, 'export' = 2, 'search' = 3),
  outcome Enum8('success' = 1, 'denied' = 2, 'error' = 3),
  event_id UUID,
  chain_id LowCardinality(String),
  seq UInt64
)
ENGINE = MergeTree
ORDER BY (principal_id, occurred_at)`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.access_by_principal_mv TO ${db}.access_by_principal AS
SELECT principal_id, occurred_at, principal_type, on_behalf_of, db_name, table_name, columns, record_ids,
       record_ids_complete, row_count, client_ip, service, session_hash, action, outcome, event_id, chain_id, seq
FROM ${db}.access_log`,
    `CREATE TABLE IF NOT EXISTS ${db}.record_access (
  db_name LowCardinality(String),
  table_name LowCardinality(String),
  record_id String,
  occurred_at DateTime64(6, 'UTC'),
  principal_id LowCardinality(String),
  principal_type Enum8('user' = 1, 'service' = 2, 'system' = 3),
  on_behalf_of Nullable(String),
  columns Array(LowCardinality(String)),
  client_ip Nullable(IPv6),
  service LowCardinality(String),
  session_hash Nullable(FixedString(32)),
  action Enum8('read' = 1, 'export' = 2, 'search' = 3),
  outcome Enum8('success' = 1, 'denied' = 2, 'error' = 3),
  event_id UUID,
  chain_id LowCardinality(String),
  seq UInt64
)
ENGINE = MergeTree
ORDER BY (table_name, record_id, occurred_at)`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.record_access_mv TO ${db}.record_access AS
SELECT db_name, table_name, arrayJoin(record_ids) AS record_id, occurred_at, principal_id, principal_type, on_behalf_of,
       columns, client_ip, service, session_hash, action, outcome, event_id, chain_id, seq
FROM ${db}.access_log`,
  ]
}

/** Database names come from validated config ([A-Za-z0-9_]), never from input. */
export function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new RangeError(`not a safe identifier: ${name}`)
  return `\`${name}\``
}
