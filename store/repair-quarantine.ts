import { ACCESS_LOG_COLUMNS, HASH_COLUMN } from './access-log-columns.js'
import { quoteIdent } from './ddl.js'
import { mutate } from './repair-derived.js'
import type { Store } from './store.js'

/** The table `readtrail repair --quarantine-unsigned` keeps removed rows in. */
export const QUARANTINE_TABLE = 'quarantined_rows'

const STORED_COLUMNS = [...ACCESS_LOG_COLUMNS, HASH_COLUMN].map((c) => c.name)

/**
 * Evidence is kept, never dropped: rows taken out of a chain are copied here
 * first, every stored column as it was plus why and when. Not a query view
 * (nothing feeds it from access_log), so verify's definition check leaves it
 * alone; it is created on first use, not with the schema.
 */
export async function ensureQuarantineTable(store: Store): Promise<void> {
  const columns = [...ACCESS_LOG_COLUMNS, HASH_COLUMN].map((c) => `  ${c.name} ${c.type}`).join(',\n')
  await store.client.command({
    query: `CREATE TABLE IF NOT EXISTS ${store.table(QUARANTINE_TABLE)} (
${columns},
  reason String,
  quarantined_at DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (chain_id, quarantined_at, seq)`,
  })
}

/** A stored row as it is quarantined (what the operator is shown; no personal data). */
export interface QuarantinedRow {
  seq: number
  kafka_offset: string
  event_id: string
  reason: string
}

/**
 * Copies every row of the chain from `fromSeq` on into the quarantine table
 * (the first with `reason`, the rest as following it), then deletes them
 * from access_log. Returns what was copied.
 */
export async function quarantineChainTail(store: Store, chainId: string, fromSeq: number, reason: string, quarantinedAtMicros: number): Promise<QuarantinedRow[]> {
  await ensureQuarantineTable(store)
  const columns = STORED_COLUMNS.map(quoteIdent).join(', ')
  const follows = `stored after seq ${fromSeq}, which Kafka does not vouch for: it links onto rows that must be re-derived`
  const params = { chain_id: chainId, from_seq: fromSeq, reason, follows, at: quarantinedAtMicros }
  await store.client.command({
    query: `INSERT INTO ${store.table(QUARANTINE_TABLE)} (${columns}, reason, quarantined_at)
            SELECT ${columns}, if(seq = {from_seq:UInt64}, {reason:String}, {follows:String}), fromUnixTimestamp64Micro({at:Int64}, 'UTC')
            FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq >= {from_seq:UInt64}`,
    query_params: params,
  })
  const copied = await store.queryRows<QuarantinedRow>(
    `SELECT seq, toString(kafka_offset) AS kafka_offset, toString(event_id) AS event_id, reason FROM ${store.table(QUARANTINE_TABLE)}
     WHERE chain_id = {chain_id:String} AND quarantined_at = fromUnixTimestamp64Micro({at:Int64}, 'UTC') ORDER BY seq, kafka_offset`,
    { chain_id: chainId, at: quarantinedAtMicros },
  )
  await mutate(store, `ALTER TABLE ${store.table('access_log')} DELETE WHERE chain_id = {chain_id:String} AND seq >= {from_seq:UInt64}`, { chain_id: chainId, from_seq: fromSeq })
  return copied
}
