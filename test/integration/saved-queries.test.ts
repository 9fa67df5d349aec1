import { beforeAll, describe, expect, it } from 'vitest'
import { nextVerifyState, type VerifyState } from '../../integrity/verify-state.js'
import { verifyStore } from '../../integrity/verify-store.js'
import { SAVED_QUERIES, getSavedQuery } from '../../queries/catalog.js'
import { QueryError } from '../../queries/errors.js'
import { principalTimeline } from '../../queries/principal-timeline.js'
import { recordsTouchedByPrincipal } from '../../queries/records-touched-by-principal.js'
import { runSavedQuery, type AnySavedQuery, type QueryAnswer, type QueryContext } from '../../queries/saved-query.js'
import { subjectAccessReport } from '../../queries/subject-access-report.js'
import { topReaders } from '../../queries/top-readers.js'
import { whoTouchedRecord } from '../../queries/who-touched-record.js'
import type { Store } from '../../store/store.js'
import {
  ALL_FROM,
  ALL_TO,
  AT,
  CHAINS,
  generateQueryFixture,
  IP,
  openQueryFixture,
  P,
  principalTimeline as replayTimeline,
  RECORD,
  recordsTouched,
  SESSION,
  sourcesOf,
  SUBJECT_CONTEXT,
  subjectAccess,
  topReaders as replayTopReaders,
  whoTouched,
  withMicros,
  writeEvents,
  type QueryFixture,
} from '../helpers/query-fixture.js'
import { signStoredHeads } from '../helpers/signed-log.js'
import { openTestStore } from '../helpers/store.js'
import { thrown } from '../helpers/thrown.js'
import { isoToMicros } from '../helpers/workload.js'

/**
 * Every saved query against answers computed independently from the events
 * (test/helpers/query-fixture.ts). This file: the per-principal and
 * per-record queries, provenance, and parameters; breach queries and
 * patterns (bulk, off-hours, first-time, purpose) have their own files.
 */
let fx: QueryFixture

beforeAll(async () => {
  fx = await openQueryFixture()
})

const run = <Row>(query: { name: string }, params: Record<string, unknown>, options: { context?: QueryContext; verifyState?: VerifyState | null; store?: Store } = {}) =>
  runSavedQuery((options.store ?? fx.store) as Store, query as AnySavedQuery, params, { context: options.context ?? SUBJECT_CONTEXT, verifyState: options.verifyState ?? null }) as Promise<
    QueryAnswer<Row & Record<string, unknown>>
  >

/** The answer holds exactly the replayed rows and chain ranges, and its provenance names the same ranges. */
function expectAnswer(answer: QueryAnswer<Record<string, unknown>>, expected: { rows: unknown[]; sources: unknown[] }, times: string[]): void {
  expect(withMicros(answer.rows, times)).toEqual(expected.rows)
  expect(answer.sources).toEqual(expected.sources)
  expect(answer.provenance.chains.map(({ chain_id, first_seq, last_seq, events }) => ({ chain_id, first_seq, last_seq, events }))).toEqual(expected.sources)
}

const TOUCHED_TIMES = ['first_access', 'last_access']

describe('the fixture', () => {
  it('holds a few thousand events over three chains, stored once each, with the cases the queries are tested on', async () => {
    const [stored] = await fx.store.queryRows<{ n: number; chains: number }>(`SELECT count() AS n, uniqExact(chain_id) AS chains FROM ${fx.store.table('access_log')}`)
    expect(stored).toEqual({ n: fx.events.length, chains: 3 })
    expect(fx.events.length).toBeGreaterThan(3000)
    expect(sourcesOf(fx.events).map((s) => s.chain_id)).toEqual([...CHAINS])
    const multiPart = new Set(fx.events.filter((e) => e.part_count > 1).map((e) => e.read_id))
    expect(multiPart.size).toBe(2)
    expect(fx.events.some((e) => e.client_ip?.includes(':'))).toBe(true)
    expect(fx.events.every((e) => e.session_hash === null || e.session_hash.length === 32)).toBe(true)
    // Seeded: the same events every run, ids included.
    expect(generateQueryFixture()).toEqual(fx.events)
  })
})

