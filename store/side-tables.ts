import { PRINCIPAL_TYPES } from '../schemas/access-event.js'
import { ALERT_ACTIONS, type AlertEvent } from '../schemas/alert-event.js'
import { DB_AUDIT_SOURCE_KINDS, type DbAuditEvent } from '../schemas/db-audit-event.js'
import type { SideKind } from '../schemas/side-batch.js'
import { enumType } from './access-log-columns.js'
import type { RowBinaryWriter } from './row-binary.js'

/**
 * The tables of the two side streams, each a hash chain per Kafka partition
 * as access_log is: `db_audit_log` (a database's own audit log entries for
 * sensitive tables) and `alert_log` (extraction-guard alerts). A row's
 * `hash` is SHA-256 of the RowBinary encoding of every other column,
 * `prev_hash` first, so ClickHouse re-derives it with
 * `SHA256(formatRow('RowBinary', …))` exactly as for access_log.
 */

/** Where a side event sits in its chain, and who vouched for it. */
export interface SidePlace {
  chain_id: string
  seq: number
  prev_hash: Buffer
  kafka_offset: bigint
  message_index: number
  message_events: number
  ingested_at: number
  schema_version: number
  key_id: string
  producer_id: string
  service: string
}

export type SideRow<E> = SidePlace & { readonly event: E }

export interface SideColumn<E> {
  readonly name: string
  readonly type: string
  readonly write: (w: RowBinaryWriter, row: SideRow<E>) => void
}

export interface SideTable<E> {
  readonly kind: SideKind
  readonly table: string
  /** Hashed columns, in table order (`hash` follows them). */
  readonly columns: readonly SideColumn<E>[]
  /** The SQL expression that re-derives a row's hash. */
  readonly hashSql: string
  readonly storedColumnNames: readonly string[]
  /** The producer's own sequence column (1, 2, 3… per producer_id): verify finds repeats and holes in it. */
  readonly producerSeqColumn: string
}

const codeOf = (symbols: readonly string[]) => {
  const codes = new Map(symbols.map((s, i) => [s, i + 1]))
  return (s: string): number => {
    const code = codes.get(s)
    if (code === undefined) throw new Error(`no Enum8 code for ${JSON.stringify(s)}`)
    return code
  }
}

function placeColumns<E>(): SideColumn<E>[] {
  return [
    { name: 'prev_hash', type: 'FixedString(32)', write: (w, r) => w.fixed(r.prev_hash, 32) },
    { name: 'chain_id', type: 'LowCardinality(String)', write: (w, r) => w.string(r.chain_id) },
    { name: 'seq', type: 'UInt64', write: (w, r) => w.uint64(r.seq) },
    { name: 'kafka_offset', type: 'UInt64', write: (w, r) => w.uint64(r.kafka_offset) },
    { name: 'message_index', type: 'UInt32', write: (w, r) => w.uint32(r.message_index) },
    { name: 'message_events', type: 'UInt32', write: (w, r) => w.uint32(r.message_events) },
    { name: 'ingested_at', type: "DateTime64(6, 'UTC')", write: (w, r) => w.int64(r.ingested_at) },
    { name: 'schema_version', type: 'UInt16', write: (w, r) => w.uint16(r.schema_version) },
    { name: 'key_id', type: 'LowCardinality(String)', write: (w, r) => w.string(r.key_id) },
    { name: 'producer_id', type: 'LowCardinality(String)', write: (w, r) => w.string(r.producer_id) },
    { name: 'service', type: 'LowCardinality(String)', write: (w, r) => w.string(r.service) },
  ]
}

function sideTable<E>(kind: SideKind, table: string, producerSeqColumn: string, eventColumns: SideColumn<E>[]): SideTable<E> {
  const columns = Object.freeze([...placeColumns<E>(), ...eventColumns])
  const names = columns.map((c) => c.name)
  return Object.freeze({
    kind,
    table,
    columns,
    hashSql: `SHA256(formatRow('RowBinary', ${names.join(', ')}))`,
    storedColumnNames: Object.freeze([...names, 'hash']),
    producerSeqColumn,
  })
}

const sourceKindCode = codeOf(DB_AUDIT_SOURCE_KINDS)

