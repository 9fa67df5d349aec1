import { describe, expect, it } from 'vitest'
import { emptyChain, linkEntries } from '../../consumers/chain.js'
import { ACCESS_LOG_COLUMNS, HASH_COLUMN, HASH_SQL } from '../../store/access-log-columns.js'
import { makeEvent } from '../helpers/events.js'
import { freshDatabaseName, openTestStore } from '../helpers/store.js'
import { StoreError } from '../../store/errors.js'
import { thrown } from '../helpers/thrown.js'

/**
 * Wire v3's two hashed columns in the store: ClickHouse re-hashes a row that
 * carries them to the hash the writer computed, and a store made before
 * them is refused, not written into with its rows' hashes silently changed.
 */
describe('db_session and statement_digest in access_log', () => {
  it('are hashed like every event column: ClickHouse recomputes the writer hash of rows with and without them', async () => {
    const store = await openTestStore()
    await store.ensureSchema()
    const events = [
      makeEvent({ db_session: '48213', statement_digest: 'e3'.repeat(32) }),
      makeEvent(),
      // The largest id a 64-bit server gives, and a digest whose last byte is 0x0A (the formatRow edge).
      makeEvent({ db_session: '18446744073709551615', statement_digest: `${'0'.repeat(62)}0a` }),
    ]
    const linked = linkEntries(emptyChain('key/0'), events.map((event, i) => ({ event, offset: BigInt(i), schemaVersion: 3 })), Date.now() * 1000)
    await store.insertRowBinary('access_log', linked.rows, linked.count)
    const rows = await store.queryRows<{ db_session: string; statement_digest: string; ok: number }>(
      `SELECT db_session, statement_digest, hash = ${HASH_SQL} AS ok FROM ${store.table('access_log')} ORDER BY seq`,
    )
    expect(rows.map((r) => [r.db_session, r.statement_digest, Number(r.ok)])).toEqual(events.map((e) => [e.db_session, e.statement_digest, 1]))
  })

  it('a store made before them is refused with STORE_SCHEMA_MISMATCH naming both', async () => {
    // A database no ensureSchema ran on, as the older release left it.
    const store = (await openTestStore()).withDatabase(freshDatabaseName())
    const before = [...ACCESS_LOG_COLUMNS, HASH_COLUMN].filter((c) => c.name !== 'db_session' && c.name !== 'statement_digest')
    await store.client.command({ query: `CREATE DATABASE IF NOT EXISTS \`${store.database}\`` })
    await store.client.command({ query: `CREATE TABLE ${store.table('access_log')} (${before.map((c) => `${c.name} ${c.type}`).join(', ')}) ENGINE = MergeTree ORDER BY (chain_id, seq)` })
    const err = (await thrown(store.checkSchema())) as StoreError
    expect(err).toBeInstanceOf(StoreError)
    expect(err.code).toBe('STORE_SCHEMA_MISMATCH')
    expect(err.details?.['missing']).toEqual(['db_session String', 'statement_digest String'])
  })
})