describe('records-touched-by-principal', () => {
  it.each([P.marta, P.kim, P.vendor, P.hostile, P.archive, P.luca])('returns every record %s read, with columns, first/last access and access counts', async (principal) => {
    const answer = await run(recordsTouchedByPrincipal, { principal, limit: 0 })
    const expected = recordsTouched(fx.events, { principal })
    expect(expected.rows.length).toBeGreaterThan(0)
    expectAnswer(answer, expected, TOUCHED_TIMES)
    expect(answer.truncated).toBe(false)
  })

  it('counts every read of a record nurse.kim reads again and again', async () => {
    const { rows } = await run<{ record_id: string; access_count: number }>(recordsTouchedByPrincipal, { principal: P.kim, table: 'patients', limit: 0 })
    const reread = rows.find((r) => r.record_id === RECORD.rereadPatient)
    expect(reread?.access_count).toBe(fx.events.filter((e) => e.principal_id === P.kim && e.record_ids.includes(RECORD.rereadPatient)).length)
    expect(reread?.access_count).toBeGreaterThanOrEqual(14)
  })

  it('names each record of a 3-part read once', async () => {
    const { rows } = await run<{ access_count: number }>(recordsTouchedByPrincipal, { principal: P.archive, limit: 0 })
    expect(rows).toHaveLength(1200)
    expect(rows.every((r) => r.access_count === 1)).toBe(true)
  })

  it('keeps a window inclusive at from and exclusive at to, and filters by table', async () => {
    const params = { principal: P.anna, table: 'applicants', from: AT.winterWorkStarts, to: AT.winterWorkEnds, limit: 0 }
    const answer = await run(recordsTouchedByPrincipal, params)
    expectAnswer(answer, recordsTouched(fx.events, params), TOUCHED_TIMES)
    const times = withMicros(answer.rows, TOUCHED_TIMES).flatMap((r) => [r['first_access'], r['last_access']])
    expect(times).toContain(isoToMicros(AT.winterWorkStarts))
    expect(times).toContain(isoToMicros(AT.winterLastWorkMicro))
    expect(times).not.toContain(isoToMicros(AT.winterWorkEnds))
    expect(times).not.toContain(isoToMicros(AT.winterBeforeWork))
  })

  it('accepts window ends as Dates', async () => {
    const params = { principal: P.marta, from: new Date('2026-03-31T01:00:00Z'), to: new Date('2026-03-31T01:30:00Z'), limit: 0 }
    expectAnswer(await run(recordsTouchedByPrincipal, params), recordsTouched(fx.events, params), TOUCHED_TIMES)
  })

  // Regression (queries/params.ts `instant`): window ends become a Date, which
  // holds milliseconds, so a bound copied from an answer's microsecond time
  // is cut: from = 07:00:00.000001 still takes the read at 07:00:00.000000.
  it('honours a window end given to the microsecond', async () => {
    const params = { principal: P.anna, from: '2026-03-26T07:00:00.000001Z', to: '2026-03-26T07:00:01Z', limit: 0 }
    const answer = await run(recordsTouchedByPrincipal, params)
    expect(answer.rows).toEqual([])
  })

  it('cuts at limit and says so; limit 0 returns everything', async () => {
    const all = recordsTouched(fx.events, { principal: P.marta })
    const cut = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: 5 })
    expect(cut.truncated).toBe(true)
    expect(withMicros(cut.rows, TOUCHED_TIMES)).toEqual(all.rows.slice(0, 5))
    // The answer still stands on every matching event.
    expect(cut.sources).toEqual(all.sources)
    const exact = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: all.rows.length })
    expect([exact.truncated, exact.rows.length]).toEqual([false, all.rows.length])
    const oneShort = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: String(all.rows.length - 1) })
    expect([oneShort.truncated, oneShort.rows.length]).toEqual([true, all.rows.length - 1])
    const everything = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: 0 })
    expect([everything.truncated, everything.rows.length]).toEqual([false, all.rows.length])
    expect(all.rows.length).toBeGreaterThan(3000)
  })

  it('answers an empty window with no rows and no sources, and does not call the absence verified', async () => {
    const answer = await run(recordsTouchedByPrincipal, { principal: P.marta, from: '2026-03-28T00:00:00Z', to: '2026-03-29T00:00:00Z' })
    expect([answer.rows, answer.sources, answer.truncated, answer.provenance.chains]).toEqual([[], [], false, []])
    expect(answer.provenance.status).toBe('unverified')
    expect(answer.provenance.summary).toMatch(/no matching events.*never been verified/)
  })

  it('binds a hostile principal name and a hostile table name as data', async () => {
    const mine = await run<{ record_id: string }>(recordsTouchedByPrincipal, { principal: P.hostile, limit: 0 })
    expectAnswer(mine, recordsTouched(fx.events, { principal: P.hostile }), TOUCHED_TIMES)
    expect(mine.rows.length).toBeLessThan(20)
    expect((await run(recordsTouchedByPrincipal, { principal: "clerk.marta' OR '1'='1", limit: 0 })).rows).toEqual([])
    expect(await thrown(run(recordsTouchedByPrincipal, { principal: P.marta, table: 'applicants; DROP TABLE access_log', limit: 0 }))).toMatchObject({ code: 'QUERY_PARAM_INVALID' })
    expect(await thrown(run(recordsTouchedByPrincipal, { principal: P.marta, table: "applicants';DROP", limit: 0 }))).toMatchObject({ code: 'QUERY_TABLE_UNKNOWN' })
    const [stored] = await fx.store.queryRows<{ n: number }>(`SELECT count() AS n FROM ${fx.store.table('access_log')}`)
    expect(stored?.n).toBe(fx.events.length)
  })
})

