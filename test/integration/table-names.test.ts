import mysql from 'mysql2/promise'
import pg from 'pg'
import { beforeAll, describe, expect, it } from 'vitest'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { instrumentMysql2 } from '../../producers/hooks/mysql2.js'
import { instrumentPg } from '../../producers/hooks/pg.js'
import { createReadRecorder } from '../../producers/hooks/read-recorder.js'
import { getSavedQuery } from '../../queries/catalog.js'
import { recordedTablesSql } from '../../queries/table-names.js'
import { runSavedQuery, type AnySavedQuery } from '../../queries/saved-query.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { startHookPipeline, type HookPipeline } from '../helpers/hook-pipeline.js'
import { testLogger } from '../helpers/kafka.js'
import { createHookDatabase, type HookDatabase } from '../helpers/mariadb.js'
import { createPracticeDatabase, PG_CONNECTION } from '../helpers/postgres.js'
import { thrown } from '../helpers/thrown.js'

/**
 * Regression: the hook recorded `public.patients`, and `table=patients`
 * found nothing, `tables=public.patients` answered "VERIFIED: no matching
 * events" and `postgres.public.patients` was refused. Every saved query that
 * takes a table must find the same reads however the table is written, for
 * both drivers, and say "did you mean" when the name matches nothing.
 */
