import { createHash } from 'node:crypto'
import pg from 'pg'
import Cursor from 'pg-cursor'
import { beforeAll, describe, expect, it } from 'vitest'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { instrumentPg } from '../../producers/hooks/pg.js'
import { createReadRecorder } from '../../producers/hooks/read-recorder.js'
import { startHookPipeline, type HookPipeline, type StoredRead } from '../helpers/hook-pipeline.js'
import { createPracticeDatabase, PG_CONNECTION } from '../helpers/postgres.js'

/**
 * The key the database-side cross-check matches pgAudit's entries on
 * (issue 14): each hooked read carries the backend pid of the connection
 * that ran it and the SHA-256 of the statement text the server received,
 * through Kafka into the chain. The server is asked for both: its own
 * pg_backend_pid() on the same client, and pg_stat_activity's text of the
 * backend's last statement.
 */

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
/** node-postgres sets it from BackendKeyData; its types do not declare it. */
const pidOf = (client: pg.PoolClient): number => (client as unknown as { processID: number }).processID

let database: string
let pipeline: HookPipeline
let pool: pg.Pool
let admin: pg.Client

beforeAll(async () => {
  database = await createPracticeDatabase()
  pipeline = await startHookPipeline()
  const recorder = createReadRecorder(pipeline.producer, { tables: { patients: { policy: 'fail-open' } } })
  pool = await instrumentPg(new pg.Pool({ ...PG_CONNECTION, database, max: 3 }), recorder)
  admin = new pg.Client({ ...PG_CONNECTION, database })
  await admin.connect()
  return async () => {
    await admin.end()
    await pool.end()
  }
})

const as = <T>(id: string, fn: () => Promise<T>) => runWithAuditContext({ principal: { id }, purpose: 'care' }, fn)

/** The text of the backend's last statement, as the server holds it. */
async function lastStatementOf(pid: number): Promise<string> {
  const found = await admin.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid])
  return found.rows[0]!.query
}

async function readsOf(principal: string): Promise<StoredRead[]> {
  await pipeline.settle()
  return (await pipeline.storedReads()).filter((r) => r.principal_id === principal)
    // In the order the producer numbered them: a topic's partitions are separate chains.
    .sort((a, b) => a.producer_seq - b.producer_seq)
}

describe('pg hook: the server connection id and statement digest of every read', () => {
  it('records the backend pid the server reports and the digest of the text pg_stat_activity shows, for the extended and the simple protocol', async () => {
    const client = await pool.connect()
    const statements: { sql: string; serverText: string }[] = []
    let pid: number
    try {
      pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
      expect(pidOf(client)).toBe(pid)
      await as('pg.key', async () => {
        const bound = 'SELECT id, full_name FROM patients WHERE id = $1'
        expect((await client.query(bound, [100042])).rows).toHaveLength(1)
        statements.push({ sql: bound, serverText: await lastStatementOf(pid) })
        const simple = 'SELECT id, phone FROM patients WHERE id IN (100001, 100002)'
        expect((await client.query(simple)).rows).toHaveLength(2)
        statements.push({ sql: simple, serverText: await lastStatementOf(pid) })
      })
    } finally {
      client.release()
    }
    const reads = await readsOf('pg.key')
    expect(reads).toHaveLength(2)
    for (const [i, { sql, serverText }] of statements.entries()) {
      // What the server received is what the hook digested.
      expect(serverText).toBe(sql)
      expect(reads[i]).toMatchObject({ db_session: String(pid), statement_digest: sha256(serverText) })
    }
  })

  it('tells two connections apart: each read carries its own backend pid', async () => {
    const [a, b] = [await pool.connect(), await pool.connect()]
    try {
      expect(pidOf(a)).not.toBe(pidOf(b))
      await as('pg.two', async () => {
        await a.query('SELECT id, full_name FROM patients WHERE id = $1', [100010])
        await b.query('SELECT id, full_name FROM patients WHERE id = $1', [100011])
      })
      const reads = await readsOf('pg.two')
      expect(reads.map((r) => [r.record_ids, r.db_session]).sort()).toEqual(
        [
          [['100010'], String(pidOf(a))],
          [['100011'], String(pidOf(b))],
        ].sort(),
      )
      // Same text, same digest: the statement is told apart by its connection and time.
      expect(new Set(reads.map((r) => r.statement_digest))).toEqual(new Set([sha256('SELECT id, full_name FROM patients WHERE id = $1')]))
    } finally {
      a.release()
      b.release()
    }
  })

  it('records a probe that found nothing as a read of 0 rows: a query, a callback and a cursor', async () => {
    const client = await pool.connect()
    const pid = String(pidOf(client))
    const probe = 'SELECT id, full_name FROM patients WHERE full_name = $1'
    try {
      await as('pg.zero', async () => {
        expect((await client.query(probe, ['Nobody Atall'])).rows).toEqual([])
        await new Promise<void>((resolve, reject) => client.query(probe, ['Nobody Either'], (err) => (err ? reject(err) : resolve())))
        const empty = client.query(new Cursor('SELECT id, address FROM patients WHERE id < $1', [0]))
        expect(await empty.read(10)).toEqual([])
        expect(await empty.read(10)).toEqual([])
        await empty.close()
      })
    } finally {
      client.release()
    }
    const reads = await readsOf('pg.zero')
    expect(reads.map((r) => ({ rows: r.row_count, ids: r.record_ids, complete: r.record_ids_complete, session: r.db_session }))).toEqual([
      { rows: 0, ids: [], complete: true, session: pid },
      { rows: 0, ids: [], complete: true, session: pid },
      // Read twice, recorded once: the cursor's statement ran once.
      { rows: 0, ids: [], complete: true, session: pid },
    ])
    expect(reads.map((r) => r.statement_digest)).toEqual([sha256(probe), sha256(probe), sha256('SELECT id, address FROM patients WHERE id < $1')])
    expect(reads.map((r) => r.columns)).toEqual([['id', 'full_name'], ['id', 'full_name'], ['id', 'address']])
  })

  it('a cursor that returned rows adds no zero-row event for its last, empty batch', async () => {
    const client = await pool.connect()
    try {
      await as('pg.cursor', async () => {
        const cursor = client.query(new Cursor('SELECT id, phone FROM patients WHERE id BETWEEN $1 AND $2 ORDER BY id', [100001, 100005]))
        expect(await cursor.read(3)).toHaveLength(3)
        expect(await cursor.read(3)).toHaveLength(2)
        expect(await cursor.read(3)).toHaveLength(0)
        await cursor.close()
      })
    } finally {
      client.release()
    }
    const reads = await readsOf('pg.cursor')
    expect(reads.map((r) => r.row_count)).toEqual([3, 2])
    expect(reads.flatMap((r) => r.record_ids)).toEqual(['100001', '100002', '100003', '100004', '100005'])
  })

  it('a join that found none of a sensitive table\'s records is a read of it, of 0 rows', async () => {
    await as('pg.outer', () => pool.query('SELECT d.id AS doctor, p.id, p.full_name FROM doctors d LEFT JOIN patients p ON p.id = -d.id WHERE d.id < 3'))
    const reads = await readsOf('pg.outer')
    expect(reads).toHaveLength(1)
    expect(reads[0]).toMatchObject({ table_name: 'patients', row_count: 0, record_ids: [], record_ids_complete: true })
    expect(reads[0]!.db_session).toMatch(/^[0-9]+$/)
  })
})