const WHO_TIMES = ['occurred_at']

describe('who-touched-record', () => {
  it('names every read of a record read by many principals, in both databases with that table name', async () => {
    const answer = await run<{ principal_id: string; database: string }>(whoTouchedRecord, { table: 'applicants', record: RECORD.manyReaders })
    const expected = whoTouched(fx.events, { table: 'applicants', record: RECORD.manyReaders })
    expectAnswer(answer, expected, WHO_TIMES)
    expect(new Set(answer.rows.map((r) => r.principal_id)).size).toBeGreaterThanOrEqual(7)
    expect(new Set(answer.rows.map((r) => r.database))).toEqual(new Set(['archive', 'registry']))
  })

  it('filters by database and window', async () => {
    const params = { table: 'applicants', record: RECORD.manyReaders, database: 'registry', from: '2026-03-27T00:00:00Z', to: '2026-03-31T01:00:00Z' }
    const answer = await run(whoTouchedRecord, params)
    expectAnswer(answer, whoTouched(fx.events, params), WHO_TIMES)
    expect(answer.rows.length).toBeGreaterThan(4)
  })

  it('shows IPv6 clients, session hashes, on-behalf-of and the chain position of each read', async () => {
    const answer = await run<{ client_ip: string; session_hash: string; on_behalf_of: string | null }>(whoTouchedRecord, { table: 'patients', record: RECORD.rereadPatient })
    expectAnswer(answer, whoTouched(fx.events, { table: 'patients', record: RECORD.rereadPatient }), WHO_TIMES)
    const vendor = answer.rows.find((r) => r['principal_id'] === P.vendor)
    expect(vendor).toMatchObject({ client_ip: IP.vendorNight, session_hash: SESSION.vendorNight.toString('hex'), on_behalf_of: 'acme-medsoft', purpose: null })
    expect(answer.rows.filter((r) => r['principal_id'] === P.kim).length).toBeGreaterThanOrEqual(14)
  })

  it('finds a composite-key record as recorded', async () => {
    const record = JSON.stringify([RECORD.rereadPatient, '2'])
    const answer = await run(whoTouchedRecord, { table: 'treatments', record })
    const expected = whoTouched(fx.events, { table: 'treatments', record })
    expect(expected.rows.length).toBeGreaterThan(0)
    expectAnswer(answer, expected, WHO_TIMES)
  })

  it('finds a record in the second part of a 3-part read once', async () => {
    const answer = await run(whoTouchedRecord, { table: 'applicants', record: '100900', from: '2026-03-25T00:00:00Z', to: '2026-03-26T00:00:00Z' })
    expectAnswer(answer, whoTouched(fx.events, { table: 'applicants', record: '100900', from: '2026-03-25T00:00:00Z', to: '2026-03-26T00:00:00Z' }), WHO_TIMES)
    expect(answer.rows.filter((r) => r['principal_id'] === P.archive)).toHaveLength(1)
  })

  it('returns nothing for a record nobody read', async () => {
    const answer = await run(whoTouchedRecord, { table: 'applicants', record: "1' OR '1'='1" })
    expect([answer.rows, answer.sources]).toEqual([[], []])
  })
})

