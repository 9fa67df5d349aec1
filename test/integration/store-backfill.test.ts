import { describe, expect, it } from 'vitest'
import { BACKFILLED_INDEXES } from '../../store/ddl.js'
import { getSavedQuery } from '../../queries/catalog.js'
import { runSavedQuery } from '../../queries/saved-query.js'
import { openQueryFixture, RECORD, SUBJECT_CONTEXT } from '../helpers/query-fixture.js'

/**
 * A store written before access_log had its record key indexes gets them
 * when a newer readtrail opens it: added by the DDL and filled in for the
 * rows already stored, so the lookups skip granules on old parts too.
 */
describe('schema backfill: record key indexes', () => {
  it('an index missing from a store with rows is added and materialised for every stored part', async () => {
    const fx = await openQueryFixture()
    const log = fx.store.table('access_log')
    const params = { subject: RECORD.popularPatient }
    const before = await runSavedQuery(fx.store, getSavedQuery('subject-access-report'), params, { context: SUBJECT_CONTEXT, verifyState: null })
    for (const name of BACKFILLED_INDEXES) {
      await fx.store.client.command({ query: `ALTER TABLE ${log} DROP INDEX ${name}`, clickhouse_settings: { mutations_sync: '2' } })
    }
    expect(await indexes(fx.store)).toEqual([])

    await fx.store.ensureSchema()
    // The backfill is a background mutation: wait for it as an operator would.
    await waitFor(async () => (await pendingMutations(fx.store)) === 0)
    expect(await indexes(fx.store)).toEqual([...BACKFILLED_INDEXES].sort())
    const parts = await fx.store.queryRows<{ name: string; with_index: number }>(
      `SELECT name, secondary_indices_compressed_bytes > 0 AS with_index FROM system.parts WHERE database = {db:String} AND table = 'access_log' AND active`,
      { db: fx.store.database },
    )
    expect(parts.length).toBeGreaterThan(0)
    expect(parts.every((p) => Number(p.with_index) === 1)).toBe(true)
    const after = await runSavedQuery(fx.store, getSavedQuery('subject-access-report'), params, { context: SUBJECT_CONTEXT, verifyState: null })
    expect(after.rows).toEqual(before.rows)
  })

  it('a fresh store queues no backfill', async () => {
    const fx = await openQueryFixture()
    await fx.store.ensureSchema()
    expect(await pendingMutations(fx.store)).toBe(0)
    const done = await fx.store.queryRows<{ n: number }>(`SELECT count() AS n FROM system.mutations WHERE database = {db:String}`, { db: fx.store.database })
    expect(Number(done[0]?.n)).toBe(0)
  })
})

type TestStore = Awaited<ReturnType<typeof openQueryFixture>>['store']

async function indexes(store: TestStore): Promise<string[]> {
  const rows = await store.queryRows<{ name: string }>(
    `SELECT name FROM system.data_skipping_indices WHERE database = {db:String} AND table = 'access_log' AND has({names:Array(String)}, name) ORDER BY name`,
    { db: store.database, names: [...BACKFILLED_INDEXES] },
  )
  return rows.map((r) => r.name)
}

async function pendingMutations(store: TestStore): Promise<number> {
  const rows = await store.queryRows<{ n: number }>(`SELECT count() AS n FROM system.mutations WHERE database = {db:String} AND NOT is_done`, { db: store.database })
  return Number(rows[0]?.n)
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the backfill')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
