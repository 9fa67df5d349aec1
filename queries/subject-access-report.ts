import { z } from 'zod'
import { QueryError } from './errors.js'
import type { Store } from '../store/store.js'
import { mayHoldRecordKeys, mayHoldRecordParts } from '../store/ddl.js'
import { RECORD_LOOKUP_SETTINGS } from './query-settings.js'
import { defineQuery, type QueryContext } from './saved-query.js'
import { bindWindow, CLIENT_IP_SQL, fromBeforeTo, IN_WINDOW, limit, LIMIT_SQL, recordId, window } from './params.js'

export interface SubjectAccessRow {
  occurred_at: string
  principal_id: string
  principal_type: string
  on_behalf_of: string | null
  database: string
  table: string
  record_id: string
  columns: string[]
  purpose: string | null
  client_ip: string | null
  service: string
  action: string
  outcome: string
  chain_id: string
  seq: number
}

const Params = z.object({ subject: recordId, ...window, limit: limit(10_000) }).strict().superRefine(fromBeforeTo)

const QUALIFIED = `concat(db_name, '.', table_name)`

/**
 * The subject's records, as two branches over access_log, each narrowed by
 * one of its record key indexes (store/ddl.ts) before any record id is
 * expanded: tables keyed by the subject id itself (`table/id` tokens in
 * record_keys_bf), and tables where it is one part of a composite key,
 * recorded as a JSON array of strings (`table/#part/id` tokens in
 * record_parts_bf). An OR of the two would let neither index skip a
 * granule. Each branch then keeps exactly the record ids that name the
 * subject, so the indexes only ever narrow. A table is in one branch only:
 * its subject key is either the id or one part.
 */
const ID_BRANCH = `${mayHoldRecordKeys('{id_keys:Array(String)}')} AND table_name IN {id_tables:Array(String)}`
const ID_MATCH = `record_id = {subject:String} AND has({id_qualified:Array(String)}, ${QUALIFIED})`
const PART_BRANCH = `${mayHoldRecordParts('{part_keys:Array(String)}')} AND table_name IN {part_tables:Array(String)}`
const PART_MATCH = `has({part_qualified:Array(String)}, ${QUALIFIED}) AND startsWith(record_id, '[')
        AND JSONExtractString(record_id, toInt64({part_positions:Array(UInt8)}[indexOf({part_qualified:Array(String)}, ${QUALIFIED})])) = {subject:String}`

/**
 * `columns` of each (read, record id) pair of the subject in the window,
 * from both branches. The reads are narrowed first, and only their ids
 * expanded: the index condition holds row by row, so few are. (ClickHouse
 * reads only the columns the outer SELECT uses.)
 */
function subjectRecords(store: Store, columns: string): string {
  const branch = (narrow: string, match: string) => `
      SELECT ${columns} FROM (SELECT * FROM ${store.table('access_log')} WHERE ${narrow} AND ${IN_WINDOW})
      ARRAY JOIN record_ids AS record_id WHERE ${match}`
  return `${branch(ID_BRANCH, ID_MATCH)}
      UNION ALL${branch(PART_BRANCH, PART_MATCH)}`
}

function bindSubject(subject: string, context: QueryContext): Record<string, unknown> {
  const keys = [...context.subjectKeys]
  if (keys.length === 0) {
    throw new QueryError('QUERY_SUBJECTS_UNCONFIGURED', 'subject-access-report needs READTRAIL_SUBJECT_KEYS: which part of which table\'s record id names the data subject, e.g. practice.patients=id,practice.treatments=key1')
  }
  const bare = (qualified: string) => qualified.slice(qualified.indexOf('.') + 1)
  const ids = keys.filter(([, part]) => part === 0)
  const parts = keys.filter(([, part]) => part > 0)
  return {
    subject,
    id_tables: ids.map(([q]) => bare(q)),
    id_qualified: ids.map(([q]) => q),
    id_keys: ids.map(([q]) => `${bare(q)}/${subject}`),
    part_tables: parts.map(([q]) => bare(q)),
    part_qualified: parts.map(([q]) => q),
    part_positions: parts.map(([, part]) => part),
    part_keys: parts.map(([q, part]) => `${bare(q)}/#${part}/${subject}`),
  }
}

export const subjectAccessReport = defineQuery<typeof Params, SubjectAccessRow>({
  name: 'subject-access-report',
  description: "Every read of one data subject's records across all tables with a subject key: what an individual may ask for (GDPR art. 15).",
  params: Params,
  paramHelp: {
    subject: 'data subject id (e.g. a patient or applicant id; tables come from READTRAIL_SUBJECT_KEYS)',
    from: 'window start (ISO 8601, inclusive)',
    to: 'window end (exclusive)',
    limit: 'rows to return (default 10000, 0 = all)',
  },
  columns: ['occurred_at', 'principal_id', 'principal_type', 'on_behalf_of', 'database', 'table', 'record_id', 'columns', 'purpose', 'client_ip', 'service', 'action', 'outcome', 'chain_id', 'seq'],
  sql: (store) => `
    SELECT occurred_at, principal_id, principal_type, on_behalf_of, db_name AS database, table_name AS table, record_id, columns, purpose,
           ${CLIENT_IP_SQL} AS client_ip, service, action, outcome, chain_id, seq
    FROM (${subjectRecords(store, 'occurred_at, principal_id, principal_type, on_behalf_of, db_name, table_name, record_id, columns, purpose, client_ip, service, action, outcome, chain_id, seq')})
    ORDER BY occurred_at, chain_id, seq, record_id
    ${LIMIT_SQL}`,
  sourcesSql: (store) => `SELECT chain_id, min(seq) AS first_seq, max(seq) AS last_seq, uniqExact(seq) AS events
    FROM (${subjectRecords(store, 'chain_id, seq')}) GROUP BY chain_id`,
  // Answered from access_log itself: nothing derived to re-check.
  checks: () => [],
  settings: RECORD_LOOKUP_SETTINGS,
  bind: (p, context) => ({ ...bindSubject(p.subject, context), ...bindWindow(p) }),
})