describe('subject-access-report', () => {
  const sar = async (params: Record<string, unknown>, context = SUBJECT_CONTEXT) => {
    const answer = await run(subjectAccessReport, params, { context })
    // Rows of one read (one chain position) naming several of the subject's records come in any order.
    const rows = withMicros(answer.rows, WHO_TIMES) as ({ occurred_at: number; chain_id: string; seq: number; record_id: string } & Record<string, unknown>)[]
    for (let i = 1; i < rows.length; i++) {
      const [a, b] = [rows[i - 1]!, rows[i]!]
      expect(a.occurred_at < b.occurred_at || (a.occurred_at === b.occurred_at && (a.chain_id < b.chain_id || (a.chain_id === b.chain_id && a.seq <= b.seq)))).toBe(true)
    }
    return { answer, rows: [...rows].sort((a, b) => a.occurred_at - b.occurred_at || (a.chain_id < b.chain_id ? -1 : a.chain_id > b.chain_id ? 1 : 0) || a.seq - b.seq || (a.record_id < b.record_id ? -1 : 1)) }
  }

  it("reports a patient's reads across patients and the composite-key treatments, not a patient whose id is a prefix", async () => {
    const { answer, rows } = await sar({ subject: RECORD.rereadPatient, limit: 0 })
    const expected = subjectAccess(fx.events, { subject: RECORD.rereadPatient })
    expect(rows).toEqual(expected.rows)
    expect(answer.sources).toEqual(expected.sources)
    expect(new Set(rows.map((r) => r['table']))).toEqual(new Set(['patients', 'treatments']))
    expect(rows.filter((r) => r['table'] === 'treatments').map((r) => r.record_id)).toContain(JSON.stringify([RECORD.rereadPatient, '3']))
    expect(rows.some((r) => r.record_id.startsWith(`["${RECORD.prefixPatient}"`))).toBe(false)
  })

  it('finds a firearms owner by id and in the second part of licence keys', async () => {
    const { answer, rows } = await sar({ subject: RECORD.owner, limit: 0 })
    const expected = subjectAccess(fx.events, { subject: RECORD.owner })
    expect(rows).toEqual(expected.rows)
    expect(answer.sources).toEqual(expected.sources)
    expect(new Set(rows.map((r) => r['table']))).toEqual(new Set(['owners', 'licences']))
  })

  it('leaves out tables without a subject key that share a keyed table name', async () => {
    const { rows } = await sar({ subject: RECORD.manyReaders, limit: 0 })
    expect(rows).toEqual(subjectAccess(fx.events, { subject: RECORD.manyReaders }).rows)
    expect(rows.every((r) => r['database'] === 'registry')).toBe(true)
  })

  it('keeps the window, cuts at limit and says so', async () => {
    const window = { from: '2026-03-27T00:00:00Z', to: '2026-03-31T02:00:00Z' }
    const expected = subjectAccess(fx.events, { subject: RECORD.manyReaders, ...window })
    const { answer, rows } = await sar({ subject: RECORD.manyReaders, ...window, limit: 3 })
    expect([answer.truncated, rows]).toEqual([true, expected.rows.slice(0, 3)])
    const all = await sar({ subject: RECORD.manyReaders, ...window })
    expect([all.answer.truncated, all.rows]).toEqual([false, expected.rows])
  })

  it('honours the subject keys it is given', async () => {
    const onlyPatients = { subjectKeys: new Map([['practice.patients', 0]]) }
    const { rows } = await sar({ subject: RECORD.rereadPatient, limit: 0 }, onlyPatients)
    expect(rows).toEqual(subjectAccess(fx.events, { subject: RECORD.rereadPatient }, onlyPatients.subjectKeys).rows)
    expect(rows.every((r) => r['table'] === 'patients')).toBe(true)
  })
})

