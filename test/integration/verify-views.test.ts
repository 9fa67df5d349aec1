import { describe, expect, it } from 'vitest'
import { VIEW_CHECKS } from '../../integrity/collect-in-db.js'
import { verifyStore as verifyInDb } from '../../integrity/verify-store.js'
import type { Finding } from '../../integrity/report.js'
import type { Store } from '../../store/store.js'
import { seedChain } from '../helpers/seed-chain.js'
import { openTestStore } from '../helpers/store.js'

/**
 * Regression: verify checked only access_log, so deleting or editing rows in
 * the view tables the saved queries read hid a principal from them while
 * verify still said intact. The breach queries still read access_by_principal:
 * each attack below goes straight at it and must be reported at exactly its
 * chain and seq.
 */
describe('verify --in-db proves the view table holds exactly what access_log implies', () => {
  /** Record ids per event index: none, one, a repeated id, three distinct. */
  const recordIds = (i: number): string[] => {
    switch (i % 4) {
      case 0:
        return []
      case 1:
        return [`r${i}`]
      case 2:
        return [`r${i}`, `r${i + 1}`, `r${i}`]
      default:
        return [`r${i}`, `r${i + 1}`, `r${i + 2}`]
    }
  }

  async function seeded(): Promise<Store> {
    const store = await openTestStore()
    await seedChain(store, 'topic/0', 24, (i) => ({ principal_id: `p${i % 6}`, record_ids: recordIds(i), row_count: recordIds(i).length }))
    await seedChain(store, 'topic/1', 12, (i) => ({
      principal_id: `q${i}`,
      record_ids: recordIds(i + 1),
      on_behalf_of: i % 3 ? null : `citizen.${i}`,
      client_ip: i % 2 ? '2001:db8::7' : null,
      session_hash: i % 2 ? Buffer.alloc(32, i) : null,
      purpose: i % 2 ? null : 'case review',
    }))
    return store
  }
  const mutate = (store: Store, sql: string) => store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })
  const insert = (store: Store, sql: string) => store.client.command({ query: sql })
  const view = (chain_id: string, seq: number, detail: string): Finding => ({ chain_id, seq, kind: 'view_mismatch', detail })
  // seedChain numbers seqs from 1: event index i is seq i + 1.

  it('reports untouched views as intact, empty and repeated record ids included', async () => {
    const report = await verifyInDb(await seeded())
    expect(report.findings).toEqual([])
    expect(report.ok).toBe(true)
  })

  it('deleting one principal from access_by_principal is a missing row at each of its events', async () => {
    const store = await seeded()
    await mutate(store, `ALTER TABLE ${store.table('access_by_principal')} DELETE WHERE principal_id = 'p2'`)
    const report = await verifyInDb(store)
    expect(report.ok).toBe(false)
    expect(report.findings).toEqual([3, 9, 15, 21].map((seq) => view('topic/0', seq, 'access_by_principal: missing row')))
  })

  it('an edited access_by_principal row whose other columns are NULL differs from access_log', async () => {
    const store = await seeded()
    // Its on_behalf_of, purpose and session_hash are NULL: a digest built as
    // cityHash64(col, ...) is NULL for such rows and would miss the edit.
    await mutate(store, `ALTER TABLE ${store.table('access_by_principal')} UPDATE service = 'elsewhere' WHERE chain_id = 'topic/0' AND seq = 12`)
    expect((await verifyInDb(store)).findings).toEqual([view('topic/0', 12, 'access_by_principal: differs from access_log')])
  })

  it('tells NULL from an empty string, and array elements from their concatenation', async () => {
    const store = await seeded()
    const t = store.table('access_by_principal')
    // topic/1 seq 2 has on_behalf_of NULL; every event's columns are ['id', 'full_name'].
    await mutate(store, `ALTER TABLE ${t} UPDATE on_behalf_of = '' WHERE chain_id = 'topic/1' AND seq = 2`)
    await mutate(store, `ALTER TABLE ${t} UPDATE columns = ['idf', 'ull_name'] WHERE chain_id = 'topic/0' AND seq = 5`)
    const report = await verifyInDb(store)
    expect(report.findings).toEqual([
      view('topic/0', 5, 'access_by_principal: differs from access_log'),
      view('topic/1', 2, 'access_by_principal: differs from access_log'),
    ])
  })

  it('a duplicated access_by_principal row is an extra row', async () => {
    const store = await seeded()
    const t = store.table('access_by_principal')
    await insert(store, `INSERT INTO ${t} SELECT * FROM ${t} WHERE chain_id = 'topic/1' AND seq = 5`)
    expect((await verifyInDb(store)).findings).toEqual([view('topic/1', 5, 'access_by_principal: extra row')])
  })

  it('an edited access_by_principal row and a view row for a seq access_log never had are both found', async () => {
    const store = await seeded()
    const t = store.table('access_by_principal')
    await mutate(store, `ALTER TABLE ${t} UPDATE outcome = 'denied' WHERE chain_id = 'topic/0' AND seq = 10`)
    // A subquery: ClickHouse would resolve `seq` in the WHERE to the replaced value.
    await insert(store, `INSERT INTO ${t} SELECT * REPLACE (toUInt64(99) AS seq) FROM (SELECT * FROM ${t} WHERE chain_id = 'topic/1' AND seq = 1)`)
    expect((await verifyInDb(store)).findings).toEqual([
      view('topic/0', 10, 'access_by_principal: differs from access_log'),
      view('topic/1', 99, 'access_by_principal: extra row'),
    ])
  })

  it('lists at most maxFindings view mismatches and says the list was cut', async () => {
    const store = await seeded()
    await mutate(store, `ALTER TABLE ${store.table('access_by_principal')} DELETE WHERE chain_id = 'topic/0'`)
    const report = await verifyInDb(store, { maxFindings: 5 })
    expect(report.findings).toEqual([1, 2, 3, 4, 5].map((seq) => view('topic/0', seq, 'access_by_principal: missing row')))
    expect(report.findings_truncated).toBe(true)
  })

  it('checks every column of the view table as created by the schema', async () => {
    const store = await openTestStore()
    for (const check of VIEW_CHECKS) {
      const rows = await store.queryRows<{ name: string }>(
        'SELECT name FROM system.columns WHERE database = {db:String} AND table = {table:String} ORDER BY position',
        { db: store.database, table: check.table },
      )
      expect(rows.map((r) => r.name)).toEqual(check.columns)
    }
  })
})
