import { describe, expect, it } from 'vitest'
import { verifyStore } from '../../integrity/verify-store.js'
import { repairViewTail } from '../../store/repair-views.js'
import { seedChain } from '../helpers/seed-chain.js'
import { openTestStore } from '../helpers/store.js'

/**
 * Regression: a chain writer killed (SIGKILL) after ClickHouse stored a batch
 * in access_log but before it reached both query views left the views short;
 * the restarted writer skipped those events as already stored, and verify
 * reported view mismatches for a log nobody tampered with.
 */
describe('repairViewTail', () => {
  it('completes views that lack a chain\'s newest rows, and nothing else', async () => {
    const store = await openTestStore()
    await seedChain(store, 'orders/0', 40, (i) => ({ record_ids: i % 5 === 0 ? [] : [`${i}`, `${i + 1}`] }))
    await seedChain(store, 'orders/1', 10)
    // What a kill between tables leaves: the newest rows of one chain missing from the views.
    for (const view of ['access_by_principal', 'record_access']) {
      await store.client.command({ query: `ALTER TABLE ${store.table(view)} DELETE WHERE chain_id = 'orders/0' AND seq > 33`, clickhouse_settings: { mutations_sync: '2' } })
    }
    expect((await verifyStore(store)).findings.map((f) => f.kind)).toContain('view_mismatch')
    expect(await repairViewTail(store, 'orders/0')).toBeGreaterThan(0)
    expect(await repairViewTail(store, 'orders/0')).toBe(0)
    expect(await repairViewTail(store, 'orders/1')).toBe(0)
    const report = await verifyStore(store)
    expect(report.findings).toEqual([])
    expect(report.views_checked).toBe(true)
  })
})
