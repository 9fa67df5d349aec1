import { z } from 'zod'
import { auditEntriesWithMatchSql } from './db-audit-match.js'
import { defineQuery } from './saved-query.js'
import { fromBeforeTo, limit, LIMIT_SQL } from './params.js'
import { bindUnauditedFilter, UNAUDITED_WHERE, unauditedFilter, unauditedFilterHelp, unauditedSources } from './unaudited-filter.js'

export interface UnauditedReadEntryRow {
  logged_at: string
  db_name: string
  db_user: string
  client_addr: string
  application_name: string
  db_session: string
  command: string
  object_name: string
  statement: string
  statement_digest: string
  source_kind: string
  log_file: string
  log_offset: number
  chain_id: string
  seq: number
}

const Params = z.object({ ...unauditedFilter, limit: limit(10_000) }).strict().superRefine(fromBeforeTo)

/** unaudited-reads one entry at a time, with where the server logged it and where it sits in its chain. */
export const unauditedReadEntries = defineQuery<typeof Params, UnauditedReadEntryRow>({
  name: 'unaudited-read-entries',
  description: 'Each read the database server logged on a sensitive table that no hooked read matches: statement, connection, log file and offset.',
  params: Params,
  paramHelp: { ...unauditedFilterHelp, limit: 'entries to return (default 10000, 0 = all)' },
  columns: ['logged_at', 'db_name', 'db_user', 'client_addr', 'application_name', 'db_session', 'command', 'object_name', 'statement', 'statement_digest', 'source_kind', 'log_file', 'log_offset', 'chain_id', 'seq'],
  sql: (store) => `
    SELECT logged_at, toString(db_name) AS db_name, toString(db_user) AS db_user, client_addr, toString(application_name) AS application_name,
           db_session, toString(command) AS command, toString(object_name) AS object_name, statement, statement_digest,
           toString(source_kind) AS source_kind, log_file, log_offset, toString(chain_id) AS chain_id, seq
    FROM (${auditEntriesWithMatchSql(store, UNAUDITED_WHERE, ['logged_at', 'db_name', 'db_user', 'client_addr', 'application_name', 'db_session', 'command', 'object_name', 'statement', 'statement_digest', 'source_kind', 'log_file', 'log_offset', 'chain_id', 'seq'])})
    WHERE matched = 0
    ORDER BY logged_at, chain_id, seq
    ${LIMIT_SQL}`,
  sourcesSql: (store) => unauditedSources(store),
  // Read from db_audit_log and access_log themselves: nothing derived to re-check.
  checks: () => [],
  bind: (p) => bindUnauditedFilter(p),
})
