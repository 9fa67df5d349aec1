import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { emptyChain, linkEntries, type ChainedBatch } from '../../consumers/chain.js'
import { verifyStore } from '../../integrity/verify-store.js'
import { ACCESS_LOG_COLUMNS, HASH_COLUMN, HASH_SQL, STORED_COLUMN_NAMES } from '../../store/access-log-columns.js'
import { PRINCIPAL_DAYS_COLUMNS, PRINCIPAL_HOURS_COLUMNS } from '../../store/ddl.js'
import { isDataError, StoreError } from '../../store/errors.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { seedChain } from '../helpers/seed-chain.js'
import { openTestStore, releaseTestStore, testDataDir } from '../helpers/store.js'
import { thrown } from '../helpers/thrown.js'

/**
 * The embedded engine's RowBinary insert: chDB's client reads insert bodies
 * as text, so the bytes go through a private file read FROM INFILE. What
 * lands must be the bytes linkEntries hashed, the file must not outlive the
 * insert, and a row ClickHouse refuses must stay a data error (the writer
 * then stores rows one by one and dead-letters the refused one).
 */
describe('insertRowBinary on the embedded engine', () => {
  const link = (chainId: string, n: number): ChainedBatch =>
    linkEntries(emptyChain(chainId), Array.from({ length: n }, (_, i) => ({ event: makeEvent({ principal_id: `clerk-${i}` }), offset: BigInt(i), schemaVersion: 1 })), Date.now() * 1000)

  /** The insert directories in the test's data directory, with the files in each. */
  const insertDirs = () =>
    readdirSync(testDataDir())
      .filter((name) => name.startsWith('readtrail-insert-'))
      .map((name) => ({ path: join(testDataDir(), name), files: readdirSync(join(testDataDir(), name)) }))

  const count = async (store: Store) => Number((await store.queryRows<{ n: number }>(`SELECT count() AS n FROM ${store.table('access_log')}`))[0]?.n)

  it('stores the bytes that were hashed: every row re-hashes to its stored hash, and reads back byte for byte', async () => {
    const store = await openTestStore()
    const linked = link('rb/0', 50)
    await store.insertRowBinary('access_log', linked.rows, linked.count)

    const rows = await store.queryRows<{ stored: string; recomputed: string; bytes: string }>(
      `SELECT hex(hash) AS stored, hex(${HASH_SQL}) AS recomputed, hex(formatRow('RowBinary', ${STORED_COLUMN_NAMES.join(', ')})) AS bytes
       FROM ${store.table('access_log')} ORDER BY seq`,
    )
    expect(rows).toHaveLength(50)
    for (const r of rows) expect(r.recomputed).toBe(r.stored)
    expect(rows.map((r) => r.bytes).join('')).toBe(linked.rows.toString('hex').toUpperCase())
    expect(rows.at(-1)!.stored.toLowerCase()).toBe(linked.head.hash.toString('hex'))
  })

  it('reads back a row whose last byte is 0x0A whole (formatRowNoNewline would drop it)', async () => {
    const store = await openTestStore()
    // Link one-event chains until the hash (the row's last 32 bytes) ends in
    // a newline byte: 1 in 256, so a few hundred tries at most.
    let linked = link('rb/nl', 1)
    for (let i = 0; linked.head.hash.at(-1) !== 0x0a; i++) {
      if (i > 10_000) throw new Error('no hash ending in 0x0A in 10,000 tries')
      linked = link('rb/nl', 1)
    }
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    const [row] = await store.queryRows<{ exact: string; stripped: string }>(
      `SELECT hex(formatRow('RowBinary', ${STORED_COLUMN_NAMES.join(', ')})) AS exact,
              hex(formatRowNoNewline('RowBinary', ${STORED_COLUMN_NAMES.join(', ')})) AS stripped
       FROM ${store.table('access_log')}`,
    )
    expect(row!.exact).toBe(linked.rows.toString('hex').toUpperCase())
    expect(row!.stripped).toBe(linked.rows.subarray(0, -1).toString('hex').toUpperCase())
  })

  it('feeds the materialised view as the old JSON path did', async () => {
    const store = await openTestStore()
    const linked = link('rb/1', 7)
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    const [view] = await store.queryRows<{ n: number }>(`SELECT count() AS n FROM ${store.table('access_by_principal')}`)
    expect(Number(view!.n)).toBe(7)
  })

  it('removes its file after the insert, in a directory only this user can enter', async () => {
    const store = await openTestStore()
    const linked = link('rb/2', 3)
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    const dirs = insertDirs()
    expect(dirs).toHaveLength(1)
    expect(dirs[0]!.files).toEqual([])
    expect(statSync(dirs[0]!.path).mode & 0o777).toBe(0o700)
  })

  it('inserts nothing for no rows', async () => {
    const store = await openTestStore()
    await store.insertRowBinary('access_log', Buffer.alloc(0), 0)
    expect(await count(store)).toBe(0)
  })

  it('refuses a batch with a malformed row as a data error, stores none of it, and removes the file', async () => {
    const store = await openTestStore()
    const good = link('rb/3', 2)
    // The last row's producer_id (the last string before producer_seq and
    // hash) declares more bytes than the batch holds.
    const malformed = good.rows.subarray(0, good.rows.length - 32 - 8 - 2)
    const err = await thrown(store.insertRowBinary('access_log', malformed, 2))
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('STORE_REJECTED')
    expect(isDataError(err)).toBe(true)
    expect(await count(store)).toBe(0)
    expect(insertDirs().flatMap((d) => d.files)).toEqual([])

    // The same rows, well formed, go in: the refusal was the bytes, not the store.
    await store.insertRowBinary('access_log', good.rows, good.count)
    expect(await count(store)).toBe(2)
  })

  it('a row a constraint refuses is a data error too', async () => {
    const store = await openTestStore()
    await store.client.command({ query: `ALTER TABLE ${store.table('access_log')} ADD CONSTRAINT no_mallory CHECK principal_id != 'mallory'` })
    const linked = linkEntries(emptyChain('rb/4'), [{ event: makeEvent({ principal_id: 'mallory' }), offset: 0n, schemaVersion: 1 }], Date.now() * 1000)
    const err = await thrown(store.insertRowBinary('access_log', linked.rows, linked.count))
    expect((err as StoreError).code).toBe('STORE_REJECTED')
    expect((err as StoreError).details?.['clickhouse_error_type']).toBe('VIOLATED_CONSTRAINT')
  })

  it('takes another column list for another table', async () => {
    const store = await openTestStore()
    const copy = store.table('access_log_copy')
    const columns = [...ACCESS_LOG_COLUMNS, HASH_COLUMN].map((c) => `${c.name} ${c.type}`).join(', ')
    await store.client.command({ query: `CREATE TABLE ${copy} (note String, ${columns}) ENGINE = MergeTree ORDER BY (chain_id, seq)` })
    const linked = link('rb/5', 4)
    await store.insertRowBinary('access_log_copy', linked.rows, linked.count, STORED_COLUMN_NAMES)
    const rows = await store.queryRows<{ note: string; ok: number }>(`SELECT note, hash = ${HASH_SQL} AS ok FROM ${copy}`)
    expect(rows).toEqual(Array.from({ length: 4 }, () => ({ note: '', ok: 1 })))
  })
})

