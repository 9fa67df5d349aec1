import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { emptyChain, linkEntries, type ChainedBatch } from '../../consumers/chain.js'
import { ACCESS_LOG_COLUMNS, HASH_COLUMN, HASH_SQL, STORED_COLUMN_NAMES } from '../../store/access-log-columns.js'
import { isDataError, StoreError } from '../../store/errors.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
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

  it('feeds the materialised views as the old JSON path did', async () => {
    const store = await openTestStore()
    const linked = link('rb/1', 7)
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    const [views] = await store.queryRows<{ principal: number; records: number; days: number }>(
      `SELECT (SELECT count() FROM ${store.table('access_by_principal')}) AS principal,
              (SELECT count() FROM ${store.table('record_access')}) AS records,
              (SELECT sum(events) FROM ${store.table('principal_days')}) AS days`,
    )
    expect(Number(views!.principal)).toBe(7)
    expect(Number(views!.records)).toBe(7 * makeEvent().record_ids.length)
    expect(Number(views!.days)).toBe(7)
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
