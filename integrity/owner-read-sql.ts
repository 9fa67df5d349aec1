import { ACCESS_LOG_COLUMNS, HASH_COLUMN } from '../store/access-log-columns.js'

/**
 * The statements `verify --independent` sends to read rows, each built from
 * the quoted access_log table alone. They live here once because two sides
 * must agree on them to the token: the integrity code that sends them, and
 * the store owner's whitelist (cli/owner-reads.ts), which serves a read only
 * when its text is one of these. A copy on either side drifted and failed at
 * run time as "not a read the owner serves".
 *
 * Values are never part of the text: every one is a bound parameter, so the
 * whitelist can compare texts and validate the parameters on their own.
 */

/** Every stored column and the hash, in the order the RowBinary walker decodes them. */
const SELECT_COLUMNS = [...ACCESS_LOG_COLUMNS.map((c) => c.name), HASH_COLUMN.name].join(', ')

/** Each chain and its highest seq: how the scan splits the work, not a fact it trusts. */
export function chainListSql(log: string): string {
  return `SELECT chain_id, max(seq) AS max_seq FROM ${log} GROUP BY chain_id ORDER BY chain_id`
}

/** A chain's whole rows from seq {lo} on, as RowBinary for re-hashing. */
export function segmentOpenSql(log: string): string {
  return `SELECT ${SELECT_COLUMNS} FROM ${log}
WHERE chain_id = {c:String} AND seq >= {lo:UInt64}
ORDER BY seq, hash
FORMAT RowBinary`
}

/** A chain's whole rows with {lo} <= seq <= {hi}, as RowBinary for re-hashing. */
export function segmentBoundedSql(log: string): string {
  return `SELECT ${SELECT_COLUMNS} FROM ${log}
WHERE chain_id = {c:String} AND seq >= {lo:UInt64} AND seq <= {hi:UInt64}
ORDER BY seq, hash
FORMAT RowBinary`
}

/** A chain's rows' (seq, kafka_offset, message_index, message_events) from seq {lo} on, as RowBinary. */
export function offsetsOpenSql(log: string): string {
  return `SELECT seq, kafka_offset, message_index, message_events FROM ${log}
WHERE chain_id = {c:String} AND seq >= {lo:UInt64}
ORDER BY seq, kafka_offset, message_index, message_events
FORMAT RowBinary`
}

/** A chain's rows' (seq, kafka_offset, message_index, message_events) with {lo} <= seq <= {hi}, as RowBinary. */
export function offsetsBoundedSql(log: string): string {
  return `SELECT seq, kafka_offset, message_index, message_events FROM ${log}
WHERE chain_id = {c:String} AND seq >= {lo:UInt64} AND seq <= {hi:UInt64}
ORDER BY seq, kafka_offset, message_index, message_events
FORMAT RowBinary`
}

/**
 * Where a chain stores any of {ids}. The alias must not be `event_id`: WHERE
 * would compare the String alias, not the UUID column.
 */
export function findEventsSql(log: string): string {
  return `SELECT toString(event_id) AS id, seq FROM ${log} WHERE chain_id = {chain_id:String} AND event_id IN {ids:Array(UUID)} ORDER BY seq`
}

/** Every stored event's producer numbering, as RowBinary, in (producer_id, producer_seq) order. */
export function producerScanSql(log: string): string {
  return `SELECT producer_id, producer_seq, chain_id, seq, toUnixTimestamp64Micro(ingested_at)
FROM ${log}
ORDER BY producer_id, producer_seq
FORMAT RowBinary`
}

/** The events of producers {ids} numbered beyond {lowest}, in (producer_id, producer_seq) order. */
export function producersSinceSql(log: string): string {
  return `SELECT producer_id, producer_seq, chain_id, seq, toUnixTimestamp64Micro(ingested_at) AS ingested_at_us FROM ${log}
WHERE producer_id IN {ids:Array(String)} AND producer_seq > {lowest:UInt64} ORDER BY producer_id, producer_seq`
}
