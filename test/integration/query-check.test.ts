import { describe, expect, it } from 'vitest'
import { SAVED_QUERIES, getSavedQuery } from '../../queries/catalog.js'
import { answerOf, executeSavedQuery, runSavedQuery, type QueryAnswer } from '../../queries/saved-query.js'
import { ALERT_TABLE, DB_AUDIT_TABLE, sideTableDdl, type SideTable } from '../../store/side-tables.js'
import type { Store } from '../../store/store.js'
import { ALL_FROM, ALL_TO, IP, openQueryFixture, P, RECORD, SESSION, SUBJECT_CONTEXT, type QueryFixture } from '../helpers/query-fixture.js'

/**
 * Saved queries answer from access_log itself where its projections or
 * record key indexes serve them (one principal's reads, per-day and
 * per-hour figures, who touched a record or a subject), and re-check at
 * query time the materialised-view rows they answered from otherwise
 * (breach leads by IP or session) against access_log for the answer's key
 * range. The attacks are an
 * insider's: SQL on the store that leaves access_log's rows (and so its
 * chain and checkpoints) untouched and changes only the view target table
 * or a projection or index of access_log, which incremental and
 * --skip-views verify runs never look at.
 */
const mutate = (store: Store, sql: string) => store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })
const quote = (s: string) => `'${s.replaceAll("\\", '\\\\').replaceAll("'", "\\'")}'`

const run = (store: Store, name: string, params: Record<string, unknown>): Promise<QueryAnswer<Record<string, unknown>>> =>
  runSavedQuery(store, getSavedQuery(name), params, { context: SUBJECT_CONTEXT, verifyState: null })

const scraperSession = SESSION.scrape1.toString('hex')

/** Typical parameters for every saved query, windows with edges off the hour and the day included. */
const TYPICAL: [string, Record<string, unknown>][] = [
  ['records-touched-by-principal', { principal: P.marta }],
  ['records-touched-by-principal', { principal: P.weber, table: 'patients', from: '2026-03-24T10:30:00Z', to: '2026-03-31T13:15:00Z', limit: 5 }],
  ['who-touched-record', { table: 'applicants', record: RECORD.manyReaders }],
  ['subject-access-report', { subject: RECORD.popularPatient }],
  ['subject-access-report', { subject: RECORD.owner }],
  ['breach-scope', { principals: P.marta, ips: IP.scraper, sessions: scraperSession, from: ALL_FROM, to: ALL_TO }],
  ['breach-records', { principals: P.vendor, from: ALL_FROM, to: ALL_TO }],
  ['breach-timeline', { ips: `${IP.martaNight},${IP.scraperAlt}`, from: ALL_FROM, to: ALL_TO, bucket: '15m' }],
  ['bulk-extraction', { from: '2026-03-31', to: '2026-04-01' }],
  ['bulk-extraction', { from: '2026-03-30T22:10:00Z', to: '2026-03-31T20:05:00Z', baseline_days: 3 }],
  ['off-hours-access', { from: ALL_FROM, to: ALL_TO }],
  ['first-time-access', { from: '2026-03-31', to: '2026-04-01', lookback_days: 7 }],
  ['first-time-access', { from: '2026-03-30T12:00:00Z', to: '2026-04-01T06:00:00Z', lookback_days: 5 }],
  ['reads-without-purpose', { tables: 'practice.patients,practice.treatments', from: ALL_FROM, to: ALL_TO }],
  ['principal-timeline', { principal: P.portal, bucket: '1d' }],
  ['top-readers', { from: ALL_FROM, to: ALL_TO }],
  ['top-readers', { from: '2026-03-25T06:00:00Z', to: '2026-03-31T18:00:00Z', database: 'practice', table: 'patients', limit: 3 }],
  ['unaudited-reads', { from: ALL_FROM, to: ALL_TO }],
  ['unaudited-read-entries', { from: ALL_FROM, to: ALL_TO, database: 'registry', user: 'app' }],
  ['alerts', {}],
  ['alerts', { from: ALL_FROM, to: ALL_TO, principal: P.marta, table: 'applicants', action: 'alert,refuse' }],
]

describe('query-time check: no false alarm', () => {
  it('an untampered store gives consistency ok for every saved query with typical parameters', async () => {
    const fx = await openQueryFixture()
    // The side streams' tables, as the consumer creates them: their queries read db_audit_log and alert_log.
    for (const table of [DB_AUDIT_TABLE, ALERT_TABLE]) await fx.store.client.command({ query: sideTableDdl(fx.store.table(table.table), table as SideTable<unknown>) })
    expect(new Set(TYPICAL.map(([name]) => name))).toEqual(new Set(SAVED_QUERIES.keys()))
    for (const [name, params] of TYPICAL) {
      const answer = await run(fx.store, name, params)
      expect(answer.consistency, `${name} ${JSON.stringify(params)}`).toEqual({ ok: true, problems: [] })
      expect(answer.provenance.status, name).not.toBe('failed')
    }
  })
})

