import type { z } from 'zod'
import type { Store } from '../store/store.js'
import { viewRowsCheck, type AnswerCheck } from './answer-check.js'
import { bindWindow, closedWindow, fromBeforeTo, IN_WINDOW, ip, list, principalId, sessionHash } from './params.js'

/**
 * What an investigation knows was compromised: accounts, client addresses,
 * sessions, and the window. A read matches when it came from any of them
 * inside the window. Shared by breach-scope, breach-records and
 * breach-timeline so the three answer about the same reads.
 */
export const breachFilter = {
  principals: list(principalId).default([]),
  ips: list(ip).default([]),
  sessions: list(sessionHash).default([]),
  ...closedWindow,
}

export const breachFilterHelp = {
  principals: 'compromised principal ids, comma-separated',
  ips: 'client IP addresses (IPv4 or IPv6), comma-separated',
  sessions: 'session hashes (64 hex, as who-touched-record shows them), comma-separated',
  from: 'window start (ISO 8601, inclusive; required)',
  to: 'window end (exclusive; required)',
} as const

export interface BreachFilter {
  principals: string[]
  ips: string[]
  sessions: string[]
  from: Date
  to: Date
}

/** The refinements every breach query applies: a window that runs forward and at least one lead. */
export function checkBreachFilter(p: BreachFilter, ctx: z.RefinementCtx): void {
  fromBeforeTo(p, ctx)
  if (p.principals.length + p.ips.length + p.sessions.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['principals'], message: 'give at least one of principals, ips, sessions' })
  }
}

const LEADS = [
  { key: 'principals', sql: 'principal_id IN {principals:Array(String)}' },
  // IPv4 clients are stored IPv4-mapped: compare as IPv6. As a subquery, the
  // set exists before index analysis, so the bloom filter skips granules on a
  // cold cache too (an arrayMap expression scanned them all: 93 ms vs 6 ms).
  { key: 'ips', sql: 'client_ip IN (SELECT toIPv6(arrayJoin({ips:Array(String)})))' },
  { key: 'sessions', sql: 'session_hash IN (SELECT toFixedString(unhex(arrayJoin({sessions:Array(String)})), 32))' },
] as const

/**
 * The matching reads of `table` as a UNION ALL with one branch per kind of
 * lead given, each excluding what earlier branches matched, so no read is
 * counted twice. One OR across the three would stop ClickHouse from using
 * the primary key for principals and the skip indexes for IPs and sessions:
 * each branch alone uses its own. `columns` are selected in every branch.
 */
export function breachReadsSql(table: string, p: BreachFilter, columns: string): string {
  const given = LEADS.filter((l) => p[l.key].length > 0)
  return given
    .map((lead, i) => {
      const earlier = given.slice(0, i).map((e) => `NOT (${e.sql})`)
      return `SELECT ${columns} FROM ${table} WHERE ${[lead.sql, ...earlier, IN_WINDOW].join(' AND ')}`
    })
    .join('\n      UNION ALL\n      ')
}

export function bindBreachFilter(p: BreachFilter): Record<string, unknown> {
  return { principals: p.principals, ips: p.ips, sessions: p.sessions, ...bindWindow(p) }
}

/** Sources of a breach answer: the matching reads' chain ranges. */
export function breachSources(table: string, p: BreachFilter): string {
  return `SELECT chain_id, min(seq) AS first_seq, max(seq) AS last_seq, count() AS events
    FROM (${breachReadsSql(table, p, 'chain_id, seq')}) GROUP BY chain_id`
}

/** The matching reads of access_by_principal against access_log's, lead by lead as the answer selects them. */
export function breachChecks(store: Store, p: BreachFilter): AnswerCheck[] {
  return [viewRowsCheck(store, 'access_by_principal', (table, columns) => breachReadsSql(table, p, columns), 'the breach leads in the window')]
}
