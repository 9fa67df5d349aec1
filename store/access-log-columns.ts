import { ACTIONS, OUTCOMES, PRINCIPAL_TYPES, type AccessEvent } from '../schemas/access-event.js'
import { ipToIPv6Bytes } from './ip.js'
import type { RowBinaryWriter } from './row-binary.js'

/** One row of access_log: an event plus where it sits in its chain. */
export interface ChainedRow extends AccessEvent {
  /** `<topic>/<partition>`: every Kafka partition is one chain. */
  chain_id: string
  /** Contiguous from 1 within the chain. */
  seq: number
  prev_hash: Buffer
  kafka_offset: bigint
  /** The event's place among its Kafka message's events, from 0 (a wire-2 batch holds many; wire 1 one). */
  message_index: number
  /** Events in that message: the writer stores or refuses a message whole, so a row missing inside one shows. */
  message_events: number
  /** Microseconds since the epoch when the chain writer stored the row. */
  ingested_at: number
  schema_version: number
  /** The producer key that signed the event's batch (its id in the trusted-producers file); '' when unsigned. */
  key_id: string
}

interface ColumnSpec {
  readonly name: keyof ChainedRow
  readonly type: string
  /** Appends the column's RowBinary bytes: what the hash covers. */
  readonly write: (w: RowBinaryWriter, row: ChainedRow) => void
}

/** The ClickHouse Enum8 of Avro enum symbols, coded 1, 2, 3… in symbol order. */
export const enumType = (symbols: readonly string[]) => `Enum8(${symbols.map((s, i) => `'${s}' = ${i + 1}`).join(', ')})`
/** Enum8 codes: 1-based positions of the Avro enum symbols. */
const enumCodes = (symbols: readonly string[]): Readonly<Record<string, number>> => Object.freeze(Object.fromEntries(symbols.map((s, i) => [s, i + 1])))
const PRINCIPAL_CODE = enumCodes(PRINCIPAL_TYPES)
const ACTION_CODE = enumCodes(ACTIONS)
const OUTCOME_CODE = enumCodes(OUTCOMES)

// Writers below read each field by name directly and allocate nothing: this
// runs once per stored row, on the chain writer's hot path.
// Reads come from few client addresses: parse each once.
const ipCache = new Map<string, Buffer>()
const ipv6Of = (ip: string): Buffer => {
  let bytes = ipCache.get(ip)
  if (!bytes) {
    if (ipCache.size >= 4096) ipCache.clear()
    bytes = ipToIPv6Bytes(ip)
    ipCache.set(ip, bytes)
  }
  return bytes
}

/**
 * The columns of access_log, in table order. This list is the single source of
 * the DDL, the RowBinary encoder and the SQL that re-hashes rows. Every column
 * but `hash` is covered by the hash, `prev_hash` first: a verifier that compared
 * only the chain links would miss an edited principal.
 */