export const DB_AUDIT_TABLE: SideTable<DbAuditEvent> = sideTable<DbAuditEvent>('db-audit', 'db_audit_log', 'reader_seq', [
  { name: 'event_id', type: 'UUID', write: (w, r) => w.uuid(r.event.event_id) },
  { name: 'source_kind', type: enumType(DB_AUDIT_SOURCE_KINDS), write: (w, r) => w.uint8(sourceKindCode(r.event.source_kind)) },
  { name: 'logged_at', type: "DateTime64(6, 'UTC')", write: (w, r) => w.int64(r.event.logged_at) },
  { name: 'db_name', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.db_name) },
  { name: 'db_user', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.db_user) },
  { name: 'client_addr', type: 'String', write: (w, r) => w.string(r.event.client_addr) },
  { name: 'application_name', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.application_name) },
  { name: 'db_session', type: 'String', write: (w, r) => w.string(r.event.db_session) },
  { name: 'command', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.command) },
  { name: 'object_name', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.object_name) },
  { name: 'statement', type: 'String', write: (w, r) => w.string(r.event.statement) },
  { name: 'statement_truncated', type: 'Bool', write: (w, r) => w.uint8(r.event.statement_truncated ? 1 : 0) },
  { name: 'statement_digest', type: 'String', write: (w, r) => w.string(r.event.statement_digest) },
  { name: 'log_file', type: 'String', write: (w, r) => w.string(r.event.log_file) },
  { name: 'log_offset', type: 'UInt64', write: (w, r) => w.uint64(r.event.log_offset) },
  { name: 'reader_seq', type: 'UInt64', write: (w, r) => w.uint64(r.event.reader_seq) },
])

const principalCode = codeOf(PRINCIPAL_TYPES)
const actionCode = codeOf(ALERT_ACTIONS)

export const ALERT_TABLE: SideTable<AlertEvent> = sideTable<AlertEvent>('alert', 'alert_log', 'producer_seq', [
  { name: 'alert_id', type: 'UUID', write: (w, r) => w.uuid(r.event.alert_id) },
  { name: 'occurred_at', type: "DateTime64(6, 'UTC')", write: (w, r) => w.int64(r.event.occurred_at) },
  { name: 'environment', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.environment) },
  { name: 'principal_id', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.principal_id) },
  { name: 'principal_type', type: enumType(PRINCIPAL_TYPES), write: (w, r) => w.uint8(principalCode(r.event.principal_type)) },
  { name: 'db_name', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.db_name) },
  { name: 'table_name', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.table_name) },
  { name: 'budget', type: 'LowCardinality(String)', write: (w, r) => w.string(r.event.budget) },
  { name: 'window_seconds', type: 'UInt32', write: (w, r) => w.uint32(r.event.window_seconds) },
  // `limit` is an SQL keyword: the column is budget_limit.
  { name: 'budget_limit', type: 'UInt64', write: (w, r) => w.uint64(r.event.limit) },
  { name: 'observed', type: 'UInt64', write: (w, r) => w.uint64(r.event.observed) },
  { name: 'action', type: enumType(ALERT_ACTIONS), write: (w, r) => w.uint8(actionCode(r.event.action)) },
  { name: 'read_id', type: 'String', write: (w, r) => w.string(r.event.read_id) },
  { name: 'records_in_read', type: 'UInt64', write: (w, r) => w.uint64(r.event.records_in_read) },
  { name: 'detail', type: 'String', write: (w, r) => w.string(r.event.detail) },
  { name: 'producer_seq', type: 'UInt64', write: (w, r) => w.uint64(r.event.producer_seq) },
])

export const SIDE_TABLES = Object.freeze({ 'db-audit': DB_AUDIT_TABLE, alert: ALERT_TABLE }) satisfies Record<SideKind, SideTable<never>>

/** CREATE TABLE of a side table; `qualified` is its database-qualified name (Store.table). */
export function sideTableDdl<E>(qualified: string, spec: SideTable<E>): string {
  const columns = [...spec.columns.map((c) => `  ${c.name} ${c.type}`), '  hash FixedString(32)'].join(',\n')
  return `CREATE TABLE IF NOT EXISTS ${qualified} (\n${columns}\n)\nENGINE = MergeTree\nORDER BY (chain_id, seq)`
}
