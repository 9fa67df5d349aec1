import { describe, expect, it } from 'vitest'
import { emptyChain, linkEntries, type ChainHead } from '../../consumers/chain.js'
import { verifyStore } from '../../integrity/verify-store.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { repairViewTail } from '../../store/repair-views.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { seedChain } from '../helpers/seed-chain.js'
import { openTestStore } from '../helpers/store.js'

/** Links events onto `head` and stores them in one insert, as one chain-writer batch. */
async function appendBatch(store: Store, head: ChainHead, events: ReadonlyArray<Partial<AccessEvent>>): Promise<ChainHead> {
  const entries = events.map((e, i) => ({ event: makeEvent(e), offset: BigInt(head.seq + i), schemaVersion: 1 }))
  const linked = linkEntries(head, entries, Date.UTC(2026, 10, 27, 12) * 1000)
  await store.insertRowBinary('access_log', linked.rows, linked.count)
  return linked.head
}

/**
 * Regression: a chain writer killed (SIGKILL) after ClickHouse stored a batch
 * in access_log but before it reached the query view left the view short;
 * the restarted writer skipped those events as already stored, and verify
 * reported view mismatches for a log nobody tampered with.
 */
describe('repairViewTail', () => {
  it('completes the view when it lacks a chain\'s newest rows, and nothing else', async () => {
    const store = await openTestStore()
    await seedChain(store, 'orders/0', 40, (i) => ({ record_ids: i % 5 === 0 ? [] : [`${i}`, `${i + 1}`] }))
    await seedChain(store, 'orders/1', 10)
    // What a kill between tables leaves: the newest rows of one chain missing from the view.
    await store.client.command({ query: `ALTER TABLE ${store.table('access_by_principal')} DELETE WHERE chain_id = 'orders/0' AND seq > 33`, clickhouse_settings: { mutations_sync: '2' } })
    expect((await verifyStore(store)).findings.map((f) => f.kind)).toContain('view_mismatch')
    expect(await repairViewTail(store, 'orders/0')).toBeGreaterThan(0)
    expect(await repairViewTail(store, 'orders/0')).toBe(0)
    expect(await repairViewTail(store, 'orders/1')).toBe(0)
    const report = await verifyStore(store)
    expect(report.findings).toEqual([])
    expect(report.views_checked).toBe(true)
  })

  it('completes the view when a batch reached access_log alone', async () => {
    const store = await openTestStore()
    // Two principals in turn, 6 events an hour from 01:00; event index i is seq i + 1.
    const event = (i: number): Partial<AccessEvent> => ({
      principal_id: i % 2 ? 'batch.job' : 'clerk.marta',
      occurred_at: Date.UTC(2026, 10, 27, 1 + Math.floor(i / 6), i) * 1000,
      record_ids: [`${i}`],
      row_count: 1,
    })
    const head = await appendBatch(store, emptyChain('orders/0'), Array.from({ length: 9 }, (_, i) => event(i)))
    // A kill right after access_log took the next batch (seqs 10..14: the
    // rest of 02:00 and 03:00).
    await store.client.command({ query: `DROP TABLE ${store.table('access_by_principal_mv')}` })
    await appendBatch(store, head, Array.from({ length: 5 }, (_, i) => event(9 + i)))
    await store.ensureSchema()

    const damaged = await verifyStore(store)
    expect(damaged.findings.map((f) => [f.seq, f.detail])).toEqual([10, 11, 12, 13, 14].map((seq) => [seq, 'access_by_principal: missing row']))
    expect(await repairViewTail(store, 'orders/0')).toBe(5)
    expect(await repairViewTail(store, 'orders/0')).toBe(0)
    const report = await verifyStore(store)
    expect(report.findings).toEqual([])
    expect(report.ok).toBe(true)
  })
})
