import { beforeAll, describe, expect, it } from 'vitest'
import { breachRecords } from '../../queries/breach-records.js'
import { breachScope } from '../../queries/breach-scope.js'
import { breachTimeline } from '../../queries/breach-timeline.js'
import { runSavedQuery, type AnySavedQuery, type QueryAnswer, type QueryContext } from '../../queries/saved-query.js'
import {
  ALL_FROM,
  ALL_TO,
  AT,
  breachReads,
  breachRecords as replayRecords,
  breachScope as replayScope,
  type BUCKET_SECONDS,
  IP,
  openQueryFixture,
  P,
  readTotals,
  SESSION,
  SUBJECT_CONTEXT,
  timeline,
  withMicros,
  type BreachLeads,
  type QueryFixture,
} from '../helpers/query-fixture.js'

/**
 * breach-scope, breach-records and breach-timeline against answers replayed
 * from the fixture's events (test/helpers/query-fixture.ts). Windows that
 * hold a read split in parts are tested in saved-queries-multi-part.test.ts;
 * the scraper's windows here end before its 2-part read.
 */
let fx: QueryFixture

beforeAll(async () => {
  fx = await openQueryFixture()
})

type Answer = QueryAnswer<Record<string, unknown>>
const run = (query: unknown, params: Record<string, unknown>, context: QueryContext = SUBJECT_CONTEXT) =>
  runSavedQuery(fx.store, query as AnySavedQuery, params, { context }) as Promise<Answer>

const hex = (b: Buffer) => b.toString('hex')
const SCOPE_TIMES = ['first_access', 'last_access']

function expectAnswer(answer: Answer, expected: { rows: unknown[]; sources: unknown[] }, times: string[]): void {
  expect(withMicros(answer.rows, times)).toEqual(expected.rows)
  expect(answer.sources).toEqual(expected.sources)
}

/** The leads as the query takes them: lists as comma-separated text, as from the command line. */
const asParams = (p: BreachLeads) => ({
  ...(p.principals ? { principals: p.principals.join(',') } : {}),
  ...(p.ips ? { ips: p.ips.join(',') } : {}),
  ...(p.sessions ? { sessions: p.sessions.join(',') } : {}),
  from: p.from,
  to: p.to,
})

const MARTA_NIGHT: BreachLeads = { ips: [IP.martaNight], from: ALL_FROM, to: ALL_TO }
const SCRAPE: BreachLeads = { ips: [IP.scraper], sessions: [hex(SESSION.scrape1)], from: '2026-03-31T00:00:00Z', to: AT.scraperExport }