describe('principal-timeline', () => {
  it.each([
    [P.marta, '1h', {}],
    [P.marta, '1m', { from: '2026-03-31T01:00:00Z', to: '2026-03-31T01:30:00Z' }],
    [P.vendor, '15m', {}],
    [P.weber, '1d', {}],
    [P.portal, '6h', { from: ALL_FROM, to: AT.scraperExport }],
    [P.reporting, '5m', { from: AT.reportingSpikeHour, to: '2026-03-31T11:00:00Z' }],
  ] as const)('%s in %s buckets %j', async (principal, bucket, window) => {
    const answer = await run(principalTimeline, { principal, bucket, ...window })
    const expected = replayTimeline(fx.events, { principal, bucket, ...window })
    expectAnswer(answer, expected, ['bucket_start'])
    const sum = (rows: { reads: number; rows_read: number }[]) => rows.reduce((n, r) => [n[0]! + r.reads, n[1]! + r.rows_read], [0, 0])
    expect(sum(answer.rows as unknown as { reads: number; rows_read: number }[])).toEqual(sum(expected.rows))
  })
})

describe('top-readers', () => {
  // Ends before the scraper's 2-part read; the 3-part export is before it (multi-part reads: saved-queries-multi-part.test.ts).
  const window = { from: '2026-03-26T00:00:00Z', to: AT.scraperExport }

  it('ranks principals by rows read, with reads, distinct records and tables', async () => {
    const answer = await run(topReaders, window)
    expectAnswer(answer, replayTopReaders(fx.events, window), TOUCHED_TIMES)
    expect(answer.rows[0]?.['principal_id']).toBe(P.marta)
  })

  it('returns exactly limit principals, the first of the ranking', async () => {
    const answer = await run(topReaders, { ...window, limit: 3 })
    expectAnswer(answer, replayTopReaders(fx.events, { ...window, limit: 3 }), TOUCHED_TIMES)
    expect(answer.rows).toHaveLength(3)
    // top-readers is a top-N: its limit picks the N, so the answer is not flagged as cut.
    expect(answer.truncated).toBe(false)
  })

  it('ranks within one table', async () => {
    const params = { ...window, database: 'practice', table: 'patients', limit: 5 }
    expectAnswer(await run(topReaders, params), replayTopReaders(fx.events, params), TOUCHED_TIMES)
  })
})

