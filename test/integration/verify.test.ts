import { describe, expect, it } from 'vitest'
import { verifyStore as verifyInDb } from '../../integrity/verify-store.js'
import type { Store } from '../../store/store.js'
import { seedChain } from '../helpers/seed-chain.js'
import { openTestStore } from '../helpers/store.js'

/**
 * The in-database verifier against real edits made with ClickHouse's own
 * mutations. (The full red-team suite with signed checkpoints is a later
 * milestone; these are the damages a chain alone must reveal.)
 *
 * Materialised views copy rows on INSERT only: an ALTER UPDATE or DELETE on
 * access_log leaves access_by_principal as it was, so each in-place edit
 * below is also a view_mismatch at the same seq — the
 * saved queries would still show the pre-edit rows. Attacks on the view
 * tables themselves are in verify-views.test.ts.
 */
describe('verify --in-db finds damage by chain and sequence number', () => {
  async function seeded(): Promise<Store> {
    const store = await openTestStore()
    await seedChain(store, 'topic/0', 40)
    await seedChain(store, 'topic/1', 25, (i) => ({ principal_id: `p${i}`, client_ip: i % 2 ? '2001:db8::7' : null, session_hash: Buffer.alloc(32, i) }))
    return store
  }
  const mutate = (store: Store, sql: string) => store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })
  const view = (chain_id: string, seq: number, detail: string) => ({ chain_id, seq, kind: 'view_mismatch', detail })

  it('reports an untouched log as intact', async () => {
    const report = await verifyInDb(await seeded())
    expect(report.ok).toBe(true)
    expect(report.rows_verified).toBe(65)
    expect(report.chains.map((c) => [c.chain_id, c.first_seq, c.last_seq])).toEqual([
      ['topic/0', 1, 40],
      ['topic/1', 1, 25],
    ])
  })

  it('an edited column is a hash mismatch at exactly that row', async () => {
    const store = await seeded()
    await mutate(store, `ALTER TABLE ${store.table('access_log')} UPDATE principal_id = 'mallory' WHERE chain_id = 'topic/1' AND seq = 7`)
    const report = await verifyInDb(store)
    expect(report.ok).toBe(false)
    expect(report.findings).toEqual([
      { chain_id: 'topic/1', seq: 7, kind: 'hash_mismatch', detail: expect.any(String) },
      // The view still holds the original principal.
      view('topic/1', 7, 'access_by_principal: differs from access_log'),
    ])
  })

  it('an edited record id list is caught even though the views were not touched', async () => {
    const store = await seeded()
    await mutate(store, `ALTER TABLE ${store.table('access_log')} UPDATE record_ids = ['1'] WHERE chain_id = 'topic/0' AND seq = 40`)
    expect((await verifyInDb(store)).findings).toEqual([
      { chain_id: 'topic/0', seq: 40, kind: 'hash_mismatch', detail: expect.any(String) },
      // The untouched view still holds record_ids ['1', '2'].
      view('topic/0', 40, 'access_by_principal: differs from access_log'),
    ])
  })

  it('a deleted middle row is named as deleted, at its own seq', async () => {
    const store = await seeded()
    await mutate(store, `ALTER TABLE ${store.table('access_log')} DELETE WHERE chain_id = 'topic/0' AND seq = 13`)
    const findings = (await verifyInDb(store)).findings
    expect(findings.map((f) => [f.chain_id, f.seq, f.kind])).toEqual([
      ['topic/0', 13, 'deleted_rows'],
      // The deleted row's view copy remains: an extra row at seq 13.
      ['topic/0', 13, 'view_mismatch'],
    ])
    expect(findings.slice(1).map((f) => f.detail)).toEqual(['access_by_principal: extra row'])
    expect(findings[0]!.detail).toBe('seq 13 is missing')
  })

  it('deleted first rows are a gap from the start of the chain', async () => {
    const store = await seeded()
    await mutate(store, `ALTER TABLE ${store.table('access_log')} DELETE WHERE chain_id = 'topic/1' AND seq <= 3`)
    const findings = (await verifyInDb(store)).findings
    expect(findings.map((f) => [f.chain_id, f.seq, f.kind])).toEqual([
      ['topic/1', 1, 'deleted_rows'],
      // The deleted rows' view copies remain: extra rows in the view.
      ...[1, 2, 3].map((seq) => ['topic/1', seq, 'view_mismatch']),
    ])
    expect(findings[0]!.detail).toBe('seqs 1..3 are missing (3 rows)')
  })

  it('a duplicated row is reported as a duplicate at its seq', async () => {
    const store = await seeded()
    await store.client.command({ query: `INSERT INTO ${store.table('access_log')} SELECT * FROM ${store.table('access_log')} WHERE chain_id = 'topic/0' AND seq = 20` })
    const findings = (await verifyInDb(store)).findings
    // The INSERT fired the views, which copied the duplicate too: they still
    // match access_log, so only the chain check reports it.
    expect(findings.map((f) => [f.chain_id, f.seq, f.kind])).toEqual([
      ['topic/0', 20, 'duplicate_row'],
      // Its producer's only event is stored twice.
      ['topic/0', 20, 'producer_duplicate'],
    ])
  })

  it('a row edited and re-hashed is named at its own seq: the next row committed to its old hash', async () => {
    const store = await seeded()
    const t = store.table('access_log')
    // The attacker edits a row and recomputes its hash in SQL: the row checks
    // out on its own, but the next row still points at the old hash.
    await mutate(store, `ALTER TABLE ${t} UPDATE principal_id = 'mallory' WHERE chain_id = 'topic/0' AND seq = 5`)
    const { HASH_SQL } = await import('../../store/access-log-columns.js')
    await mutate(store, `ALTER TABLE ${t} UPDATE hash = ${HASH_SQL} WHERE chain_id = 'topic/0' AND seq = 5`)
    const findings = (await verifyInDb(store)).findings
    expect(findings.map((f) => [f.chain_id, f.seq, f.kind])).toEqual([
      ['topic/0', 5, 'rewritten_row'],
      // The view still holds the original principal at seq 5.
      ['topic/0', 5, 'view_mismatch'],
    ])
  })

  it('lists at most maxFindings and says the list was cut', async () => {
    const store = await seeded()
    await mutate(store, `ALTER TABLE ${store.table('access_log')} UPDATE service = 'x' WHERE chain_id = 'topic/0'`)
    const report = await verifyInDb(store, { maxFindings: 10 })
    expect(report.findings).toHaveLength(10)
    expect(report.findings_truncated).toBe(true)
  })
})