describe('breach-scope', () => {
  it('by principal only: what clerk.marta read in two days, records, subjects, columns, reads and rows', async () => {
    const leads = { principals: [P.marta], from: '2026-03-30T00:00:00Z', to: '2026-04-01T00:00:00Z' }
    const answer = await run(breachScope, asParams(leads))
    const expected = replayScope(fx.events, leads)
    expectAnswer(answer, expected, SCOPE_TIMES)
    expect(expected.rows).toHaveLength(1)
    expect(answer.rows[0]).toMatchObject({ database: 'registry', table: 'applicants', principals: [P.marta] })
    expect(answer.rows[0]!['distinct_subjects']).toBe(answer.rows[0]!['distinct_records'])
    expect(answer.rows[0]!['distinct_records']).toBeGreaterThan(3400)
  })

  it('by IPv4 only: the night address finds a second account used from it', async () => {
    const answer = await run(breachScope, asParams(MARTA_NIGHT))
    expectAnswer(answer, replayScope(fx.events, MARTA_NIGHT), SCOPE_TIMES)
    expect(answer.rows.map((r) => r['principals'])).toEqual([[P.anna, P.marta]])
    // The same address written IPv4-mapped, as ClickHouse stores it.
    const mapped = await run(breachScope, asParams({ ...MARTA_NIGHT, ips: [`::ffff:${IP.martaNight}`] }))
    expect(mapped.rows).toEqual(answer.rows)
  })

  it('by IPv6 only, however the address is written; a table without a subject key has no subject count', async () => {
    const leads = { ips: [IP.scraper], from: SCRAPE.from, to: SCRAPE.to }
    const answer = await run(breachScope, asParams(leads))
    expectAnswer(answer, replayScope(fx.events, leads), SCOPE_TIMES)
    expect(answer.rows.map((r) => [r['table'], r['distinct_subjects'] === null])).toEqual([
      ['items', true],
      ['licences', false],
      ['owners', false],
    ])
    const longForm = await run(breachScope, asParams({ ...leads, ips: ['2001:0DB8:DEAD:0000:0000:0000:0000:BEEF'] }))
    expect(longForm.rows).toEqual(answer.rows)
  })

  it('counts the subjects of composite keys: licences by their owner, treatments by their patient', async () => {
    const answer = await run(breachScope, asParams({ ips: [IP.scraper], from: SCRAPE.from, to: SCRAPE.to }))
    const licences = answer.rows.find((r) => r['table'] === 'licences')!
    expect(licences['distinct_records']).toBe(licences['distinct_subjects'])
    const vendor = { principals: [P.vendor], from: ALL_FROM, to: ALL_TO }
    const practice = await run(breachScope, asParams(vendor))
    expectAnswer(practice, replayScope(fx.events, vendor), SCOPE_TIMES)
    expect(practice.rows.map((r) => r['table'])).toEqual(['patients', 'treatments'])
    expect(practice.rows[0]!['columns']).toEqual(expect.arrayContaining(['religion', 'sexual_orientation']))
  })

  it('by session only, in upper- or lower-case hex', async () => {
    const leads = { sessions: [hex(SESSION.scrape1)], from: SCRAPE.from, to: SCRAPE.to }
    const answer = await run(breachScope, asParams(leads))
    expectAnswer(answer, replayScope(fx.events, leads), SCOPE_TIMES)
    expect((await run(breachScope, asParams({ ...leads, sessions: [hex(SESSION.scrape1).toUpperCase()] }))).rows).toEqual(answer.rows)
  })

  it('with leads of every kind, counts a read that matches two of them once', async () => {
    const leads = { principals: [P.vendor], ips: [IP.martaNight], sessions: [hex(SESSION.martaNight)], from: ALL_FROM, to: ALL_TO }
    const answer = await run(breachScope, asParams(leads))
    const expected = replayScope(fx.events, leads)
    expectAnswer(answer, expected, SCOPE_TIMES)
    // Every read of the night session came from the night address: the session adds no read.
    const ipOnly = await run(breachScope, asParams(MARTA_NIGHT))
    const registry = (a: Answer) => a.rows.find((r) => r['database'] === 'registry')!
    expect(registry(answer)['reads']).toBe(registry(ipOnly)['reads'])
    expect(registry(answer)['reads']).toBe(breachReads(fx.events, MARTA_NIGHT).length)
  })

  it('with an address and a session that each find reads the other misses', async () => {
    const answer = await run(breachScope, asParams(SCRAPE))
    expectAnswer(answer, replayScope(fx.events, SCRAPE), SCOPE_TIMES)
    const byIp = breachReads(fx.events, { ips: SCRAPE.ips!, from: SCRAPE.from, to: SCRAPE.to }).length
    const bySession = breachReads(fx.events, { sessions: SCRAPE.sessions!, from: SCRAPE.from, to: SCRAPE.to }).length
    const both = breachReads(fx.events, SCRAPE).length
    expect(both).toBeGreaterThan(Math.max(byIp, bySession))
    expect(both).toBeLessThan(byIp + bySession)
    expect(answer.rows.reduce((n, r) => n + (r['reads'] as number), 0)).toBe(both)
  })

  it('without subject keys counts records but no subjects', async () => {
    const answer = await run(breachScope, asParams(MARTA_NIGHT), { subjectKeys: new Map() })
    expect(answer.rows.map((r) => r['distinct_subjects'])).toEqual([null])
  })

  it('answers leads that match nothing with no rows and no sources', async () => {
    const answer = await run(breachScope, asParams({ principals: ['nobody'], ips: ['2001:db8::1'], from: ALL_FROM, to: ALL_TO }))
    expect([answer.rows, answer.sources]).toEqual([[], []])
    // Inclusive from, exclusive to: a window ending where the night began holds none of it.
    const before = await run(breachScope, asParams({ ips: [IP.martaNight], from: '2026-03-30T00:00:00Z', to: '2026-03-31T00:30:01.250Z' }))
    expect(before.rows).toEqual([])
    const first = await run(breachScope, asParams({ ips: [IP.martaNight], from: '2026-03-31T00:30:01.250Z', to: '2026-03-31T00:30:01.251Z' }))
    expect(first.rows.map((r) => r['reads'])).toEqual([1])
  })
})