describe('stores made by the JSON insert path', () => {
  it('lose access_log_ingest and its view to the DDL, and rows still arrive', async () => {
    const store = await openTestStore()
    // What the previous version created: a Null table and a view into access_log.
    const columns = [...ACCESS_LOG_COLUMNS, HASH_COLUMN].map((c) => `${c.name} ${c.type}`).join(', ')
    await store.client.command({ query: `CREATE TABLE ${store.table('access_log_ingest')} (${columns}) ENGINE = Null` })
    await store.client.command({
      query: `CREATE MATERIALIZED VIEW ${store.table('access_log_ingest_mv')} TO ${store.table('access_log')} AS SELECT * FROM ${store.table('access_log_ingest')}`,
    })
    const tables = async () =>
      (await store.queryRows<{ name: string }>(`SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE 'access_log_ingest%' ORDER BY name`, { db: store.database })).map((r) => r.name)
    expect(await tables()).toEqual(['access_log_ingest', 'access_log_ingest_mv'])

    await store.ensureSchema()
    expect(await tables()).toEqual([])
    // Run again, the drops find nothing and pass.
    await store.ensureSchema()
    await store.checkSchema()
    const linked = linkEntries(emptyChain('old/0'), [{ event: makeEvent(), offset: 0n, schemaVersion: 1 }], Date.now() * 1000)
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    const [row] = await store.queryRows<{ n: number }>(`SELECT count() AS n FROM ${store.table('access_by_principal')}`)
    expect(Number(row!.n)).toBe(1)
  })
})

