import { beforeAll, describe, expect, it } from 'vitest'
import { emptyChain, linkEntries } from '../../consumers/chain.js'
import { dbAuditCompleteness } from '../../queries/db-audit-match.js'
import { runSavedQuery } from '../../queries/saved-query.js'
import { unauditedReadEntries, type UnauditedReadEntryRow } from '../../queries/unaudited-read-entries.js'
import { unauditedReads } from '../../queries/unaudited-reads.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import type { DbAuditEvent } from '../../schemas/db-audit-event.js'
import { DB_AUDIT_TABLE } from '../../store/side-tables.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { insertSideRows, makeDbAuditEvent, statementDigest } from '../helpers/side-rows.js'
import { openTestStore } from '../helpers/store.js'
import { isoToMicros } from '../helpers/workload.js'

/**
 * The matching rule of queries/db-audit-match.ts, through the saved queries
 * that report what it leaves unmatched: a server-side entry is matched by a
 * hooked read on the same database, connection and statement digest whose
 * result came at most max_query_seconds after the entry, or at most
 * skew_seconds before it.
 */
const S = 1_000_000
const T0 = Date.UTC(2026, 10, 27, 10) * 1000
const WINDOW = { from: '2026-11-27T00:00:00Z', to: '2026-11-28T00:00:00Z' }
const APP_SQL = 'SELECT id, full_name FROM applicants WHERE id = $1'
const OTHER_SQL = 'SELECT id, birth_date FROM applicants WHERE id = $1'
const D = statementDigest(APP_SQL)
const AUDIT_CHAIN = 'audit.reads.db-audit/0'
const READ_CHAIN = 'audit.reads/0'

async function storeReads(store: Store, events: readonly AccessEvent[]): Promise<void> {
  const linked = linkEntries(emptyChain(READ_CHAIN), events.map((event, i) => ({ event, offset: BigInt(i), schemaVersion: 1 })), T0)
  await store.insertRowBinary('access_log', linked.rows, linked.count)
}

const read = (session: string, at: number, overrides: Partial<AccessEvent> = {}): AccessEvent =>
  makeEvent({ db_session: session, statement_digest: D, occurred_at: at, db_name: 'registry', ...overrides })
const entry = (session: string, at: number, overrides: Partial<DbAuditEvent> = {}): DbAuditEvent => makeDbAuditEvent({ db_session: session, logged_at: at, ...overrides })

/** What the entries query reports, as (session, seconds after T0) pairs. */
const reported = (rows: readonly UnauditedReadEntryRow[]) => rows.map((r) => `${r.db_session}@${(isoToMicros(r.logged_at) - T0) / S}`).sort()