describe('provenance', () => {
  const marta = () => recordsTouched(fx.events, { principal: P.marta }).sources
  function stateOf(chains: Record<string, { verified_through: number; ok?: boolean }>): VerifyState {
    const at = '2026-04-02T13:00:00.000Z'
    const entries = Object.entries(chains).map(([id, c]) => [
      id,
      {
        anchor: null,
        verified_through: c.verified_through,
        verified_at: at,
        checkpoint_high: { index: 1, seq: 1_000_000 },
        last_run: {
          ok: c.ok ?? true,
          first_seq: 1,
          last_seq: c.verified_through,
          at,
          mode: 'in-db',
          incremental: false,
          covered: { rows_from: 0, checkpoints: 'both' as const, views: true, producers: true, kafka: true },
        },
        failures: c.ok === false ? [{ check: 'rows' as const, from_seq: 1, kinds: ['hash_mismatch'], found_at: at }] : [],
      },
    ])
    return { format: 'readtrail-verify-state-v2', database: fx.store.database, updated_at: '2026-04-02T13:00:01.000Z', last_full_at: at, chains: Object.fromEntries(entries), producers: {} }
  }
  const covering = (over: Record<string, { verified_through: number; ok?: boolean }> = {}) =>
    stateOf(Object.fromEntries(CHAINS.map((c) => [c, over[c] ?? { verified_through: fx.events.filter((e) => e.chain_id === c).length }])))

  it('is unverified without a verify state, chain by chain', async () => {
    const answer = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: 0 })
    expect(answer.provenance.status).toBe('unverified')
    expect(answer.provenance.chains.map((c) => [c.chain_id, c.status, c.verified_through])).toEqual(CHAINS.map((c) => [c, 'unverified', 0]))
    expect(answer.provenance.verify_state_at).toBeNull()
  })

  it('is verified when every chain is verified through its range, unverified when one is verified short of it, failed after damage', async () => {
    const ranges = marta()
    expect(ranges).toHaveLength(3)
    const verified = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: 0 }, { verifyState: covering() })
    expect(verified.provenance.status).toBe('verified')
    expect(verified.provenance.verify_state_at).toBe('2026-04-02T13:00:01.000Z')

    const [first, second] = ranges as [(typeof ranges)[0], (typeof ranges)[0]]
    const exactly = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: 0 }, { verifyState: covering({ [first.chain_id]: { verified_through: first.last_seq } }) })
    expect(exactly.provenance.status).toBe('verified')
    const short = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: 0 }, { verifyState: covering({ [first.chain_id]: { verified_through: first.last_seq - 1 } }) })
    expect(short.provenance.status).toBe('unverified')
    expect(short.provenance.chains.map((c) => c.status)).toEqual(['unverified', 'verified', 'verified'])
    const failed = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: 0 }, { verifyState: covering({ [second.chain_id]: { verified_through: 0, ok: false } }) })
    expect(failed.provenance.status).toBe('failed')
    expect(failed.provenance.chains.map((c) => c.status)).toEqual(['verified', 'failed', 'verified'])
    expect(failed.provenance.summary).toMatch(/^FAILED VERIFICATION/)
    const unknown = stateOf({ [first.chain_id]: { verified_through: 10_000 } })
    expect((await run(recordsTouchedByPrincipal, { principal: P.marta, limit: 0 }, { verifyState: unknown })).provenance.status).toBe('unverified')
  })

  it('follows the real verifier: verified after a clean run, failed after a row of the answer is deleted', async () => {
    // A database of its own: this test tampers with it.
    const store = await openTestStore()
    await writeEvents(store, fx.events)
    // Only signed rows are ever verified: sign every chain's head as the writer would have.
    const checkpoints = await signStoredHeads(store)
    const clean = await verifyStore(store, { checkpoints })
    expect(clean.findings).toEqual([])
    expect(clean.ok).toBe(true)
    const state = nextVerifyState(null, clean, {})
    const queries = [
      [recordsTouchedByPrincipal, { principal: P.marta, limit: 0 }],
      [whoTouchedRecord, { table: 'applicants', record: RECORD.manyReaders }],
      [subjectAccessReport, { subject: RECORD.rereadPatient }],
      [getSavedQuery('breach-scope'), { ips: IP.martaNight, from: ALL_FROM, to: ALL_TO }],
      [getSavedQuery('off-hours-access'), { from: ALL_FROM, to: ALL_TO }],
    ] as const
    for (const [query, params] of queries) {
      const answer = await run(query, params, { store, verifyState: state })
      expect([query.name, answer.provenance.status]).toEqual([query.name, 'verified'])
    }

    // Delete one of clerk.marta's night reads from access_log; the views still hold it.
    const victim = fx.events.find((e) => e.principal_id === P.marta && e.client_ip === IP.martaNight && e.chain_id === CHAINS[1])!
    await store.client.command({
      query: `ALTER TABLE ${store.table('access_log')} DELETE WHERE chain_id = {chain:String} AND seq = {seq:UInt64}`,
      query_params: { chain: victim.chain_id, seq: victim.seq },
      clickhouse_settings: { mutations_sync: '2' },
    })
    const damaged = await verifyStore(store, { checkpoints })
    expect(damaged.ok).toBe(false)
    // The row, its copies in the views and rollups, and the hole it leaves in its producer's sequence.
    expect(new Set(damaged.findings.filter((f) => f.kind !== 'producer_gap').map((f) => f.chain_id))).toEqual(new Set([victim.chain_id]))
    expect(damaged.findings.filter((f) => f.kind === 'producer_gap').map((f) => f.producer)).toEqual([
      { producer_id: victim.producer_id, from_seq: victim.producer_seq, to_seq: victim.producer_seq },
    ])
    expect(damaged.findings.filter((f) => f.kind === 'deleted_rows').map((f) => f.seq)).toEqual([victim.seq])
    const after = nextVerifyState(state, damaged, {})
    const answer = await run(recordsTouchedByPrincipal, { principal: P.marta, limit: 0 }, { store, verifyState: after })
    expect(answer.provenance.status).toBe('failed')
    expect(answer.provenance.chains.find((c) => c.chain_id === victim.chain_id)).toMatchObject({ status: 'failed', verified_through: 0 })
    const breach = await run(getSavedQuery('breach-scope'), { ips: IP.martaNight, from: ALL_FROM, to: ALL_TO }, { store, verifyState: after })
    expect(breach.provenance.status).toBe('failed')
    // An empty answer from a log with known damage: the missing rows may be what made it empty.
    const empty = await run(recordsTouchedByPrincipal, { principal: 'nobody', limit: 0 }, { store, verifyState: after })
    expect([empty.rows, empty.provenance.status]).toEqual([[], 'failed'])
  })
})

