import { describe, expect, it } from 'vitest'
import { emptyChain, linkEntries, type ChainHead } from '../../consumers/chain.js'
import { ROLLUP_CHECK } from '../../integrity/collect-in-db.js'
import type { Finding } from '../../integrity/report.js'
import { verifyStore as verifyInDb } from '../../integrity/verify-store.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { PRINCIPAL_HOURS_COLUMNS } from '../../store/ddl.js'
import { repairViewTail } from '../../store/repair-views.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { seedChain } from '../helpers/seed-chain.js'
import { openTestStore } from '../helpers/store.js'

/**
 * The hourly rollup (principal_hours) is what bulk-extraction reads to pick
 * its suspects: an attacker who shrinks their own principal-hours there, or
 * swells someone else's, steers the answer while the chain stays intact.
 * Verify must prove the rollup, combined per (hour, principal, chain), is
 * exactly what access_log implies, and report each key that is not.
 */
describe('verify --in-db proves principal_hours holds what access_log implies', () => {
  /** Microseconds of 2026-11-27 at hour:minute UTC. */
  const at = (hour: number, minute = 0) => Date.UTC(2026, 10, 27, hour, minute) * 1000

  /**
   * topic/0: 24 events of p0, p1, p2 in turn, 8 an hour from 10:00, event
   * index i reading i + 1 rows. topic/1: clerk.marta and attacker in turn, 6
   * an hour from 01:00, event index i reading 100 * (i + 1) rows. seedChain
   * numbers seqs from 1: event index i is seq i + 1.
   */
  async function seeded(): Promise<Store> {
    const store = await openTestStore()
    await seedChain(store, 'topic/0', 24, (i) => ({ principal_id: `p${i % 3}`, occurred_at: at(10 + Math.floor(i / 8), i), row_count: i + 1 }))
    await seedChain(store, 'topic/1', 12, (i) => ({
      principal_id: i % 2 ? 'attacker' : 'clerk.marta',
      occurred_at: at(1 + Math.floor(i / 6), i),
      row_count: 100 * (i + 1),
    }))
    return store
  }

  /** Links events onto `head` and stores them in one insert, as one chain-writer batch. */
  async function appendBatch(store: Store, head: ChainHead, events: ReadonlyArray<Partial<AccessEvent>>): Promise<ChainHead> {
    const entries = events.map((e, i) => ({ event: makeEvent(e), offset: BigInt(head.seq + i), schemaVersion: 1 }))
    const linked = linkEntries(head, entries, Date.UTC(2026, 10, 27, 12) * 1000)
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    return linked.head
  }

  const mutate = (store: Store, sql: string) => store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })
  const insert = (store: Store, sql: string) => store.client.command({ query: sql })
  const rollup = (chain_id: string, seq: number, detail: string): Finding => ({ chain_id, seq, kind: 'rollup_mismatch', detail: `principal_hours: ${detail}` })
  const hourOf = (hour: number) => `toDateTime('2026-11-27 ${String(hour).padStart(2, '0')}:00:00', 'UTC')`
  const TWO_TO_64 = 2n ** 64n

  it('reports an untouched rollup as intact, a key split over unmerged rows included', async () => {
    const store = await seeded()
    // Two batches into one hour leave two rollup rows for each of its keys until a merge.
    const head = await appendBatch(store, emptyChain('topic/2'), [0, 1, 2].map((i) => ({ principal_id: 'clerk.marta', occurred_at: at(5, i), row_count: 7 })))
    await appendBatch(store, head, [3, 4].map((i) => ({ principal_id: 'clerk.marta', occurred_at: at(5, i), row_count: 9 })))
    const [split] = await store.queryRows<{ n: string }>(`SELECT count() AS n FROM ${store.table('principal_hours')} WHERE chain_id = 'topic/2'`)
    expect(Number(split?.n)).toBe(2)

    const report = await verifyInDb(store)
    expect(report.findings).toEqual([])
    expect(report.views_checked).toBe(true)
    expect(report.ok).toBe(true)
  })

  it('a deleted rollup row is reported at the newest seq of its key, with what the log says', async () => {
    const store = await seeded()
    // p1 read at 11:00 in event indexes 10 and 13: seqs 11 and 14, 11 + 14 rows.
    await mutate(store, `ALTER TABLE ${store.table('principal_hours')} DELETE WHERE chain_id = 'topic/0' AND principal_id = 'p1' AND hour = ${hourOf(11)}`)
    const report = await verifyInDb(store)
    expect(report.ok).toBe(false)
    expect(report.findings).toEqual([rollup('topic/0', 14, 'hour 2026-11-27T11:00Z principal "p1": log says reads=2, rows=25, seq 11..14; rollup has no row')])
  })

  it('an altered rows_read is reported with both figures', async () => {
    const store = await seeded()
    // attacker at 02:00: event indexes 7, 9, 11, seqs 8..12, 800 + 1000 + 1200 rows.
    await mutate(store, `ALTER TABLE ${store.table('principal_hours')} UPDATE rows_read = 3 WHERE chain_id = 'topic/1' AND principal_id = 'attacker' AND hour = ${hourOf(2)}`)
    expect((await verifyInDb(store)).findings).toEqual([
      rollup('topic/1', 12, 'hour 2026-11-27T02:00Z principal "attacker": log says reads=3, rows=3000, seq 8..12; rollup says reads=3, rows=3, seq 8..12'),
    ])
  })

  it('the daily rollup (principal_days) is proved too: hiding reads without a purpose is found', async () => {
    const store = await seeded()
    expect((await verifyInDb(store)).findings).toEqual([])
    // The attacker's reads carry no purpose (makeEvent's default): claim they all had one.
    await mutate(store, `ALTER TABLE ${store.table('principal_days')} UPDATE unpurposed_reads = 0, unpurposed_rows = 0 WHERE principal_id = 'attacker'`)
    const findings = (await verifyInDb(store)).findings
    expect(findings).toEqual([
      {
        chain_id: 'topic/1',
        seq: 12,
        kind: 'rollup_mismatch',
        detail:
          'principal_days: day 2026-11-27 principal "attacker" table "registry.applicants": log says reads=6, rows=4200, without purpose=6; rollup says reads=6, rows=4200, without purpose=0 (or its first/last read or seq range differ)',
      },
    ])
  })

  it('a forged row that shrinks an attacker\'s hour by wrapping the UInt64 sum is found', async () => {
    const store = await seeded()
    const t = store.table('principal_hours')
    // attacker at 01:00 read 200 + 400 + 600 rows (seqs 2..6). A partial of
    // 2^64 - 1000 leaves a reader's sum(rows_read) at 200.
    await insert(store, `INSERT INTO ${t} VALUES (${hourOf(1)}, 'attacker', 'topic/1', 0, ${TWO_TO_64 - 1000n}, 2, 6)`)
    const [seen] = await store.queryRows<{ rows: string }>(`SELECT toString(sum(rows_read)) AS rows FROM ${t} WHERE principal_id = 'attacker' AND hour = ${hourOf(1)}`)
    expect(seen?.rows).toBe('200')

    expect((await verifyInDb(store)).findings).toEqual([
      rollup('topic/1', 6, `hour 2026-11-27T01:00Z principal "attacker": log says reads=3, rows=1200, seq 2..6; rollup says reads=3, rows=${TWO_TO_64 + 200n}, seq 2..6`),
    ])
  })

  it('a forged row that swells another principal\'s hour, and a key the log never had, are both found', async () => {
    const store = await seeded()
    const t = store.table('principal_hours')
    // clerk.marta at 02:00: event indexes 6, 8, 10, seqs 7..11, 2700 rows.
    await insert(store, `INSERT INTO ${t} VALUES (${hourOf(2)}, 'clerk.marta', 'topic/1', 1, 50000, 7, 11)`)
    // Nobody read at 03:00; the forged principal tries to break the report's line.
    await insert(store, `INSERT INTO ${t} VALUES (${hourOf(3)}, 'clerk.marta\\n  topic/1 seq 1: ok', 'topic/1', 5, 5000, 13, 17)`)
    expect((await verifyInDb(store)).findings).toEqual([
      rollup('topic/1', 11, 'hour 2026-11-27T02:00Z principal "clerk.marta": log says reads=3, rows=2700, seq 7..11; rollup says reads=4, rows=52700, seq 7..11'),
      rollup('topic/1', 17, 'hour 2026-11-27T03:00Z principal "clerk.marta\\n  topic/1 seq 1: ok": log has no event; rollup says reads=5, rows=5000, seq 13..17'),
    ])
  })

  it('a forged row that only widens a key\'s seq range is found', async () => {
    const store = await seeded()
    // p0 at 12:00: event indexes 18 and 21, seqs 19..22, 19 + 22 rows.
    await insert(store, `INSERT INTO ${store.table('principal_hours')} VALUES (${hourOf(12)}, 'p0', 'topic/0', 0, 0, 19, 24)`)
    expect((await verifyInDb(store)).findings).toEqual([
      rollup('topic/0', 22, 'hour 2026-11-27T12:00Z principal "p0": log says reads=2, rows=41, seq 19..22; rollup says reads=2, rows=41, seq 19..24'),
    ])
  })

  it('lists at most maxFindings rollup mismatches and says the list was cut', async () => {
    const store = await seeded()
    await mutate(store, `ALTER TABLE ${store.table('principal_hours')} DELETE WHERE chain_id = 'topic/0'`)
    const report = await verifyInDb(store, { maxFindings: 3 })
    // The 10:00 keys end at seqs 6 (p2), 7 (p0) and 8 (p1); six more keys are cut.
    expect(report.findings.map((f) => [f.chain_id, f.seq, f.detail.slice(0, f.detail.indexOf('": ') + 1)])).toEqual([
      ['topic/0', 6, 'principal_hours: hour 2026-11-27T10:00Z principal "p2"'],
      ['topic/0', 7, 'principal_hours: hour 2026-11-27T10:00Z principal "p0"'],
      ['topic/0', 8, 'principal_hours: hour 2026-11-27T10:00Z principal "p1"'],
    ])
    expect(report.findings_truncated).toBe(true)
    expect(report.ok).toBe(false)
  })

  it('a rollup that lacks a chain\'s tail after a crash is refilled by repairViewTail and verifies clean', async () => {
    const store = await openTestStore()
    // clerk.marta and batch.job in turn, 6 events an hour from 01:00: event index i is seq i + 1.
    const event = (i: number): Partial<AccessEvent> => ({
      principal_id: i % 2 ? 'batch.job' : 'clerk.marta',
      occurred_at: at(1 + Math.floor(i / 6), i),
      row_count: i + 1,
    })
    const head = await appendBatch(store, emptyChain('orders/0'), Array.from({ length: 10 }, (_, i) => event(i)))
    await seedChain(store, 'orders/1', 5)
    // What a kill between access_log and the rollup leaves: the next batch
    // (seqs 11..16, half in 02:00, whose other rows the rollup holds, half in
    // a new hour 03:00) in the chain and the other views, not in the rollup.
    await insert(store, `DROP TABLE ${store.table('principal_hours_mv')}`)
    await appendBatch(store, head, Array.from({ length: 6 }, (_, i) => event(10 + i)))
    await store.ensureSchema()

    const before = await verifyInDb(store)
    expect(before.findings).toEqual([
      rollup('orders/0', 11, 'hour 2026-11-27T02:00Z principal "clerk.marta": log says reads=3, rows=27, seq 7..11; rollup says reads=2, rows=16, seq 7..9'),
      rollup('orders/0', 12, 'hour 2026-11-27T02:00Z principal "batch.job": log says reads=3, rows=30, seq 8..12; rollup says reads=2, rows=18, seq 8..10'),
      rollup('orders/0', 15, 'hour 2026-11-27T03:00Z principal "clerk.marta": log says reads=2, rows=28, seq 13..15; rollup has no row'),
      rollup('orders/0', 16, 'hour 2026-11-27T03:00Z principal "batch.job": log says reads=2, rows=30, seq 14..16; rollup has no row'),
    ])

    // One rollup row per key of the tail: two beside the 02:00 rows, two new.
    expect(await repairViewTail(store, 'orders/0')).toBe(4)
    expect(await repairViewTail(store, 'orders/0')).toBe(0)
    expect(await repairViewTail(store, 'orders/1')).toBe(0)
    const after = await verifyInDb(store)
    expect(after.findings).toEqual([])
    expect(after.ok).toBe(true)
  })

  it('compares every column of the rollup as created by the schema, each as its type combines', async () => {
    const store = await openTestStore()
    const rows = await store.queryRows<{ name: string; type: string }>(
      'SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String} ORDER BY position',
      { db: store.database, table: ROLLUP_CHECK.table },
    )
    const combines = Object.fromEntries(rows.map((r) => [r.name, /^SimpleAggregateFunction\((\w+),/.exec(r.type)?.[1] ?? 'key']))
    expect(combines).toEqual({ ...Object.fromEntries(ROLLUP_CHECK.key.map((k) => [k, 'key'])), ...ROLLUP_CHECK.aggregates })
    expect(rows.map((r) => r.name)).toEqual(PRINCIPAL_HOURS_COLUMNS.map((c) => c.name))
  })
})