describe('unaudited-reads: the matching rule', () => {
  let store: Store
  const entries: DbAuditEvent[] = []
  const reads: AccessEvent[] = []

  beforeAll(async () => {
    store = await openTestStore()
    // Exact match: the read's result 2 s after the server logged the statement.
    entries.push(entry('4242', T0))
    reads.push(read('4242', T0 + 2 * S))
    // The same session and digest, a thousand times: each entry has its read 0.5 s later.
    for (let i = 0; i < 1000; i++) {
      entries.push(entry('5000', T0 + 1000 * S + i * S))
      reads.push(read('5000', T0 + 1000 * S + i * S + S / 2))
    }
    // ... and once more, long after the last of them: reported.
    entries.push(entry('5000', T0 + 3000 * S))
    // A psql read on another connection.
    entries.push(entry('7777', T0 + 5 * S, { db_user: 'dba', client_addr: '10.0.0.5', application_name: 'psql', statement: 'SELECT * FROM applicants', statement_digest: statementDigest('SELECT * FROM applicants') }))
    // The application's connection, another statement.
    entries.push(entry('4242', T0 + 10 * S, { statement: OTHER_SQL, statement_digest: statementDigest(OTHER_SQL) }))
    // The connection id reused after a database restart, five hours later.
    entries.push(entry('4242', T0 + 5 * 3600 * S))
    // Another database, same connection id and statement.
    entries.push(entry('4242', T0 + S, { db_name: 'archive' }))
    // A hooked read that did not learn its connection id never matches: not an entry with another id, nor one with none.
    reads.push(read('', T0 + 4000 * S))
    entries.push(entry('31', T0 + 4000 * S))
    entries.push(entry('', T0 + 4000 * S))
    // A continuation part is not a read of its own.
    reads.push(read('6000', T0 + 4100 * S, { part_index: 1, part_count: 2 }))
    entries.push(entry('6000', T0 + 4100 * S))
    // Window edges, each on its own connection: the read's result at R.
    const R = T0 + 6000 * S
    for (const [session, at] of [
      ['9001', R - 300 * S], // the statement ran max_query_seconds: matched
      ['9002', R - 300 * S - 1], // a microsecond longer: reported
      ['9003', R + 5 * S], // the server's clock skew_seconds ahead: matched
      ['9004', R + 5 * S + 1], // a microsecond more: reported
    ] as const) {
      reads.push(read(session, R))
      entries.push(entry(session, at))
    }
    await storeReads(store, reads)
    await insertSideRows(store, DB_AUDIT_TABLE, AUDIT_CHAIN, entries)
  })

  const EXPECTED = ['5000@3000', '7777@5', '4242@10', '4242@18000', '4242@1', '31@4000', '@4000', '6000@4100', '9002@5699.999999', '9004@6005.000001'].sort()

  it('reports exactly the entries no hooked read matches', async () => {
    const answer = await runSavedQuery(store, unauditedReadEntries, { ...WINDOW, limit: 0 })
    expect(reported(answer.rows)).toEqual(EXPECTED)
    const psql = answer.rows.find((r) => r.db_session === '7777')!
    expect(psql).toMatchObject({ db_user: 'dba', client_addr: '10.0.0.5', application_name: 'psql', statement: 'SELECT * FROM applicants', source_kind: 'pgaudit', chain_id: AUDIT_CHAIN })
  })

  it('groups them by database, user, client address and application', async () => {
    const answer = await runSavedQuery(store, unauditedReads, WINDOW)
    const byKey = new Map(answer.rows.map((r) => [`${r.db_name}/${r.db_user}/${r.client_addr}/${r.application_name}`, r]))
    expect([...byKey.keys()].sort()).toEqual(['archive/app/192.0.2.10/records-api', 'registry/app/192.0.2.10/records-api', 'registry/dba/10.0.0.5/psql'])
    const app = byKey.get('registry/app/192.0.2.10/records-api')!
    expect(Number(app.statements)).toBe(EXPECTED.length - 2)
    expect(app.tables).toEqual(['public.applicants'])
    expect(Number(app.sessions)).toBe(7)
    expect(app.session_ids).toEqual(['', '31', '4242', '5000', '6000', '9002', '9004'])
    expect(app.sample_statements).toEqual([APP_SQL, OTHER_SQL].sort())
    expect(isoToMicros(app.first_logged_at)).toBe(T0 + 10 * S)
    expect(isoToMicros(app.last_logged_at)).toBe(T0 + 5 * 3600 * S)
    expect(answer.rows[0]).toBe(app)
  })

  it('filters on database, user and the server log time', async () => {
    const dba = await runSavedQuery(store, unauditedReadEntries, { ...WINDOW, user: 'dba' })
    expect(reported(dba.rows)).toEqual(['7777@5'])
    const archive = await runSavedQuery(store, unauditedReadEntries, { ...WINDOW, database: 'archive' })
    expect(reported(archive.rows)).toEqual(['4242@1'])
    const early = await runSavedQuery(store, unauditedReadEntries, { from: '2026-11-27T10:00:00Z', to: '2026-11-27T10:00:11Z' })
    expect(reported(early.rows)).toEqual(['4242@1', '4242@10', '7777@5'])
    const none = await runSavedQuery(store, unauditedReads, { from: '2026-11-26', to: '2026-11-27' })
    expect(none.rows).toEqual([])
  })

  it('a wider match window covers a longer statement', async () => {
    const wide = await runSavedQuery(store, unauditedReadEntries, { ...WINDOW, max_query_seconds: 400, skew_seconds: 6 })
    expect(reported(wide.rows)).toEqual(EXPECTED.filter((e) => e !== '9002@5699.999999' && e !== '9004@6005.000001'))
  })

  it('stands on the audit entries and the hooked reads that could match them', async () => {
    const answer = await runSavedQuery(store, unauditedReadEntries, WINDOW)
    const chains = answer.sources.map((s) => s.chain_id)
    expect(chains).toEqual([READ_CHAIN, AUDIT_CHAIN].sort())
    expect(answer.sources.find((s) => s.chain_id === AUDIT_CHAIN)).toMatchObject({ first_seq: 1, last_seq: entries.length, events: entries.length })
    // Never verified: the answer says so rather than passing for verified.
    expect(answer.provenance.status).toBe('unverified')
    expect(answer.consistency).toEqual({ ok: true, problems: [] })
  })

  it('dbAuditCompleteness counts entries and unmatched ones per database and source', async () => {
    expect(await dbAuditCompleteness(store)).toEqual([
      { db_name: 'archive', entries: 1, unmatched: 1, sources: [{ source_kind: 'pgaudit', entries: 1, unmatched: 1 }] },
      { db_name: 'registry', entries: entries.length - 1, unmatched: EXPECTED.length - 1, sources: [{ source_kind: 'pgaudit', entries: entries.length - 1, unmatched: EXPECTED.length - 1 }] },
    ])
  })
})

describe('unaudited-reads samples', () => {
  it('cuts a long statement to 200 characters and marks the cut', async () => {
    const store = await openTestStore()
    const long = `SELECT ${'full_name, '.repeat(40)}id FROM applicants`
    await insertSideRows(store, DB_AUDIT_TABLE, AUDIT_CHAIN, [entry('1', T0, { statement: long, statement_digest: statementDigest(long) })])
    const answer = await runSavedQuery(store, unauditedReads, WINDOW)
    expect(answer.rows[0]!.sample_statements).toEqual([`${long.slice(0, 200)}…`])
  })
})

describe('dbAuditCompleteness without a database audit stream', () => {
  it('is empty when the store has no db_audit_log', async () => {
    const store = await openTestStore()
    expect(await dbAuditCompleteness(store)).toEqual([])
  })

  it('counts MariaDB server_audit entries apart from pgAudit ones', async () => {
    const store = await openTestStore()
    await storeReads(store, [read('12', T0 + S, { db_name: 'clinic' })])
    await insertSideRows(store, DB_AUDIT_TABLE, AUDIT_CHAIN, [
      entry('12', T0, { db_name: 'clinic', source_kind: 'server_audit' }),
      entry('13', T0, { db_name: 'clinic', source_kind: 'server_audit' }),
      entry('12', T0, { db_name: 'clinic' }),
    ])
    expect(await dbAuditCompleteness(store)).toEqual([
      {
        db_name: 'clinic',
        entries: 3,
        unmatched: 1,
        sources: [
          { source_kind: 'pgaudit', entries: 1, unmatched: 0 },
          { source_kind: 'server_audit', entries: 2, unmatched: 1 },
        ],
      },
    ])
  })
})