/** The store, with every call that could reach ClickHouse counted. */
function counting(store: Store): { store: Store; calls: () => number } {
  let calls = 0
  const client = new Proxy(store.client, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        if (['query', 'command', 'exec', 'insert'].includes(String(prop))) calls += 1
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  const wrapped = new Proxy({} as Store, {
    get(_, prop) {
      if (prop === 'client') return client
      if (prop === 'queryRows') {
        return (...args: Parameters<Store['queryRows']>) => {
          calls += 1
          return store.queryRows(...args)
        }
      }
      return Reflect.get(store, prop) as unknown
    },
  })
  return { store: wrapped, calls: () => calls }
}

describe('invalid parameters are refused before anything reaches ClickHouse', () => {
  const W = { from: '2026-03-30T00:00:00Z', to: '2026-03-31T00:00:00Z' }
  const cases: [string, Record<string, unknown>, string[]][] = [
    ['records-touched-by-principal', { principal: P.marta, from: 'yesterday' }, ['from']],
    ['records-touched-by-principal', { principal: P.marta, from: '2026-03-31T00:00:00Z', to: '2026-03-30T00:00:00Z' }, ['to']],
    ['records-touched-by-principal', { principal: P.marta, from: W.from, to: W.from }, ['to']],
    ['records-touched-by-principal', { principal: P.marta, limit: -1 }, ['limit']],
    ['records-touched-by-principal', { principal: P.marta, limit: '10; DROP TABLE access_log' }, ['limit']],
    ['records-touched-by-principal', { principal: P.marta, columns: 'religion' }, ['columns']],
    ['records-touched-by-principal', { principal: ['clerk.marta'] }, ['principal']],
    ['records-touched-by-principal', { principal: '', from: 'yesterday', limit: -1, sql: 'SELECT 1' }, ['principal', 'from', 'limit', 'sql']],
    ['who-touched-record', { table: 'applicants' }, ['record']],
    ['who-touched-record', { table: 'applicants', record: 'x'.repeat(513) }, ['record']],
    ['subject-access-report', { subject: RECORD.rereadPatient, limit: 'all' }, ['limit']],
    ['breach-scope', { ips: '1.2.3.4,not-an-ip', ...W }, ['ips.1']],
    ['breach-scope', { ips: 'fe80::1%eth0', ...W }, ['ips.0']],
    ['breach-scope', { sessions: 'abc', ...W }, ['sessions.0']],
    ['breach-scope', { sessions: `${SESSION.scrape1.toString('hex')}' OR 1=1 --`, ...W }, ['sessions.0']],
    ['breach-scope', { ...W }, ['principals']],
    ['breach-scope', { principals: '', ips: [], sessions: ',', ...W }, ['principals']],
    ['breach-scope', { principals: P.marta, from: W.from }, ['to']],
    ['breach-records', { principals: P.marta, from: W.to, to: W.from }, ['to']],
    ['breach-records', { principals: P.marta, ...W, limit: -1 }, ['limit']],
    ['breach-timeline', { principals: P.marta, ...W, bucket: '2h' }, ['bucket']],
    ['bulk-extraction', { ...W, threshold: 0 }, ['threshold']],
    ['bulk-extraction', { ...W, factor: '10; DROP TABLE access_log' }, ['factor']],
    ['bulk-extraction', { ...W, baseline_days: 400 }, ['baseline_days']],
    ['off-hours-access', { ...W, timezone: "Europe/Berlin') OR 1=1 --" }, ['timezone']],
    ['off-hours-access', { ...W, weekdays: 'mon,funday' }, ['weekdays.1']],
    ['off-hours-access', { ...W, workday_start: '8:00' }, ['workday_start']],
    ['off-hours-access', { ...W, workday_start: '18:00', workday_end: '08:00' }, ['workday_end']],
    ['off-hours-access', { from: 'yesterday', to: 'today' }, ['from', 'to']],
    ['first-time-access', { ...W, lookback_days: '90 days' }, ['lookback_days']],
    ['reads-without-purpose', { tables: 'applicants; DROP TABLE access_log', ...W }, ['tables.0']],
    ['reads-without-purpose', { tables: '', ...W }, ['tables']],
    ['principal-timeline', { principal: P.marta, bucket: "1h') --" }, ['bucket']],
    ['top-readers', { ...W, limit: 0 }, ['limit']],
    ['top-readers', { ...W, limit: 1001 }, ['limit']],
    ['unaudited-reads', { from: W.from }, ['to']],
    ['unaudited-reads', { ...W, database: '', user: '' }, ['database', 'user']],
    ['unaudited-reads', { ...W, max_query_seconds: 86_401, skew_seconds: '5s' }, ['max_query_seconds', 'skew_seconds']],
    ['unaudited-read-entries', { ...W, db_session: '4242' }, ['db_session']],
    ['unaudited-read-entries', { from: W.to, to: W.from }, ['to']],
    ['unaudited-read-entries', { ...W, limit: -1 }, ['limit']],
    ['alerts', { action: 'alert,ignore' }, ['action.1']],
    ['alerts', { principal: '', table: 'a b' }, ['principal', 'table']],
    ['alerts', { from: 'yesterday' }, ['from']],
  ]

  it.each(cases)('%s %j names %j', async (name, params, names) => {
    const counted = counting(fx.store)
    const err = await thrown(runSavedQuery(counted.store, getSavedQuery(name), params, { context: SUBJECT_CONTEXT }))
    expect(err).toBeInstanceOf(QueryError)
    const { code, details } = err as QueryError
    expect(code).toBe('QUERY_PARAM_INVALID')
    expect((details?.['issues'] as { param: string }[]).map((i) => i.param).sort()).toEqual([...names].sort())
    expect(counted.calls()).toBe(0)
  })

  it('covers every saved query', () => {
    expect(new Set(cases.map(([name]) => name))).toEqual(new Set(SAVED_QUERIES.keys()))
  })

  it('refuses a subject-access report without subject keys, before any SQL', async () => {
    const counted = counting(fx.store)
    const err = await thrown(runSavedQuery(counted.store, subjectAccessReport, { subject: RECORD.rereadPatient }))
    expect(err).toBeInstanceOf(QueryError)
    expect((err as QueryError).code).toBe('QUERY_SUBJECTS_UNCONFIGURED')
    expect(counted.calls()).toBe(0)
  })

  it('counts the calls of a query that does run (the proxy sees them)', async () => {
    const counted = counting(fx.store)
    const answer = await runSavedQuery(counted.store, recordsTouchedByPrincipal, { principal: P.hostile })
    expect(answer.rows.length).toBeGreaterThan(0)
    // The rows and their sources: answered from access_log itself, nothing derived to re-check.
    expect(counted.calls()).toBe(2)
    const viaIndex = await runSavedQuery(counted.store, whoTouchedRecord, { table: 'applicants', record: RECORD.manyReaders })
    expect(viaIndex.rows.length).toBeGreaterThan(0)
    // The recorded tables the name resolves to, then through access_log's record key index: rows and sources.
    expect(counted.calls()).toBe(5)
    const viaView = await runSavedQuery(counted.store, getSavedQuery('breach-scope'), { principals: P.hostile, from: ALL_FROM, to: ALL_TO })
    expect(viaView.rows.length).toBeGreaterThan(0)
    // Rows, sources, and the check of the access_by_principal rows it read against access_log.
    expect(counted.calls()).toBe(8)
  })
})