describe('breach-records', () => {
  const RECORD_TIMES = ['first_access', 'last_access']

  it('lists every record the night address read, with its subject', async () => {
    const answer = await run(breachRecords, { ...asParams(MARTA_NIGHT), limit: 0 })
    const expected = replayRecords(fx.events, MARTA_NIGHT)
    expectAnswer(answer, expected, RECORD_TIMES)
    expect(answer.rows.length).toBeGreaterThan(3400)
    expect(answer.rows.every((r) => r['subject_id'] === r['record_id'])).toBe(true)
  })

  it('counts reads per record and every principal that read it', async () => {
    const leads = { principals: [P.marta, P.anna], from: ALL_FROM, to: ALL_TO }
    const answer = await run(breachRecords, { ...asParams(leads), limit: 0 })
    expectAnswer(answer, replayRecords(fx.events, leads), RECORD_TIMES)
    expect(answer.rows.some((r) => (r['reads'] as number) > 2 && (r['principals'] as string[]).length === 2)).toBe(true)
  })

  it('names the owner of a licence (second key part) and no subject for items', async () => {
    const answer = await run(breachRecords, { ...asParams(SCRAPE), limit: 0 })
    expectAnswer(answer, replayRecords(fx.events, SCRAPE), RECORD_TIMES)
    const licence = answer.rows.find((r) => r['table'] === 'licences')!
    expect(licence['subject_id']).toBe((JSON.parse(licence['record_id'] as string) as string[])[1])
    expect(answer.rows.filter((r) => r['table'] === 'items').every((r) => r['subject_id'] === null)).toBe(true)
  })

  it('names each record of a 2-part read once, with one read', async () => {
    const leads = { sessions: [hex(SESSION.scrape1)], from: AT.scraperExport, to: ALL_TO }
    const answer = await run(breachRecords, { ...asParams(leads), limit: 0 })
    expectAnswer(answer, replayRecords(fx.events, leads), RECORD_TIMES)
    expect(answer.rows).toHaveLength(1500)
    expect(answer.rows.every((r) => r['reads'] === 1)).toBe(true)
  })

  it('cuts at limit on the record order and says so; limit 0 returns all', async () => {
    const expected = replayRecords(fx.events, SCRAPE)
    const cut = await run(breachRecords, { ...asParams(SCRAPE), limit: 10 })
    expect(cut.truncated).toBe(true)
    expect(withMicros(cut.rows, RECORD_TIMES)).toEqual(expected.rows.slice(0, 10))
    expect(cut.sources).toEqual(expected.sources)
    const exact = await run(breachRecords, { ...asParams(SCRAPE), limit: expected.rows.length })
    expect([exact.truncated, exact.rows.length]).toEqual([false, expected.rows.length])
    const all = await run(breachRecords, { ...asParams(SCRAPE), limit: '0' })
    expect([all.truncated, all.rows.length]).toEqual([false, expected.rows.length])
  })
})

describe('breach-timeline', () => {
  const cases: [keyof typeof BUCKET_SECONDS, BreachLeads][] = [
    ['15m', MARTA_NIGHT],
    ['1m', { ...MARTA_NIGHT, from: '2026-03-31T01:10:00Z', to: '2026-03-31T01:20:00Z' }],
    ['1h', SCRAPE],
    ['5m', { ...SCRAPE, principals: [P.vendor] }],
    ['1d', { principals: [P.vendor, P.marta], from: ALL_FROM, to: ALL_TO }],
    ['6h', { ...SCRAPE, from: ALL_FROM }],
  ]
  it.each(cases)('buckets %s: reads and rows per bucket and table', async (bucket, leads) => {
    const answer = await run(breachTimeline, { ...asParams(leads), bucket })
    const expected = timeline(breachReads(fx.events, leads), bucket)
    expectAnswer(answer, expected, ['bucket_start'])
    // The buckets add up to the breach's reads, as breach-scope counts them.
    const scope = await run(breachScope, asParams(leads))
    const sum = (rows: Record<string, unknown>[], key: string) => rows.reduce((n, r) => n + (r[key] as number), 0)
    expect([sum(answer.rows, 'reads'), sum(answer.rows, 'rows_read')]).toEqual([sum(scope.rows, 'reads'), sum(scope.rows, 'rows_read')])
    expect(sum(answer.rows, 'reads')).toBe(readTotals(breachReads(fx.events, leads)).reads)
  })

  it('shows the night burst as one minute of 600 rows', async () => {
    const answer = await run(breachTimeline, { ...asParams(MARTA_NIGHT), from: '2026-03-31T01:00:00Z', to: '2026-03-31T01:30:00Z', bucket: '1m' })
    const peak = withMicros(answer.rows, ['bucket_start']).reduce((a, b) => ((b['rows_read'] as number) > (a['rows_read'] as number) ? b : a))
    expect(peak).toEqual({ bucket_start: Date.parse(AT.martaBurstMinute) * 1000, database: 'registry', table: 'applicants', reads: 60, rows_read: 600 })
  })
})