/** The answer is failed, and its problem names the table and says rows are only in access_log. */
function expectFailed(answer: QueryAnswer<Record<string, unknown>>, table: string, how = 'only in access_log'): void {
  expect(answer.consistency?.ok, JSON.stringify(answer.consistency)).toBe(false)
  expect(answer.consistency?.problems.some((p) => p.startsWith(`${table} rows of`) && p.includes(how)), JSON.stringify(answer.consistency)).toBe(true)
  expect(answer.provenance.status).toBe('failed')
  expect(answer.provenance.summary).toMatch(/^FAILED VERIFICATION: /)
  expect(answer.provenance.summary).toContain(table)
}

describe('query-time check: a reader removed from the query-serving tables only', () => {
  let fx: QueryFixture

  it('access_by_principal: breach answers from the view fail, an empty one included; answers from access_log keep the reader', async () => {
    fx = await openQueryFixture()
    const before = await run(fx.store, 'records-touched-by-principal', { principal: P.marta, limit: 0 })
    expect(before.rows.length).toBeGreaterThan(0)
    expect(before.consistency).toEqual({ ok: true, problems: [] })
    const timeline = await run(fx.store, 'principal-timeline', { principal: P.marta })

    await mutate(fx.store, `ALTER TABLE ${fx.store.table('access_by_principal')} DELETE WHERE principal_id = ${quote(P.marta)}`)
    // Answered from access_log (its p_principal projection): the view's loss does not reach them.
    const kept = await run(fx.store, 'records-touched-by-principal', { principal: P.marta, limit: 0 })
    expect(kept.rows).toEqual(before.rows)
    expect(kept.consistency).toEqual({ ok: true, problems: [] })
    expect((await run(fx.store, 'principal-timeline', { principal: P.marta })).rows).toEqual(timeline.rows)
    // "No matching events" from the altered view: the absence is checked too.
    const gone = await run(fx.store, 'breach-scope', { principals: P.marta, from: ALL_FROM, to: ALL_TO })
    expectFailed(gone, 'access_by_principal')
    expectFailed(await run(fx.store, 'breach-records', { ips: IP.martaNight, from: ALL_FROM, to: ALL_TO }), 'access_by_principal')
    expectFailed(await run(fx.store, 'breach-timeline', { principals: `${P.vendor},${P.marta}`, from: ALL_FROM, to: ALL_TO }), 'access_by_principal')
    // The check covers the answer's key range, not the whole table.
    expect((await run(fx.store, 'breach-scope', { principals: P.anna, from: ALL_FROM, to: ALL_TO })).consistency).toEqual({ ok: true, problems: [] })
    // A window that holds none of her reads: nothing to miss.
    expect((await run(fx.store, 'breach-scope', { principals: P.marta, from: '2026-03-20T00:00:00Z', to: ALL_FROM })).consistency?.ok).toBe(true)
  })

  it('record key indexes: dropping, clearing or redefining one of access_log changes no record answer', async () => {
    fx = await openQueryFixture()
    const log = fx.store.table('access_log')
    const cases: [string, Record<string, unknown>][] = [
      ['who-touched-record', { table: 'applicants', record: RECORD.manyReaders }],
      ['subject-access-report', { subject: RECORD.popularPatient }],
      ['subject-access-report', { subject: RECORD.owner }],
    ]
    const before = await Promise.all(cases.map(([name, params]) => run(fx.store, name, params)))
    expect(before.every((a) => a.rows.length > 0)).toBe(true)
    // An insider's try at an index that hides a record: the engine builds an
    // index from the rows themselves, and uses one only where the query asks
    // for exactly its expression; without it the rows are read.
    await mutate(fx.store, `ALTER TABLE ${log} CLEAR INDEX record_parts_bf`)
    await mutate(fx.store, `ALTER TABLE ${log} DROP INDEX record_keys_bf`)
    await mutate(fx.store, `ALTER TABLE ${log} ADD INDEX record_keys_bf arrayMap(r -> concat(table_name, '/x'), record_ids) TYPE bloom_filter(0.01) GRANULARITY 1`)
    await mutate(fx.store, `ALTER TABLE ${log} MATERIALIZE INDEX record_keys_bf`)
    for (const [i, [name, params]] of cases.entries()) {
      const after = await run(fx.store, name, params)
      expect(after.rows, name).toEqual(before[i]!.rows)
      expect(after.consistency, name).toEqual({ ok: true, problems: [] })
    }
  })

  it('projections: dropping, clearing or redefining one of access_log changes no answer', async () => {
    fx = await openQueryFixture()
    const log = fx.store.table('access_log')
    const cases: [string, Record<string, unknown>][] = [
      ['records-touched-by-principal', { principal: P.marta, limit: 0 }],
      ['top-readers', { from: ALL_FROM, to: ALL_TO, limit: 50 }],
      ['bulk-extraction', { from: '2026-03-31', to: '2026-04-01' }],
    ]
    const before = await Promise.all(cases.map(([name, params]) => run(fx.store, name, params)))
    // An insider's try at a projection that answers differently: the engine
    // computes every projection from the rows themselves, and uses one only
    // where it holds exactly the expressions a query asks for.
    await mutate(fx.store, `ALTER TABLE ${log} CLEAR PROJECTION p_days`)
    await mutate(fx.store, `ALTER TABLE ${log} DROP PROJECTION p_principal`)
    await mutate(fx.store, `ALTER TABLE ${log} ADD PROJECTION p_principal (SELECT principal_id, occurred_at, db_name, table_name, columns, record_ids, seq, chain_id ORDER BY principal_id)`)
    await mutate(fx.store, `ALTER TABLE ${log} MATERIALIZE PROJECTION p_principal`)
    await mutate(fx.store, `ALTER TABLE ${log} DROP PROJECTION p_hours`)
    await mutate(fx.store, `ALTER TABLE ${log} ADD PROJECTION p_hours (SELECT toStartOfHour(occurred_at, 'UTC'), principal_id, chain_id, countIf(part_index = 0), sumIf(row_count, part_index = 1), min(seq), max(seq) GROUP BY toStartOfHour(occurred_at, 'UTC'), principal_id, chain_id)`)
    await mutate(fx.store, `ALTER TABLE ${log} MATERIALIZE PROJECTION p_hours`)
    for (const [i, [name, params]] of cases.entries()) {
      const after = await run(fx.store, name, params)
      expect(after.rows, name).toEqual(before[i]!.rows)
      expect(after.consistency, name).toEqual({ ok: true, problems: [] })
    }
  })

  it('a forged view row, and an edited one, are not in access_log and fail the answer', async () => {
    fx = await openQueryFixture()
    const view = fx.store.table('access_by_principal')
    await fx.store.client.command({ query: `INSERT INTO ${view} SELECT * REPLACE ('clerk.framed' AS principal_id) FROM (SELECT * FROM ${view} WHERE principal_id = ${quote(P.anna)} LIMIT 3)` })
    expectFailed(await run(fx.store, 'breach-scope', { principals: 'clerk.framed', from: ALL_FROM, to: ALL_TO }), 'access_by_principal', '3 not in access_log')
    // access_log has no such reader: the answers it serves say so.
    const framed = await run(fx.store, 'records-touched-by-principal', { principal: 'clerk.framed' })
    expect(framed.rows).toEqual([])
    expect(framed.consistency).toEqual({ ok: true, problems: [] })

    await mutate(fx.store, `ALTER TABLE ${view} UPDATE client_ip = toIPv6('203.0.113.9') WHERE principal_id = ${quote(P.anna)}`)
    expectFailed(await run(fx.store, 'breach-scope', { principals: P.anna, from: ALL_FROM, to: ALL_TO }), 'access_by_principal', 'differing')
  })
})

describe('query-time check: the verdict travels with the result', () => {
  it('a result from the owner socket without a consistency verdict, or with a malformed one, is failed', async () => {
    const fx = await openQueryFixture()
    const query = getSavedQuery('records-touched-by-principal')
    const params = { principal: P.anna }
    const result = await executeSavedQuery(fx.store, query, params, SUBJECT_CONTEXT)
    expect(answerOf(query, params, result, null).provenance.status).not.toBe('failed')
    const { consistency: _dropped, ...unchecked } = result
    expect(answerOf(query, params, unchecked, null).provenance.status).toBe('failed')
    expect(answerOf(query, params, { ...result, consistency: { ok: true, problems: ['x'] } }, null).provenance.status).toBe('failed')
    expect(answerOf(query, params, { ...result, consistency: { ok: 'yes' } as never }, null).provenance.status).toBe('failed')
  })
})
