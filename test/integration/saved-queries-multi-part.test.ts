import { beforeAll, describe, expect, it } from 'vitest'
import { breachScope } from '../../queries/breach-scope.js'
import { breachTimeline } from '../../queries/breach-timeline.js'
import { bulkExtraction } from '../../queries/bulk-extraction.js'
import { firstTimeAccess } from '../../queries/first-time-access.js'
import { offHoursAccess } from '../../queries/off-hours-access.js'
import { principalTimeline } from '../../queries/principal-timeline.js'
import { readsWithoutPurpose } from '../../queries/reads-without-purpose.js'
import { recordsTouchedByPrincipal } from '../../queries/records-touched-by-principal.js'
import { runSavedQuery, type AnySavedQuery, type QueryAnswer } from '../../queries/saved-query.js'
import { subjectAccessReport } from '../../queries/subject-access-report.js'
import { topReaders } from '../../queries/top-readers.js'
import {
  ALL_TO,
  AT,
  breachReads,
  breachScope as replayScope,
  bulkExtraction as replayBulk,
  firstTimeAccess as replayFirstTime,
  offHours as replayOffHours,
  openQueryFixture,
  P,
  principalTimeline as replayPrincipalTimeline,
  readsWithoutPurpose as replayWithoutPurpose,
  RECORD,
  SESSION,
  SUBJECT_CONTEXT,
  subjectAccess,
  timeline,
  topReaders as replayTopReaders,
  withMicros,
  type QueryFixture,
} from '../helpers/query-fixture.js'

/**
 * Reads too large for one message are split by the SDK into parts sharing a
 * read id; each part names some of the record ids and carries the whole
 * read's row_count (schemas/avro/access-event.v1.avsc: "Rows returned by the
 * whole read (all parts)"). The fixture holds two: svc.archive's export of
 * 1,200 applicants in 3 parts (2026-03-25 02:00 UTC) and the scraper's read
 * of 1,500 owners in 2 parts (2026-03-31 19:40 UTC).
 *
 * Per-record answers name each record once. Answers that count reads and sum
 * rows per event count a split read once per part and its rows part_count
 * times.
 */
let fx: QueryFixture

beforeAll(async () => {
  fx = await openQueryFixture()
})

type Answer = QueryAnswer<Record<string, unknown>>
const run = (query: unknown, params: Record<string, unknown>) => runSavedQuery(fx.store, query as AnySavedQuery, params, { context: SUBJECT_CONTEXT }) as Promise<Answer>

function expectAnswer(answer: Answer, expected: { rows: unknown[]; sources: unknown[] }, times: string[]): void {
  expect(withMicros(answer.rows, times)).toEqual(expected.rows)
  expect(answer.sources).toEqual(expected.sources)
}

const EXPORT = { from: '2026-03-25T01:00:00Z', to: '2026-03-25T03:00:00Z' }
const SCRAPER_READ = { sessions: [SESSION.scrape1.toString('hex')], from: AT.scraperExport, to: ALL_TO }
const TIMES = ['first_access', 'last_access']

describe('a read split in parts', () => {
  it('is in the fixture as parts sharing a read id, each with the whole row_count', () => {
    const parts = fx.events.filter((e) => e.part_count > 1)
    expect(parts.map((e) => [e.principal_id, e.part_index, e.part_count, e.record_ids.length, e.row_count])).toEqual([
      [P.archive, 0, 3, 400, 1200],
      [P.archive, 1, 3, 400, 1200],
      [P.archive, 2, 3, 400, 1200],
      [P.portal, 0, 2, 750, 1500],
      [P.portal, 1, 2, 750, 1500],
    ])
  })

  it('names each of its records once in records-touched-by-principal and subject-access-report', async () => {
    const touched = await run(recordsTouchedByPrincipal, { principal: P.archive, ...EXPORT, limit: 0 })
    expect(touched.rows).toHaveLength(1200)
    expect(new Set(touched.rows.map((r) => r['access_count']))).toEqual(new Set([1]))
    const { rows } = await run(subjectAccessReport, { subject: RECORD.owner, from: AT.scraperExport, limit: 0 })
    expect(withMicros(rows, ['occurred_at'])).toEqual(subjectAccess(fx.events, { subject: RECORD.owner, from: AT.scraperExport }).rows)
    expect(rows).toHaveLength(1)
  })

  // Regression (every query that counts reads or sums row_count per event:
  // breach-scope, breach-timeline, principal-timeline, off-hours-access,
  // top-readers, first-time-access, reads-without-purpose, bulk-extraction,
  // and access_log's p_hours/p_days projections): a read in N parts is
  // counted as N reads of N × row_count rows. The expected figures count
  // distinct read ids and each read's row_count once.
  it('counts once in breach-scope (2 reads of 3,000 rows shown for 1 read of 1,500)', async () => {
    const answer = await run(breachScope, SCRAPER_READ)
    expectAnswer(answer, replayScope(fx.events, SCRAPER_READ), TIMES)
    expect(answer.rows.map((r) => [r['reads'], r['rows_read'], r['distinct_records']])).toEqual([[1, 1500, 1500]])
  })

  it('counts once in breach-timeline', async () => {
    const answer = await run(breachTimeline, { ...SCRAPER_READ, bucket: '1h' })
    expectAnswer(answer, timeline(breachReads(fx.events, SCRAPER_READ), '1h'), ['bucket_start'])
  })

  it('counts once in principal-timeline', async () => {
    const params = { principal: P.archive, bucket: '1d' } as const
    const answer = await run(principalTimeline, params)
    expectAnswer(answer, replayPrincipalTimeline(fx.events, params), ['bucket_start'])
    expect(answer.rows.map((r) => [r['reads'], r['rows_read']])).toEqual([[1, 1200]])
  })

  it('counts once in off-hours-access', async () => {
    const params = { ...EXPORT, principal: P.archive }
    expectAnswer(await run(offHoursAccess, params), replayOffHours(fx.events, params), TIMES)
  })

  it('counts once in top-readers, and ranks on the rows actually read', async () => {
    const params = { from: '2026-03-25T00:00:00Z', to: '2026-03-26T00:00:00Z' }
    expectAnswer(await run(topReaders, params), replayTopReaders(fx.events, params), TIMES)
  })

  it('counts once in first-time-access', async () => {
    const params = { ...EXPORT, lookback_days: 30 }
    expectAnswer(await run(firstTimeAccess, params), replayFirstTime(fx.events, params), ['first_read_at'])
  })

  it('counts once in reads-without-purpose', async () => {
    const params = { from: AT.scraperExport, to: ALL_TO, tables: ['firearms.owners'] }
    expectAnswer(await run(readsWithoutPurpose, params), replayWithoutPurpose(fx.events, params), TIMES)
  })

  it('counts once in bulk-extraction: one read of 1,500 rows, not 3,000 rows in a minute', async () => {
    const params = { from: '2026-03-31T19:00:00Z', to: '2026-03-31T20:00:00Z' }
    const answer = await run(bulkExtraction, params)
    const expected = replayBulk(fx.events, params)
    expect(withMicros(answer.rows, ['peak_minute', 'first_access', 'last_access']).map((r) => [r['principal_id'], r['peak_rows_per_minute'], r['rows_read']])).toEqual(
      expected.rows.map((r) => [r.principal_id, r.peak_rows_per_minute, r.rows_read]),
    )
  })
})