describe('table names round-trip from the hooks to every saved query', () => {
  let pipeline: HookPipeline
  let pgDb: string
  let maria: HookDatabase
  const from = new Date(Date.now() - 3_600_000).toISOString()
  const to = new Date(Date.now() + 3_600_000).toISOString()

  beforeAll(async () => {
    ;[pipeline, pgDb, maria] = await Promise.all([startHookPipeline(), createPracticeDatabase(), createHookDatabase(200, 20)])
    // As the README configures it, on a pool that names its database only in a connection string.
    const pgRecorder = createReadRecorder(pipeline.producer, { tables: { 'public.patients': {} } }, { logger: testLogger })
    const url = `postgres://${PG_CONNECTION.user}${PG_CONNECTION.password ? `:${PG_CONNECTION.password}` : ''}@${PG_CONNECTION.host}:${PG_CONNECTION.port}/${pgDb}`
    const pool = await instrumentPg(new pg.Pool({ connectionString: url, max: 2 }), pgRecorder)
    deferCleanup(() => pool.end())
    const myRecorder = createReadRecorder(pipeline.producer, { tables: { people: {} } }, { logger: testLogger })
    const conn = await instrumentMysql2(await mysql.createConnection(maria.options), myRecorder, { logger: testLogger })
    deferCleanup(() => conn.end())

    await runWithAuditContext({ principal: { id: 'clerk.pg' } }, () => pool.query('SELECT id, full_name FROM patients WHERE id IN (100001, 100002, 100003, 100004)'))
    await runWithAuditContext({ principal: { id: 'clerk.pg' }, purpose: 'care' }, () => pool.query('SELECT id, phone FROM patients WHERE id = 100001'))
    await runWithAuditContext({ principal: { id: 'clerk.my' } }, () => conn.query('SELECT id, full_name FROM people WHERE id IN (1, 2, 3)'))
    await pipeline.settle()
  })

  /** Rows of an answer, ordered as returned; each spelling must give exactly these. */
  const rows = async (query: AnySavedQuery, params: Record<string, unknown>) => (await runSavedQuery(pipeline.store, query, params)).rows

  const pgSpellings = () => ['patients', 'public.patients', `${pgDb}.public.patients`, `${pgDb}.patients`]
  const mySpellings = () => ['people', `${maria.database}.people`]

  const cases = (): [string, AnySavedQuery, (table: string) => Record<string, unknown>][] => [
    ['who-touched-record', getSavedQuery('who-touched-record'), (table) => ({ table, record: table.includes('people') ? '2' : '100001' })],
    ['records-touched-by-principal', getSavedQuery('records-touched-by-principal'), (table) => ({ principal: table.includes('people') ? 'clerk.my' : 'clerk.pg', table })],
    ['off-hours-access', getSavedQuery('off-hours-access'), (table) => ({ from, to, table, weekdays: 'mon', workday_start: '00:00', workday_end: '00:01' })],
    ['first-time-access', getSavedQuery('first-time-access'), (table) => ({ from, to, lookback_days: 1, table })],
    ['top-readers', getSavedQuery('top-readers'), (table) => ({ from, to, table })],
    ['reads-without-purpose', getSavedQuery('reads-without-purpose'), (table) => ({ from, to, tables: table })],
  ]

  it('records the database the pool is connected to, not `postgres`, and each table under its own database', async () => {
    const reads = await pipeline.storedReads()
    expect(new Set(reads.map((r) => `${r.db_name}|${r.table_name}`))).toEqual(new Set([`${pgDb}|public.patients`, `${maria.database}|people`]))
  })

  it.each(cases().map(([name, query, params]) => [name, query, params] as const))('%s finds the same reads however the table is written', async (_name, query, params) => {
    for (const spellings of [pgSpellings(), mySpellings()]) {
      const first = await rows(query, params(spellings[0]!))
      expect(first.length, `${query.name} ${spellings[0]}`).toBeGreaterThan(0)
      for (const spelling of spellings.slice(1)) expect(await rows(query, params(spelling)), `${query.name} ${spelling}`).toEqual(first)
    }
  })

  it.each(cases().map(([name, query, params]) => [name, query, params] as const))('%s refuses a misspelt table with QUERY_TABLE_UNKNOWN and a suggestion', async (_name, query, params) => {
    const err = await thrown(runSavedQuery(pipeline.store, query, params('patient')))
    expect(err).toMatchObject({ code: 'QUERY_TABLE_UNKNOWN', retriable: false })
    expect((err as { details: { suggestions: string[] } }).details.suggestions).toEqual([`${pgDb}.public.patients`])
    expect((err as Error).message).toContain(`did you mean "${pgDb}.public.patients"?`)
    const wrongDb = await thrown(runSavedQuery(pipeline.store, query, params(`${pgDb}x.public.patients`)))
    expect(wrongDb).toMatchObject({ code: 'QUERY_TABLE_UNKNOWN' })
  })

  it('looks the recorded tables up in access_log\'s p_days projection, not its events', async () => {
    const explain = async (sql: string, params: Record<string, unknown> = {}) => (await pipeline.store.queryRows<{ explain: string }>(`EXPLAIN ${sql}`, params)).map((r) => r.explain).join('\n')
    expect(await explain(recordedTablesSql(pipeline.store))).toContain('ReadFromMergeTree (p_days)')
    // The resolved-table filter keeps whole days on the projection too.
    const query = getSavedQuery('reads-without-purpose')
    const day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)
    const next = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10)
    const p = query.params.parse({ from: day, to: next, tables: 'patients' })
    const bound = { ...query.bind(p, { subjectKeys: new Map() }), db_names: [pgDb], table_names: ['public.patients'], limit_plus_one: 0 }
    // Whole days from p_days; only the edge days from the events.
    const reads = (await explain(query.sql(pipeline.store, p), bound)).split('\n').filter((l) => l.includes('ReadFromMergeTree'))
    expect(reads.filter((l) => l.includes('(p_days)'))).toHaveLength(1)
  })

  it('resolves a database parameter too, and names the recorded databases when it matches none', async () => {
    const both = await rows(getSavedQuery('top-readers'), { from, to, database: maria.database })
    expect(both.map((r) => r['principal_id'])).toEqual(['clerk.my'])
    const err = await thrown(runSavedQuery(pipeline.store, getSavedQuery('top-readers'), { from, to, database: `${maria.database}_x`, table: 'people' }))
    expect(err).toMatchObject({ code: 'QUERY_TABLE_UNKNOWN', details: { param: 'database', suggestions: [maria.database] } })
    const elsewhere = await thrown(runSavedQuery(pipeline.store, getSavedQuery('who-touched-record'), { table: 'patients', record: '100001', database: maria.database }))
    expect(elsewhere).toMatchObject({ code: 'QUERY_TABLE_UNKNOWN', details: { param: 'table' } })
  })

  it('answers reads-without-purpose from the reads that stated none (the regression that answered VERIFIED with nothing)', async () => {
    const answer = await rows(getSavedQuery('reads-without-purpose'), { from, to, tables: `public.patients,${maria.database}.people` })
    expect(answer.map((r) => [r['principal_id'], r['database'], r['table'], Number(r['reads'])])).toEqual([
      ['clerk.my', maria.database, 'people', 1],
      ['clerk.pg', pgDb, 'public.patients', 1],
    ])
  })
})
