import { z } from 'zod'
import { QueryError } from './errors.js'
import { rowsWhere, viewRowsCheck } from './answer-check.js'
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
 * The subject's records across every table with a subject key, as three
 * primary-key friendly branches of record_access (ordered by table_name,
 * record_id): tables keyed by the subject id itself (an exact lookup),
 * tables whose composite key starts with it (a prefix range of the JSON
 * array text), and tables where it is a later key part (those tables are
 * scanned; put the subject first in composite keys where you can).
 */
const WHERE = `(
        (table_name IN {id_tables:Array(String)} AND record_id = {subject:String} AND has({id_qualified:Array(String)}, ${QUALIFIED}))
     OR (table_name IN {first_tables:Array(String)} AND startsWith(record_id, {first_prefix:String})
         AND has({first_qualified:Array(String)}, ${QUALIFIED}) AND JSONExtractString(record_id, 1) = {subject:String})
     OR (table_name IN {later_tables:Array(String)} AND has({later_qualified:Array(String)}, ${QUALIFIED})
         AND JSONExtractString(record_id, toInt64({later_parts:Array(UInt8)}[indexOf({later_qualified:Array(String)}, ${QUALIFIED})])) = {subject:String})
      ) AND ${IN_WINDOW}`

function bindSubject(subject: string, context: QueryContext): Record<string, unknown> {
  const keys = [...context.subjectKeys]
  if (keys.length === 0) {
    throw new QueryError('QUERY_SUBJECTS_UNCONFIGURED', 'subject-access-report needs READTRAIL_SUBJECT_KEYS: which part of which table\'s record id names the data subject, e.g. practice.patients=id,practice.treatments=key1')
  }
  const kind = (part: number) => keys.filter(([, p]) => (part === 0 ? p === 0 : part === 1 ? p === 1 : p > 1))
  const bare = (entries: [string, number][]) => entries.map(([q]) => q.slice(q.indexOf('.') + 1))
  return {
    subject,
    id_tables: bare(kind(0)),
    id_qualified: kind(0).map(([q]) => q),
    first_tables: bare(kind(1)),
    first_qualified: kind(1).map(([q]) => q),
    // Composite keys are recorded as JSON arrays of strings: ["42","7"].
    first_prefix: `${JSON.stringify([subject]).slice(0, -1)},`,
    later_tables: bare(kind(2)),
    later_qualified: kind(2).map(([q]) => q),
    later_parts: kind(2).map(([, p]) => p),
  }
}

/**
 * The access_log rows whose expansion can match WHERE: only tables with a
 * subject key, and for id and first-part tables only rows holding a
 * matching id, so the check expands few record ids.
 */
const LOG_FILTER = `${IN_WINDOW} AND (
        (table_name IN {id_tables:Array(String)} AND has(record_ids, {subject:String}))
     OR (table_name IN {first_tables:Array(String)} AND arrayExists(r -> startsWith(r, {first_prefix:String}), record_ids))
     OR table_name IN {later_tables:Array(String)})`

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
    FROM ${store.table('record_access')}
    WHERE ${WHERE}
    ORDER BY occurred_at, chain_id, seq
    ${LIMIT_SQL}`,
  sourcesSql: (store) => `SELECT chain_id, min(seq) AS first_seq, max(seq) AS last_seq, uniqExact(seq) AS events FROM ${store.table('record_access')} WHERE ${WHERE} GROUP BY chain_id`,
  checks: (store, p) => [viewRowsCheck(store, 'record_access', rowsWhere(WHERE), `subject ${JSON.stringify(p.subject)} in the window`, LOG_FILTER)],
  bind: (p, context) => ({ ...bindSubject(p.subject, context), ...bindWindow(p) }),
})
