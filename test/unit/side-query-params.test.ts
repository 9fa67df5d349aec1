import { describe, expect, it } from 'vitest'
import { alerts } from '../../queries/alerts.js'
import { QueryError } from '../../queries/errors.js'
import { parseQueryParams, type AnySavedQuery } from '../../queries/saved-query.js'
import { unauditedReadEntries } from '../../queries/unaudited-read-entries.js'
import { unauditedReads } from '../../queries/unaudited-reads.js'
import { thrownBy } from '../helpers/thrown.js'

const W = { from: '2026-11-27', to: '2026-11-28' }

/** The parameters a refused call names, sorted. */
function refused(query: AnySavedQuery, params: Record<string, unknown>): string[] {
  const err = thrownBy(QueryError, () => parseQueryParams(query, params))
  expect(err.code).toBe('QUERY_PARAM_INVALID')
  return (err.details?.['issues'] as { param: string }[]).map((i) => i.param).sort()
}

describe('unaudited-reads and unaudited-read-entries parameters', () => {
  for (const query of [unauditedReads, unauditedReadEntries] as unknown as AnySavedQuery[]) {
    it(`${query.name}: a window is required and runs forward`, () => {
      expect(refused(query, {})).toEqual(['from', 'to'])
      expect(refused(query, { from: W.to, to: W.from })).toEqual(['to'])
      expect(refused(query, { from: W.from, to: W.from })).toEqual(['to'])
    })

    it(`${query.name}: the match window defaults to 300 s and 5 s, as text from the command line too`, () => {
      expect(parseQueryParams(query, W)).toMatchObject({ max_query_seconds: 300, skew_seconds: 5 })
      expect(parseQueryParams(query, { ...W, max_query_seconds: '600', skew_seconds: '0' })).toMatchObject({ max_query_seconds: 600, skew_seconds: 0 })
      expect(refused(query, { ...W, max_query_seconds: 86_401, skew_seconds: '5s' })).toEqual(['max_query_seconds', 'skew_seconds'])
      expect(refused(query, { ...W, max_query_seconds: -1, skew_seconds: 1.5 })).toEqual(['max_query_seconds', 'skew_seconds'])
    })

    it(`${query.name}: database and user are names, never empty; nothing else is accepted`, () => {
      expect(parseQueryParams(query, { ...W, database: 'registry', user: 'app' })).toMatchObject({ database: 'registry', user: 'app' })
      expect(refused(query, { ...W, database: '', user: 'x'.repeat(257) })).toEqual(['database', 'user'])
      expect(refused(query, { ...W, db_session: '4242', sql: 'SELECT 1' })).toEqual(['db_session', 'sql'])
    })
  }

  it('limits default to 1000 groups and 10000 entries, 0 meaning all', () => {
    expect(parseQueryParams(unauditedReads as unknown as AnySavedQuery, W)).toMatchObject({ limit: 1000 })
    expect(parseQueryParams(unauditedReadEntries as unknown as AnySavedQuery, W)).toMatchObject({ limit: 10_000 })
    expect(parseQueryParams(unauditedReadEntries as unknown as AnySavedQuery, { ...W, limit: '0' })).toMatchObject({ limit: 0 })
  })
})

describe('alerts parameters', () => {
  const q = alerts as unknown as AnySavedQuery

  it('needs nothing: every alert, at most 1000', () => {
    expect(parseQueryParams(q, {})).toEqual({ action: [], limit: 1000 })
  })

  it('takes actions as a list of the guard\'s actions, comma-separated from the command line', () => {
    expect(parseQueryParams(q, { action: 'refuse,unchecked' })).toMatchObject({ action: ['refuse', 'unchecked'] })
    expect(parseQueryParams(q, { action: ['throttle'] })).toMatchObject({ action: ['throttle'] })
    expect(refused(q, { action: 'alert,ignore' })).toEqual(['action.1'])
    expect(refused(q, { action: 'alert,alert,alert,alert,alert' })).toEqual(['action'])
  })

  it('refuses an empty principal, a table name with spaces and a backward window', () => {
    expect(refused(q, { principal: '', table: 'a b' })).toEqual(['principal', 'table'])
    expect(refused(q, { from: W.to, to: W.from })).toEqual(['to'])
    expect(parseQueryParams(q, { principal: "x' OR 1=1 --", table: 'registry.public.applicants', ...W })).toMatchObject({ principal: "x' OR 1=1 --", table: 'registry.public.applicants' })
  })
})
