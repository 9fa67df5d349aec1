import { Writable } from 'node:stream'
import { Kysely, MysqlDialect } from 'kysely'
import mysql, { type Connection, type FieldPacket, type Pool, type PrepareStatementInfo } from 'mysql2'
import mysqlPromise from 'mysql2/promise'
import { beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import { createAuditProducer, type AuditProducer } from '../../producers/audit-producer.js'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import type { AuditHookConfigInput } from '../../producers/hooks/hook-config.js'
import { instrumentMysql2 } from '../../producers/hooks/mysql2.js'
import { createReadRecorder, type ReadRecorder } from '../../producers/hooks/read-recorder.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { startHookPipeline, type HookPipeline, type StoredRead } from '../helpers/hook-pipeline.js'
import { testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { createHookDatabase, type HookDatabase } from '../helpers/mariadb.js'
import { thrown } from '../helpers/thrown.js'
import { testSigningKey } from '../helpers/producer-trust.js'

type Row = Record<string, unknown>

const TABLES: AuditHookConfigInput['tables'] = {
  // `id` and `created_at` are not sensitive: a list of ids alone is not recorded.
  people: { columns: ['full_name', 'birth_date', 'address', 'phone'] },
  // Every column of the join table is sensitive (who is party to which case).
  case_people: {},
}
const SENSITIVE_PEOPLE = ['full_name', 'birth_date', 'address', 'phone']

let pipeline: HookPipeline
let db: HookDatabase
let recorder: ReadRecorder

beforeAll(async () => {
  ;[pipeline, db] = await Promise.all([startHookPipeline({ producer: { sqlDialect: 'mysql' } }), createHookDatabase()])
  recorder = createReadRecorder(pipeline.producer, { tables: TABLES }, { logger: testLogger })
})

function coreConnection(extra: mysql.ConnectionOptions = {}): Connection {
  const conn = mysql.createConnection({ ...db.options, ...extra })
  deferCleanup(() => new Promise<void>((resolve) => conn.end(() => resolve())))
  return conn
}

function corePool(extra: mysql.PoolOptions = {}): Pool {
  const pool = mysql.createPool({ ...db.options, ...extra })
  deferCleanup(() => new Promise<void>((resolve) => pool.end(() => resolve())))
  return pool
}

async function promiseConnection(extra: mysql.ConnectionOptions = {}): Promise<mysqlPromise.Connection> {
  const conn = await mysqlPromise.createConnection({ ...db.options, ...extra })
  deferCleanup(() => conn.end())
  return conn
}

let purposes = 0
/** A purpose unique to one test, so its stored reads can be told from the others'. */
function freshPurpose(what: string): string {
  purposes += 1
  return `${what} #${purposes}`
}

function as<T>(principal: string, purpose: string, fn: () => T): T {
  return runWithAuditContext({ principal: { id: principal }, purpose }, fn)
}

/** The stored reads of one purpose, in the order they were recorded (chains interleave them). */
async function readsFor(purpose: string): Promise<StoredRead[]> {
  await pipeline.settle()
  return (await pipeline.storedReads()).filter((r) => r.purpose === purpose).sort((a, b) => a.producer_seq - b.producer_seq)
}

function idsOf(reads: StoredRead[], table: string): string[] {
  return [...new Set(reads.filter((r) => r.table_name === table).flatMap((r) => r.record_ids))].sort()
}

function sortedIds(values: unknown[]): string[] {
  return [...new Set(values.map((v) => String(v)))].sort()
}

/** Runs a callback-API call and resolves with [rows, fields]. */
function called(run: (cb: (err: Error | null, rows?: unknown, fields?: unknown) => void) => void): Promise<[Row[], FieldPacket[]]> {
  return new Promise((resolve, reject) => run((err, rows, fields) => (err ? reject(err) : resolve([rows as Row[], fields as FieldPacket[]]))))
}

function range(from: number, to: number): string[] {
  return sortedIds(Array.from({ length: to - from + 1 }, (_, i) => from + i))
}

describe('instrumentMysql2: reads of sensitive tables are recorded from what MariaDB returned', () => {
  it('records a read by id through the promise API, naming the row and only the sensitive columns, by their real names', async () => {
    const conn = await promiseConnection()
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('read by id')
    const [rows] = await as('clerk.anna', purpose, () => conn.query('SELECT id, full_name, birth_date, created_at FROM people WHERE id = ?', [42]))
    expect(rows).toHaveLength(1)
    const reads = await readsFor(purpose)
    expect(reads).toHaveLength(1)
    expect(reads[0]).toMatchObject({
      principal_id: 'clerk.anna',
      principal_type: 'user',
      db_name: db.database,
      table_name: 'people',
      columns: ['full_name', 'birth_date'],
      record_ids: ['42'],
      row_count: 1,
      record_ids_complete: true,
    })
  })

  it('records a range read through execute() (a server-side prepared statement), every id returned and no other', async () => {
    const conn = await promiseConnection()
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('range')
    const [rows] = await as('clerk.anna', purpose, () => conn.execute('SELECT * FROM people WHERE id BETWEEN ? AND ? ORDER BY id', [100, 199]))
    const returned = rows as Row[]
    expect(returned).toHaveLength(100)
    const reads = await readsFor(purpose)
    expect(reads).toHaveLength(1)
    expect(reads[0]!.columns).toEqual(SENSITIVE_PEOPLE)
    expect(reads[0]!.record_ids).toEqual(returned.map((r) => String(r['id'])))
    expect(reads[0]!.row_count).toBe(100)
  })

  it('records a join as one event per sensitive table touched, with the composite key of the join table', async () => {
    const conn = await promiseConnection()
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('join')
    const [rows] = await as('clerk.anna', purpose, () =>
      conn.query(
        `SELECT c.id AS case_no, c.title, cp.case_id AS link_case, cp.person_id, cp.role, p.id, p.full_name, p.phone
         FROM cases c JOIN case_people cp ON cp.case_id = c.id JOIN people p ON p.id = cp.person_id
         WHERE c.id BETWEEN ? AND ?`,
        [10, 29],
      ),
    )
    const returned = rows as Row[]
    expect(returned.length).toBeGreaterThan(20)
    const reads = await readsFor(purpose)
    expect(reads.map((r) => r.table_name).sort()).toEqual(['case_people', 'people'])
    const people = reads.find((r) => r.table_name === 'people')!
    const links = reads.find((r) => r.table_name === 'case_people')!
    expect(people.columns).toEqual(['full_name', 'phone'])
    expect(sortedIds(people.record_ids)).toEqual(sortedIds(returned.map((r) => r['id'])))
    expect(people.row_count).toBe(returned.length)
    expect(links.columns).toEqual(['case_id', 'person_id', 'role'])
    expect(sortedIds(links.record_ids)).toEqual(sortedIds(returned.map((r) => JSON.stringify([String(r['link_case']), String(r['person_id'])]))))
    expect(links.record_ids_complete).toBe(true)
  })

  it('sees through aliases: columns are recorded by their real names and the aliased key still names the rows', async () => {
    const conn = await promiseConnection()
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('aliases')
    const [rows] = await as('clerk.anna', purpose, () => conn.query('SELECT p.id AS pid, p.FULL_NAME AS who, p.phone AS tel FROM people p WHERE p.id < 6'))
    expect((rows as Row[]).map((r) => Object.keys(r))[0]).toEqual(['pid', 'who', 'tel'])
    const reads = await readsFor(purpose)
    expect(reads).toHaveLength(1)
    expect(reads[0]).toMatchObject({ table_name: 'people', columns: ['full_name', 'phone'], record_ids: ['1', '2', '3', '4', '5'], record_ids_complete: true })
  })

  it('records a read without the primary key as incomplete, with its row count', async () => {
    const conn = await promiseConnection()
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('no key')
    const [rows] = await as('clerk.anna', purpose, () => conn.query('SELECT full_name, phone FROM people WHERE id <= 10'))
    expect(rows).toHaveLength(10)
    const reads = await readsFor(purpose)
    expect(reads).toHaveLength(1)
    expect(reads[0]).toMatchObject({ table_name: 'people', columns: ['full_name', 'phone'], record_ids: [], row_count: 10, record_ids_complete: false })
  })

  it('treats a key overwritten by a later field of the same name as unreadable in object rows, and reads it in array rows', async () => {
    const conn = await promiseConnection()
    await instrumentMysql2(conn, recorder)
    const sql = 'SELECT p.id, p.full_name, c.id FROM people p JOIN case_people cp ON cp.person_id = p.id JOIN cases c ON c.id = cp.case_id WHERE c.id <= 5'
    const objects = freshPurpose('overwritten key')
    const [objectRows] = await as('clerk.anna', objects, () => conn.query(sql))
    const arrays = freshPurpose('array rows')
    const [arrayRows] = await as('clerk.anna', arrays, () => conn.query({ sql, rowsAsArray: true }))
    const [objectReads, arrayReads] = [await readsFor(objects), await readsFor(arrays)]
    // `row.id` is the case's id: naming people by it would record the wrong people.
    expect(objectReads).toHaveLength(1)
    expect(objectReads[0]).toMatchObject({ table_name: 'people', record_ids: [], row_count: (objectRows as Row[]).length, record_ids_complete: false })
    expect(arrayReads).toHaveLength(1)
    expect(arrayReads[0]).toMatchObject({ table_name: 'people', columns: ['full_name'], record_ids_complete: true })
    expect(sortedIds(arrayReads[0]!.record_ids)).toEqual(sortedIds((arrayRows as unknown[][]).map((r) => r[0])))
  })

  it('reads keys out of nestTables rows (true and a separator)', async () => {
    const conn = await promiseConnection()
    await instrumentMysql2(conn, recorder)
    const sql = 'SELECT p.id, p.full_name, c.id, c.title FROM people p JOIN case_people cp ON cp.person_id = p.id JOIN cases c ON c.id = cp.case_id WHERE c.id <= 8'
    const nested = freshPurpose('nestTables true')
    const [nestedRows] = await as('clerk.anna', nested, () => conn.query({ sql, nestTables: true }))
    const prefixed = freshPurpose('nestTables _')
    const [prefixedRows] = await as('clerk.anna', prefixed, () => conn.query({ sql, nestTables: '_' }))
    const expected = sortedIds((nestedRows as { p: Row }[]).map((r) => r.p['id']))
    expect(sortedIds((prefixedRows as Row[]).map((r) => r['p_id']))).toEqual(expected)
    for (const purpose of [nested, prefixed]) {
      const reads = await readsFor(purpose)
      expect(reads).toHaveLength(1)
      expect(reads[0]!.record_ids_complete).toBe(true)
      expect(sortedIds(reads[0]!.record_ids)).toEqual(expected)
    }
  })

  it('records each result set of a multi-statement query and lets statements without rows through', async () => {
    const conn = await promiseConnection({ multipleStatements: true })
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('multi-statement')
    const [results] = await as('clerk.anna', purpose, async () => {
      const [inserted] = await conn.query("INSERT INTO people_import (full_name, phone) VALUES ('Test Person', '+49 30 0000000')")
      expect((inserted as { affectedRows: number }).affectedRows).toBe(1)
      const [updated] = await conn.execute('UPDATE people SET phone = phone WHERE id = ?', [3])
      expect((updated as { affectedRows: number }).affectedRows).toBe(1)
      return conn.query('SELECT id, full_name FROM people WHERE id = 1; UPDATE cases SET title = title WHERE id = 1; SELECT id, phone FROM people WHERE id = 2')
    })
    expect(results as unknown[]).toHaveLength(3)
    const reads = await readsFor(purpose)
    expect(reads.map((r) => [r.columns, r.record_ids])).toEqual(
      expect.arrayContaining([
        [['full_name'], ['1']],
        [['phone'], ['2']],
      ]),
    )
    expect(reads).toHaveLength(2)
  })

  it('audits the callback API: query, execute and an explicitly prepared statement', async () => {
    const conn = coreConnection()
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('callback API')
    await as('clerk.anna', purpose, async () => {
      await called((cb) => conn.query('SELECT id, address FROM people WHERE id IN (?)', [[7, 8]], cb))
      await called((cb) => conn.execute('SELECT id, address FROM people WHERE id = ?', [9], cb))
      const stmt = await new Promise<PrepareStatementInfo>((resolve, reject) => conn.prepare('SELECT id, address FROM people WHERE id = ?', (err, s) => (err ? reject(err) : resolve(s))))
      await called((cb) => stmt.execute([10], cb))
      stmt.close()
    })
    const reads = await readsFor(purpose)
    expect(reads.map((r) => r.record_ids)).toEqual([['7', '8'], ['9'], ['10']])
    expect(reads.every((r) => r.columns.join() === 'address')).toBe(true)
  })

  it('covers the promise wrapper of an instrumented core connection (it calls the core with a callback)', async () => {
    const conn = coreConnection()
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('promise wrapper of a core connection')
    await as('clerk.anna', purpose, () => conn.promise().execute('SELECT id, birth_date FROM people WHERE id = ?', [11]))
    expect((await readsFor(purpose)).map((r) => r.record_ids)).toEqual([['11']])
  })

  it('exports thousands of rows through a pool: the stored record ids are exactly the ids each principal got', async () => {
    const pool = corePool({ connectionLimit: 2 })
    await instrumentMysql2(pool, recorder)
    const purpose = freshPurpose('bulk export')
    const exportAs = (principal: string, from: number, to: number) => as(principal, purpose, () => called((cb) => pool.query('SELECT * FROM people WHERE id BETWEEN ? AND ?', [from, to], cb)))
    const [[anna], [bob]] = await Promise.all([exportAs('clerk.anna', 1, 2000), exportAs('auditor.bob', 1001, 3000)])
    expect(anna).toHaveLength(2000)
    expect(bob).toHaveLength(2000)
    const reads = await readsFor(purpose)
    expect(idsOf(reads.filter((r) => r.principal_id === 'clerk.anna'), 'people')).toEqual(sortedIds(anna.map((r) => r['id'])))
    expect(idsOf(reads.filter((r) => r.principal_id === 'auditor.bob'), 'people')).toEqual(sortedIds(bob.map((r) => r['id'])))
  })

  it('attributes each pooled read to its own caller, even when the connection was released by another', async () => {
    // One connection: every caller but the first waits in the pool's queue and
    // is handed the connection from inside the previous caller's release.
    const pool = corePool({ connectionLimit: 1 })
    await instrumentMysql2(pool, recorder)
    const purpose = freshPurpose('pool queue')
    await Promise.all(Array.from({ length: 12 }, (_, i) => as(`clerk.${i}`, purpose, () => called((cb) => pool.execute('SELECT id, phone FROM people WHERE id = ?', [500 + i], cb)))))
    const reads = await readsFor(purpose)
    expect(reads).toHaveLength(12)
    for (const read of reads) expect(read.record_ids).toEqual([String(500 + Number(read.principal_id.slice('clerk.'.length)))])
  })

  it('audits a promise pool (mysql2/promise createPool) and its connections', async () => {
    const pool = mysqlPromise.createPool({ ...db.options, connectionLimit: 2 })
    deferCleanup(() => pool.end())
    await instrumentMysql2(pool, recorder)
    const purpose = freshPurpose('promise pool')
    await as('clerk.anna', purpose, async () => {
      await pool.query('SELECT id, full_name FROM people WHERE id = ?', [21])
      const conn = await pool.getConnection()
      try {
        await conn.execute('SELECT id, full_name FROM people WHERE id = ?', [22])
      } finally {
        conn.release()
      }
    })
    expect((await readsFor(purpose)).map((r) => r.record_ids)).toEqual([['21'], ['22']])
  })

  it('records streamed rows in batches whose ids add up to exactly the rows streamed', async () => {
    const conn = coreConnection()
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('stream')
    const streamed = await as('clerk.anna', purpose, async () => {
      const ids: unknown[] = []
      for await (const row of conn.query('SELECT id, full_name FROM people ORDER BY id').stream()) ids.push((row as Row)['id'])
      return ids
    })
    expect(streamed).toHaveLength(db.people)
    const reads = await readsFor(purpose)
    expect(reads.map((r) => r.row_count)).toEqual([1, 1000, 1000, 999])
    expect(idsOf(reads, 'people')).toEqual(sortedIds(streamed))
    expect(reads.every((r) => r.principal_id === 'clerk.anna' && r.record_ids_complete)).toBe(true)
  })

  it('records rows read in event mode from execute()', async () => {
    const conn = coreConnection()
    await instrumentMysql2(conn, recorder)
    const purpose = freshPurpose('event mode')
    const seen = await as('clerk.anna', purpose, () => {
      const ids: unknown[] = []
      return new Promise<unknown[]>((resolve, reject) => {
        conn
          .execute('SELECT id, phone FROM people WHERE id <= ?', [1500])
          .on('result', (row) => ids.push((row as Row)['id']))
          .on('error', reject)
          .on('end', () => resolve(ids))
      })
    })
    expect(seen).toHaveLength(1500)
    expect(idsOf(await readsFor(purpose), 'people')).toEqual(range(1, 1500))
  })

  it('audits Kysely on an instrumented core pool with no extra code, queries and streams', async () => {
    interface Db {
      people: { id: number; full_name: string; address: string }
    }
    const pool = mysql.createPool(db.options)
    await instrumentMysql2(pool, recorder)
    const kysely = new Kysely<Db>({ dialect: new MysqlDialect({ pool }) })
    deferCleanup(() => kysely.destroy())
    const purpose = freshPurpose('kysely')
    const [rows, streamed] = await as('clerk.anna', purpose, async () => {
      const rows = await kysely.selectFrom('people').select(['id', 'full_name']).where('id', '<=', 25).execute()
      const streamed: number[] = []
      for await (const row of kysely.selectFrom('people').select(['id', 'address']).where('id', '>', 2000).stream()) streamed.push(row.id)
      return [rows, streamed] as const
    })
    expect(rows).toHaveLength(25)
    expect(streamed).toHaveLength(1000)
    const reads = await readsFor(purpose)
    expect(idsOf(reads.filter((r) => r.columns.includes('full_name')), 'people')).toEqual(range(1, 25))
    expect(idsOf(reads.filter((r) => r.columns.includes('address')), 'people')).toEqual(range(2001, 3000))
  })

  it('records a read made outside any audit context as the service, principal type system', async () => {
    const conn = await promiseConnection()
    await instrumentMysql2(conn, recorder)
    await conn.query('SELECT id, phone FROM people WHERE id = 2777')
    await pipeline.settle()
    const reads = (await pipeline.storedReads()).filter((r) => r.principal_type === 'system')
    expect(reads).toHaveLength(1)
    expect(reads[0]).toMatchObject({ principal_id: 'hook-test', purpose: null, columns: ['phone'], record_ids: ['2777'] })
  })

  it('in strict mode refuses, with no rows, a read without the key (RECORD_IDS_INCOMPLETE) or outside any context (CONTEXT_MISSING)', async () => {
    const strict = createReadRecorder(pipeline.producer, { tables: TABLES, strict: true }, { logger: testLogger })
    const conn = coreConnection()
    await instrumentMysql2(conn, strict)
    const purpose = freshPurpose('strict')
    const noKey = await as('clerk.anna', purpose, () => thrown(called((cb) => conn.query('SELECT full_name FROM people WHERE id <= 3', cb))))
    expect(noKey).toMatchObject({ code: 'RECORD_IDS_INCOMPLETE' })
    const noContext = await thrown(called((cb) => conn.query('SELECT id, full_name FROM people WHERE id <= 3', cb)))
    expect(noContext).toMatchObject({ code: 'CONTEXT_MISSING' })
    // Refused before any row is out, in stream mode too.
    const streamedRows: unknown[] = []
    const streamErr = await as('clerk.anna', purpose, () =>
      thrown(async () => {
        for await (const row of conn.query('SELECT full_name FROM people').stream()) streamedRows.push(row)
      }),
    )
    expect(streamErr).toMatchObject({ code: 'RECORD_IDS_INCOMPLETE' })
    expect(streamedRows).toEqual([])
    // The connection is still usable, and a proper read passes.
    const [rows] = await as('clerk.anna', purpose, () => called((cb) => conn.query('SELECT id, full_name FROM people WHERE id <= 3', cb)))
    expect(rows).toHaveLength(3)
    expect((await readsFor(purpose)).map((r) => r.record_ids)).toEqual([['1', '2', '3']])
    expect(strict.stats().refused).toBe(3)
  })

  it('refuses a read over maxRowsPerRead (READ_TOO_LARGE): the caller sees no rows, and a stream stops at the limit', async () => {
    const capped = createReadRecorder(pipeline.producer, { tables: TABLES, maxRowsPerRead: 100 }, { logger: testLogger })
    const conn = coreConnection()
    await instrumentMysql2(conn, capped)
    const purpose = freshPurpose('oversize')
    await as('clerk.anna', purpose, async () => {
      let delivered: unknown = 'not called'
      const err = await new Promise<Error | null>((resolve) =>
        conn.query('SELECT id, full_name FROM people WHERE id <= 500', (e, rows) => {
          delivered = rows
          resolve(e)
        }),
      )
      expect(err).toMatchObject({ code: 'READ_TOO_LARGE' })
      expect(delivered).toBeUndefined()
      await expect(conn.promise().query('SELECT id, full_name FROM people WHERE id <= 101')).rejects.toMatchObject({ code: 'READ_TOO_LARGE' })
      const [ok] = await conn.promise().query('SELECT id, full_name FROM people WHERE id <= 100')
      expect(ok).toHaveLength(100)
      const streamed: unknown[] = []
      const streamErr = await thrown(async () => {
        for await (const row of conn.query('SELECT id, full_name FROM people').stream()) streamed.push(row)
      })
      expect(streamErr).toMatchObject({ code: 'READ_TOO_LARGE' })
      expect(streamed.length).toBeLessThanOrEqual(100)
    })
    const reads = await readsFor(purpose)
    expect(reads.filter((r) => r.row_count > 100)).toEqual([])
    expect(idsOf(reads, 'people')).toEqual(range(1, 100))
  })

  it('holds fail-closed rows until their event is durable, and refuses them (AUDIT_UNAVAILABLE) when it cannot be', async () => {
    const failClosed: AuditHookConfigInput['tables'] = { people: { policy: 'fail-closed', columns: ['full_name', 'phone'] }, case_people: {} }
    const durable = coreConnection()
    await instrumentMysql2(durable, createReadRecorder(pipeline.producer, { tables: failClosed }, { logger: testLogger }))
    const purpose = freshPurpose('fail-closed')
    const [rows] = await as('clerk.anna', purpose, () => called((cb) => durable.query('SELECT id, full_name FROM people WHERE id = 31', cb)))
    expect(rows).toHaveLength(1)
    expect((await readsFor(purpose)).map((r) => r.record_ids)).toEqual([['31']])

    // A producer that can no longer publish: every event it is given fails.
    const closed = await closedProducer()
    const warnings: string[] = []
    const logger = createLogger({ level: 'warn' }, new Writable({ write: (chunk: Buffer, _enc, done) => (warnings.push(chunk.toString()), done()) }))
    const unavailable = coreConnection()
    await instrumentMysql2(unavailable, createReadRecorder(closed, { tables: failClosed, durableWithinMs: 2000 }, { logger: testLogger }), { logger })
    await as('clerk.anna', purpose, async () => {
      let delivered: unknown = 'not called'
      const err = await new Promise<Error | null>((resolve) =>
        unavailable.query('SELECT id, phone FROM people WHERE id = 32', (e, r) => {
          delivered = r
          resolve(e)
        }),
      )
      expect(err).toMatchObject({ code: 'AUDIT_UNAVAILABLE' })
      expect(delivered).toBeUndefined()
      await expect(unavailable.promise().execute('SELECT id, phone FROM people WHERE id = ?', [33])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' })
      // A fail-open table is still read: its lapse is counted, not refused.
      const [links] = await unavailable.promise().query('SELECT case_id, person_id, role FROM case_people WHERE case_id = 1')
      expect((links as Row[]).length).toBeGreaterThan(0)
      // A stream cannot be held back: it is cut once the event is known lost.
      for (let i = 0; i < 2; i++) {
        const streamErr = await thrown(async () => {
          for await (const row of unavailable.query('SELECT id, full_name FROM people').stream()) void row
        })
        expect(streamErr).toMatchObject({ code: 'AUDIT_UNAVAILABLE' })
      }
    })
    expect(warnings.filter((w) => w.includes('fail-closed table read in stream mode'))).toHaveLength(1)
  })

  it('refuses at instrument time a configured table, column or key the database does not have (HOOK_TABLE_UNKNOWN)', async () => {
    const conn = await promiseConnection()
    const attach = (tables: AuditHookConfigInput['tables']) => thrown(instrumentMysql2(conn, createReadRecorder(pipeline.producer, { tables }, { logger: testLogger })))
    expect(await attach({ patients: {} })).toMatchObject({ code: 'HOOK_TABLE_UNKNOWN', details: { table: 'patients' } })
    expect(await attach({ [`${db.database}_gone.people`]: {} })).toMatchObject({ code: 'HOOK_TABLE_UNKNOWN' })
    expect(await attach({ people: { columns: ['full_name', 'ssn'] } })).toMatchObject({ code: 'HOOK_TABLE_UNKNOWN', details: { table: 'people', column: 'ssn' } })
    expect(await attach({ people: { primaryKey: 'uuid' } })).toMatchObject({ code: 'HOOK_TABLE_UNKNOWN', details: { column: 'uuid' } })
    const noKey = await attach({ people_import: {} })
    expect(noKey).toMatchObject({ code: 'HOOK_TABLE_UNKNOWN', details: { table: 'people_import' } })
    expect((noKey as Error).message).toContain('primary key')
    // Qualified names and a configured key work.
    await expect(instrumentMysql2(conn, createReadRecorder(pipeline.producer, { tables: { [`${db.database}.people_import`]: { primaryKey: ['full_name', 'phone'] } } }, { logger: testLogger }))).resolves.toBe(conn)
    expect(await thrown(instrumentMysql2({} as never, recorder))).toMatchObject({ code: 'CONFIG_INVALID' })
  })
})

async function closedProducer(): Promise<AuditProducer> {
  const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic: pipeline.topic, service: 'closed-producer', signingKey: testSigningKey('closed-producer'), sqlDialect: 'mysql' }, { kafka: pipeline.kafka, logger: testLogger })
  await producer.close()
  return producer
}