export const ACCESS_LOG_COLUMNS: readonly ColumnSpec[] = Object.freeze([
  { name: 'prev_hash', type: 'FixedString(32)', write: (w, r) => w.fixed(r.prev_hash, 32) },
  { name: 'chain_id', type: 'LowCardinality(String)', write: (w, r) => w.string(r.chain_id) },
  { name: 'seq', type: 'UInt64', write: (w, r) => w.uint64(r.seq) },
  { name: 'kafka_offset', type: 'UInt64', write: (w, r) => w.uint64(r.kafka_offset) },
  { name: 'message_index', type: 'UInt32', write: (w, r) => w.uint32(r.message_index) },
  { name: 'message_events', type: 'UInt32', write: (w, r) => w.uint32(r.message_events) },
  { name: 'ingested_at', type: "DateTime64(6, 'UTC')", write: (w, r) => w.int64(r.ingested_at) },
  { name: 'schema_version', type: 'UInt16', write: (w, r) => w.uint16(r.schema_version) },
  { name: 'key_id', type: 'LowCardinality(String)', write: (w, r) => w.string(r.key_id) },
  { name: 'event_id', type: 'UUID', write: (w, r) => w.uuid(r.event_id) },
  { name: 'read_id', type: 'UUID', write: (w, r) => w.uuid(r.read_id) },
  { name: 'part_index', type: 'UInt32', write: (w, r) => w.uint32(r.part_index) },
  { name: 'part_count', type: 'UInt32', write: (w, r) => w.uint32(r.part_count) },
  { name: 'occurred_at', type: "DateTime64(6, 'UTC')", write: (w, r) => w.int64(r.occurred_at) },
  { name: 'principal_id', type: 'LowCardinality(String)', write: (w, r) => w.string(r.principal_id) },
  { name: 'principal_type', type: enumType(PRINCIPAL_TYPES), write: (w, r) => w.uint8(PRINCIPAL_CODE[r.principal_type]!) },
  { name: 'on_behalf_of', type: 'Nullable(String)', write: (w, r) => w.nullableString(r.on_behalf_of) },
  { name: 'session_hash', type: 'Nullable(FixedString(32))', write: (w, r) => w.nullableFixed(r.session_hash, 32) },
  { name: 'client_ip', type: 'Nullable(IPv6)', write: (w, r) => w.nullableFixed(r.client_ip === null ? null : ipv6Of(r.client_ip), 16) },
  { name: 'service', type: 'LowCardinality(String)', write: (w, r) => w.string(r.service) },
  { name: 'environment', type: 'LowCardinality(String)', write: (w, r) => w.string(r.environment) },
  { name: 'action', type: enumType(ACTIONS), write: (w, r) => w.uint8(ACTION_CODE[r.action]!) },
  { name: 'db_name', type: 'LowCardinality(String)', write: (w, r) => w.string(r.db_name) },
  { name: 'table_name', type: 'LowCardinality(String)', write: (w, r) => w.string(r.table_name) },
  { name: 'columns', type: 'Array(LowCardinality(String))', write: (w, r) => w.stringArray(r.columns) },
  { name: 'record_ids', type: 'Array(String)', write: (w, r) => w.stringArray(r.record_ids) },
  { name: 'record_ids_complete', type: 'Bool', write: (w, r) => w.uint8(r.record_ids_complete ? 1 : 0) },
  { name: 'row_count', type: 'UInt64', write: (w, r) => w.uint64(r.row_count) },
  { name: 'query_fingerprint', type: 'String', write: (w, r) => w.string(r.query_fingerprint) },
  // Hashed like every event field: the key unaudited-reads matches the
  // server's audit log on must not be editable without breaking the chain.
  { name: 'db_session', type: 'String', write: (w, r) => w.string(r.db_session) },
  { name: 'statement_digest', type: 'String', write: (w, r) => w.string(r.statement_digest) },
  { name: 'purpose', type: 'Nullable(String)', write: (w, r) => w.nullableString(r.purpose) },
  { name: 'trace_id', type: 'Nullable(String)', write: (w, r) => w.nullableString(r.trace_id) },
  { name: 'outcome', type: enumType(OUTCOMES), write: (w, r) => w.uint8(OUTCOME_CODE[r.outcome]!) },
  { name: 'producer_id', type: 'LowCardinality(String)', write: (w, r) => w.string(r.producer_id) },
  { name: 'producer_seq', type: 'UInt64', write: (w, r) => w.uint64(r.producer_seq) },
] satisfies ColumnSpec[])

/** The last column: SHA-256 of the RowBinary encoding of every column above. */
export const HASH_COLUMN = Object.freeze({ name: 'hash', type: 'FixedString(32)' })

export const HASHED_COLUMN_NAMES: readonly string[] = Object.freeze(ACCESS_LOG_COLUMNS.map((c) => c.name))

/**
 * Every column of access_log in table order, `hash` last: the column list of
 * the chain writer's RowBinary insert. A row's canonical encoding followed by
 * its 32 hash bytes is exactly that insert's row, so the bytes hashed are the
 * bytes stored, with no conversion in between.
 */
export const STORED_COLUMN_NAMES: readonly string[] = Object.freeze([...HASHED_COLUMN_NAMES, HASH_COLUMN.name])

/**
 * The SQL expression ClickHouse uses to recompute a row's hash. formatRow,
 * not formatRowNoNewline: the latter drops a trailing 0x0A byte, which a
 * binary row ends with whenever its last value does (1 in 256 hashes).
 */
export const HASH_SQL = `SHA256(formatRow('RowBinary', ${HASHED_COLUMN_NAMES.join(', ')}))`

/** Appends the canonical (hashed) encoding of a row. */
export function writeCanonical(w: RowBinaryWriter, row: ChainedRow): void {
  for (const column of ACCESS_LOG_COLUMNS) column.write(w, row)
}
