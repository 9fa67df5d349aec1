import { z } from 'zod'
import { mayHoldRecordKeys } from '../store/ddl.js'
import { RECORD_LOOKUP_SETTINGS } from './query-settings.js'
import { defineQuery } from './saved-query.js'
import { bindWindow, CLIENT_IP_SQL, eventSources, databaseName, fromBeforeTo, IN_WINDOW, recordId, tableName, window } from './params.js'
import { TABLE_FILTER } from './table-names.js'

export interface WhoTouchedRow {
  occurred_at: string
  principal_id: string
  principal_type: string
  on_behalf_of: string | null
  database: string
  columns: string[]
  client_ip: string | null
  session_hash: string | null
  service: string
  action: string
  purpose: string | null
  outcome: string
  event_id: string
  chain_id: string
  seq: number
}

const Params = z.object({ table: tableName, record: recordId, database: databaseName.optional(), ...window }).strict().superRefine(fromBeforeTo)

/**
 * The access_log rows holding the record: the record_keys_bf index skips
 * every granule without `table/record` for the tables the name resolved
 * to (bound as record_keys), the exact condition follows.
 */
const WHERE = `${mayHoldRecordKeys('{record_keys:Array(String)}')}
      AND ${TABLE_FILTER} AND has(record_ids, {record:String}) AND ${IN_WINDOW}`

export const whoTouchedRecord = defineQuery<typeof Params, WhoTouchedRow>({
  name: 'who-touched-record',
  description: 'Every read of one record: who, when, which columns, from which IP, session and service, with the chain position as evidence.',
  params: Params,
  paramHelp: {
    table: 'table name as written anywhere: applicants, public.applicants, db.public.applicants',
    record: 'record id (primary key; composite keys as recorded, e.g. ["42","7"])',
    database: 'only this database',
    from: 'window start (ISO 8601, inclusive)',
    to: 'window end (exclusive)',
  },
  tables: {
    table: 'table',
    database: 'database',
    // The index holds `table_name/record` as recorded: one key per table the name matched.
    bind: (resolved, p) => ({ record_keys: [...new Set(resolved.table_names)].map((t) => `${t}/${String(p['record'])}`) }),
  },
  columns: ['occurred_at', 'principal_id', 'principal_type', 'on_behalf_of', 'database', 'columns', 'client_ip', 'session_hash', 'service', 'action', 'purpose', 'outcome', 'event_id', 'chain_id', 'seq'],
  sql: (store) => `
    SELECT occurred_at, principal_id, principal_type, on_behalf_of, db_name AS database, columns,
           ${CLIENT_IP_SQL} AS client_ip, lower(hex(session_hash)) AS session_hash,
           service, action, purpose, outcome, toString(event_id) AS event_id, chain_id, seq
    FROM ${store.table('access_log')}
    WHERE ${WHERE}
    ORDER BY occurred_at, chain_id, seq`,
  sourcesSql: (store) => eventSources(store.table('access_log'), WHERE),
  checks: () => [],
  settings: RECORD_LOOKUP_SETTINGS,
  bind: (p) => ({ record: p.record, ...bindWindow(p) }),
})
