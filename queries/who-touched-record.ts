import { z } from 'zod'
import { defineQuery } from './saved-query.js'
import { recordId, tableName, toChDateTime, window } from './params.js'

export interface WhoTouchedRow {
  occurred_at: string
  principal_id: string
  principal_type: string
  on_behalf_of: string | null
  database: string
  columns: string[]
  client_ip: string | null
  service: string
  action: string
  outcome: string
  event_id: string
  chain_id: string
  seq: number
}

const Params = z.object({ table: tableName, record: recordId, database: z.string().min(1).optional(), ...window }).strict()

/** A primary-key lookup in record_access, ordered by (table_name, record_id, occurred_at). */
export const whoTouchedRecord = defineQuery<typeof Params, WhoTouchedRow>({
  name: 'who-touched-record',
  description: 'Every read of one record: who, when, which columns, from which IP and service, with the chain position as evidence.',
  params: Params,
  columns: ['occurred_at', 'principal_id', 'principal_type', 'on_behalf_of', 'database', 'columns', 'client_ip', 'service', 'action', 'outcome', 'event_id', 'chain_id', 'seq'],
  sql: (store) => `
    SELECT occurred_at, principal_id, principal_type, on_behalf_of, db_name AS database, columns,
           -- IPv4 clients are stored IPv4-mapped; show them as people write them.
           if(startsWith(toString(client_ip), '::ffff:') AND position(toString(client_ip), '.') > 0,
              substring(toString(client_ip), 8), toString(client_ip)) AS client_ip,
           service, action, outcome, toString(event_id) AS event_id, chain_id, seq
    FROM ${store.table('record_access')}
    WHERE table_name = {table:String} AND record_id = {record:String}
      AND ({database:String} = '' OR db_name = {database:String})
      AND occurred_at >= {from:DateTime64(6, 'UTC')} AND occurred_at < {to:DateTime64(6, 'UTC')}
    ORDER BY occurred_at, chain_id, seq`,
  bind: (p) => ({
    table: p.table,
    record: p.record,
    database: p.database ?? '',
    from: toChDateTime(p.from, 'min'),
    to: toChDateTime(p.to, 'max'),
  }),
})
