import { z } from 'zod'
import { auditEntriesWithMatchSql } from './db-audit-match.js'
import { defineQuery } from './saved-query.js'
import { fromBeforeTo, limit, LIMIT_SQL } from './params.js'
import { bindUnauditedFilter, UNAUDITED_WHERE, unauditedFilter, unauditedFilterHelp, unauditedSources } from './unaudited-filter.js'

export interface UnauditedReadsRow {
  db_name: string
  db_user: string
  client_addr: string
  application_name: string
  tables: string[]
  statements: number
  sessions: number
  /** Up to ten of the connection ids, for the server's own logs. */
  session_ids: string[]
  first_logged_at: string
  last_logged_at: string
  /** Up to three distinct statements, each cut at SAMPLE_CHARS characters. */
  sample_statements: string[]
}

/** Characters of a sample statement: enough to recognise it, short enough for a table. */
const SAMPLE_CHARS = 200

const Params = z.object({ ...unauditedFilter, limit: limit(1000) }).strict().superRefine(fromBeforeTo)

/**
 * Reads of sensitive tables the database server logged and no hooked read
 * matches (db-audit-match.ts): a psql session, a report tool, a script with
 * the application's credentials. Grouped by who the server says ran them.
 */
export const unauditedReads = defineQuery<typeof Params, UnauditedReadsRow>({
  name: 'unaudited-reads',
  description: 'Reads the database server logged on sensitive tables that no hooked read matches, by database user, client address and application.',
  params: Params,
  paramHelp: { ...unauditedFilterHelp, limit: 'groups to return (default 1000, 0 = all)' },
  columns: ['db_name', 'db_user', 'client_addr', 'application_name', 'tables', 'statements', 'sessions', 'session_ids', 'first_logged_at', 'last_logged_at', 'sample_statements'],
  sql: (store) => `
    SELECT toString(db_name) AS db_name, toString(db_user) AS db_user, client_addr, toString(application_name) AS application_name,
           arraySort(groupUniqArray(toString(object_name))) AS tables,
           count() AS statements,
           uniqExact(db_session) AS sessions,
           arraySlice(arraySort(groupUniqArray(db_session)), 1, 10) AS session_ids,
           min(logged_at) AS first_logged_at, max(logged_at) AS last_logged_at,
           -- A bounded sample: groupUniqArray over every distinct statement
           -- text (literals make most of them distinct) would hold them all.
           arraySlice(arraySort(groupUniqArray(50)(if(lengthUTF8(statement) > ${SAMPLE_CHARS}, concat(substringUTF8(statement, 1, ${SAMPLE_CHARS}), '…'), statement))), 1, 3) AS sample_statements
    FROM (${auditEntriesWithMatchSql(store, UNAUDITED_WHERE, ['logged_at', 'db_name', 'db_user', 'client_addr', 'application_name', 'object_name', 'db_session', 'statement'])})
    WHERE matched = 0
    GROUP BY db_name, db_user, client_addr, application_name
    ORDER BY statements DESC, db_name, db_user, client_addr, application_name
    ${LIMIT_SQL}`,
  sourcesSql: (store) => unauditedSources(store),
  // Read from db_audit_log and access_log themselves: nothing derived to re-check.
  checks: () => [],
  bind: (p) => bindUnauditedFilter(p),
})