describe('stores made before the saved queries read access_log\'s projections', () => {
  it('lose record_access, principal_hours, principal_days and their views to the DDL, then take inserts and verify clean', async () => {
    const store = await openTestStore()
    const t = (name: string) => store.table(name)
    // What earlier versions created beside access_by_principal, in their shapes.
    await store.client.command({ query: `CREATE TABLE ${t('record_access')} (table_name String, record_id String, chain_id String, seq UInt64) ENGINE = MergeTree ORDER BY (table_name, record_id)` })
    await store.client.command({
      query: `CREATE MATERIALIZED VIEW ${t('record_access_mv')} TO ${t('record_access')} AS SELECT table_name, arrayJoin(record_ids) AS record_id, chain_id, seq FROM ${t('access_log')}`,
    })
    const rollups = [
      ['principal_hours', PRINCIPAL_HOURS_COLUMNS],
      ['principal_days', PRINCIPAL_DAYS_COLUMNS],
    ] as const
    for (const [name, columns] of rollups) {
      const key = columns.filter((c) => !c.type.startsWith('SimpleAggregateFunction')).map((c) => c.name)
      await store.client.command({
        query: `CREATE TABLE ${t(name)} (${columns.map((c) => `${c.name} ${c.type}`).join(', ')}) ENGINE = AggregatingMergeTree ORDER BY (${key.join(', ')})`,
      })
      await store.client.command({
        query: `CREATE MATERIALIZED VIEW ${t(`${name}_mv`)} TO ${t(name)} AS SELECT ${columns.map((c) => `${c.expr} AS ${c.name}`).join(', ')} FROM ${t('access_log')} GROUP BY ${key.join(', ')}`,
      })
    }
    await seedChain(store, 'old/0', 6)
    const [filled] = await store.queryRows<{ records: number; hours: number; days: number }>(
      `SELECT (SELECT count() FROM ${t('record_access')}) AS records, (SELECT count() FROM ${t('principal_hours')}) AS hours, (SELECT count() FROM ${t('principal_days')}) AS days`,
    )
    expect([filled!.records, filled!.hours, filled!.days].map(Number).every((n) => n > 0)).toBe(true)
    // Before the upgrade verify reports each leftover view as a feed readtrail did not create.
    const before = await verifyStore(store)
    expect(before.findings.map((f) => [f.chain_id, f.kind])).toEqual(['(principal_days)', '(principal_hours)', '(record_access)'].map((c) => [c, 'query_table_altered']))

    await store.ensureSchema()
    const dropped = ['record_access', 'record_access_mv', 'principal_hours', 'principal_hours_mv', 'principal_days', 'principal_days_mv']
    const left = await store.queryRows<{ name: string }>('SELECT name FROM system.tables WHERE database = {db:String} AND has({names:Array(String)}, name)', {
      db: store.database,
      names: dropped,
    })
    expect(left).toEqual([])
    await seedChain(store, 'old/1', 4)
    const after = await verifyStore(store)
    expect(after.findings).toEqual([])
    expect(after.ok).toBe(true)
    expect(after.views_checked).toBe(true)
    expect(after.rows_verified).toBe(10)
  })
})

describe('insert files a crashed owner left', () => {
  it('are removed when the store is next opened', async () => {
    await openTestStore()
    // A directory of another pid (1 is never this process), holding a row file.
    const stale = join(testDataDir(), 'readtrail-insert-1-Xy12Zq')
    mkdirSync(stale, { mode: 0o700 })
    writeFileSync(join(stale, 'rows.bin'), Buffer.alloc(64, 1), { mode: 0o600 })
    await releaseTestStore()
    const store = await openTestStore()
    expect(readdirSync(testDataDir()).filter((n) => n === 'readtrail-insert-1-Xy12Zq')).toEqual([])
    const linked = linkEntries(emptyChain('stale/0'), [{ event: makeEvent(), offset: 0n, schemaVersion: 1 }], Date.now() * 1000)
    await store.insertRowBinary('access_log', linked.rows, linked.count)
  })
})
