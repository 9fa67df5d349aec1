import { createHash } from 'node:crypto'
import mysql, { type Connection } from 'mysql2'
import mysqlPromise from 'mysql2/promise'
import { beforeAll, describe, expect, it } from 'vitest'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { instrumentMysql2 } from '../../producers/hooks/mysql2.js'
import { createReadRecorder, type ReadRecorder } from '../../producers/hooks/read-recorder.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { startHookPipeline, type HookPipeline, type StoredRead } from '../helpers/hook-pipeline.js'
import { testLogger } from '../helpers/kafka.js'
import { createHookDatabase, mariadbOptions, type HookDatabase } from '../helpers/mariadb.js'

/**
 * The key the database-side cross-check matches MariaDB's server_audit
 * entries on (issue 14): each hooked read carries the connection id the
 * server gave the connection (CONNECTION_ID(), mysql2's threadId) and the
 * SHA-256 of the statement text the server received, checked here against
 * the server's own general log.
 *
 * What mysql2 sends: `query(sql, values)` formats the values into the text
 * on the client (lib/base/connection.js) and sends that text as COM_QUERY;
 * `execute(sql, values)` sends the text with its `?` as COM_STMT_PREPARE
 * (once per connection and text: mysql2 caches the statement) and the values
 * in binary in COM_STMT_EXECUTE. The server logs an execution with the
 * values it substituted itself, a text the client never sent.
 */

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

let pipeline: HookPipeline
let db: HookDatabase
let recorder: ReadRecorder

beforeAll(async () => {
  ;[pipeline, db] = await Promise.all([startHookPipeline({ producer: { sqlDialect: 'mysql' } }), createHookDatabase(200, 20)])
  recorder = createReadRecorder(pipeline.producer, { tables: { people: { columns: ['full_name', 'phone', 'address'] } } }, { logger: testLogger })
})

/** The core connection's id from the handshake (the promise wrapper's types do not show its `.connection`). */
const threadIdOf = (conn: mysqlPromise.Connection): number => (conn as unknown as { connection: { threadId: number } }).connection.threadId

async function hookedConnection(): Promise<mysqlPromise.Connection> {
  const conn = await mysqlPromise.createConnection(db.options)
  deferCleanup(() => conn.end())
  return instrumentMysql2(conn, recorder)
}

async function readsOf(purpose: string): Promise<StoredRead[]> {
  await pipeline.settle()
  return (await pipeline.storedReads()).filter((r) => r.purpose === purpose)
    // In the order the producer numbered them: a topic's partitions are separate chains.
    .sort((a, b) => a.producer_seq - b.producer_seq)
}

const as = <T>(purpose: string, fn: () => Promise<T>) => runWithAuditContext({ principal: { id: 'clerk.mysql' }, purpose }, fn)

interface LogLine {
  command_type: string
  argument: string
}

/**
 * Runs `fn` with the server's general log on (to a table), and returns what
 * it logged for connection `threadId`. The log is a server-wide setting:
 * switched back to what it was before, whatever `fn` does.
 */
async function generalLogOf(threadId: number, fn: () => Promise<void>): Promise<LogLine[]> {
  const admin = await mysqlPromise.createConnection(mariadbOptions())
  try {
    const [before] = await admin.query<mysqlPromise.RowDataPacket[]>('SELECT @@GLOBAL.general_log AS on_, @@GLOBAL.log_output AS output')
    const { on_, output } = before[0] as { on_: number; output: string }
    const since = (await admin.query<mysqlPromise.RowDataPacket[]>('SELECT NOW(6) AS t'))[0][0]!['t'] as Date
    await admin.query(`SET GLOBAL log_output = ?`, [output.includes('TABLE') ? output : `${output},TABLE`])
    await admin.query('SET GLOBAL general_log = 1')
    try {
      await fn()
    } finally {
      await admin.query('SET GLOBAL general_log = ?', [on_])
      await admin.query('SET GLOBAL log_output = ?', [output])
    }
    const [lines] = await admin.query<mysqlPromise.RowDataPacket[]>(
      `SELECT command_type, CONVERT(argument USING utf8mb4) AS argument FROM mysql.general_log WHERE thread_id = ? AND event_time >= ? ORDER BY event_time`,
      [threadId, since],
    )
    return lines as LogLine[]
  } finally {
    await admin.end()
  }
}

describe('mysql2 hook: the server connection id and statement digest of every read', () => {
  it('query(sql, values): the connection id CONNECTION_ID() returns, and the digest of the formatted text the server logged', async () => {
    const conn = await hookedConnection()
    const [[{ id }]] = (await conn.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]]
    expect(threadIdOf(conn)).toBe(id)
    const sql = 'SELECT id, full_name FROM people WHERE id = ? AND full_name <> ?'
    // Escapes and a non-ASCII character as the client formats them. Not an
    // astral one: the log table's column is utf8mb3 and stores one as
    // \xF0\x9F… (the server itself received the four bytes: the connection
    // is utf8mb4), a text the digest could not be compared with.
    const values = [7, "O'Brien \\ é"]
    const sent = conn.format(sql, values)
    const log = await generalLogOf(id, () => as('mysql.query', async () => void (await conn.query(sql, values))))
    const queries = log.filter((l) => l.command_type === 'Query').map((l) => l.argument)
    expect(queries).toContain(sent)
    const [read] = await readsOf('mysql.query')
    expect(read).toMatchObject({ db_session: String(id), statement_digest: sha256(sent), record_ids: ['7'] })
  })

  it('execute(sql, values): the digest of the text COM_STMT_PREPARE carried; the server logs each execution with its own substitution', async () => {
    const conn = await hookedConnection()
    const threadId = threadIdOf(conn)
    const sql = 'SELECT id, phone FROM people WHERE id IN (?, ?)'
    const log = await generalLogOf(threadId, () =>
      as('mysql.execute', async () => {
        await conn.execute(sql, [3, 4])
        await conn.execute(sql, [5, 6])
      }),
    )
    expect(log.filter((l) => l.command_type === 'Prepare').map((l) => l.argument)).toEqual([sql])
    expect(log.filter((l) => l.command_type === 'Execute').map((l) => l.argument)).toEqual(['SELECT id, phone FROM people WHERE id IN (3, 4)', 'SELECT id, phone FROM people WHERE id IN (5, 6)'])
    const reads = await readsOf('mysql.execute')
    expect(reads.map((r) => [r.db_session, r.statement_digest, r.record_ids])).toEqual([
      [String(threadId), sha256(sql), ['3', '4']],
      [String(threadId), sha256(sql), ['5', '6']],
    ])
  })

  it('a pool: each read carries the id of the connection that ran it', async () => {
    const pool = mysql.createPool({ ...db.options, connectionLimit: 2 })
    deferCleanup(() => new Promise<void>((resolve) => pool.end(() => resolve())))
    await instrumentMysql2(pool, recorder)
    const ids = await as('mysql.pool', () =>
      Promise.all(
        [11, 12].map(
          (person) =>
            new Promise<number>((resolve, reject) =>
              pool.getConnection((err, conn) => {
                if (err) return reject(err)
                conn.query('SELECT id, address, CONNECTION_ID() AS cid FROM people WHERE id = ?', [person], (e, rows) => {
                  conn.release()
                  if (e) reject(e)
                  else resolve((rows as { cid: number }[])[0]!.cid)
                })
              }),
            ),
        ),
      ),
    )
    const reads = await readsOf('mysql.pool')
    expect(reads.map((r) => [r.record_ids[0], r.db_session]).sort()).toEqual([
      ['11', String(ids[0])],
      ['12', String(ids[1])],
    ])
  })

  it('a probe that found nothing is a read of 0 rows: callback, promise, stream and a multi-statement query', async () => {
    const core: Connection = mysql.createConnection({ ...db.options, multipleStatements: true })
    deferCleanup(() => new Promise<void>((resolve) => core.end(() => resolve())))
    await instrumentMysql2(core, recorder)
    const probe = "SELECT id, full_name FROM people WHERE full_name = 'Nobody Atall'"
    await as('mysql.zero', async () => {
      await new Promise<void>((resolve, reject) => core.query(probe, (err, rows) => (err ? reject(err) : (expect(rows).toEqual([]), resolve()))))
      await core.promise().query(probe)
      // Stream mode: the fields arrive, then the end, and no row.
      await new Promise<void>((resolve, reject) => core.query(probe).on('error', reject).on('end', resolve))
      // Two statements, the second of them empty: its own zero-row read.
      await core.promise().query(`SELECT id, phone FROM people WHERE id = 1; ${probe}`)
    })
    const reads = await readsOf('mysql.zero')
    const threadId = String(core.threadId)
    expect(reads.map((r) => ({ rows: r.row_count, ids: r.record_ids, session: r.db_session, digest: r.statement_digest }))).toEqual([
      { rows: 0, ids: [], session: threadId, digest: sha256(probe) },
      { rows: 0, ids: [], session: threadId, digest: sha256(probe) },
      { rows: 0, ids: [], session: threadId, digest: sha256(probe) },
      // One statement text for both result sets, the server's one COM_QUERY.
      { rows: 1, ids: ['1'], session: threadId, digest: sha256(`SELECT id, phone FROM people WHERE id = 1; ${probe}`) },
      { rows: 0, ids: [], session: threadId, digest: sha256(`SELECT id, phone FROM people WHERE id = 1; ${probe}`) },
    ])
  })

  it('a stream that returned rows adds no zero-row event at its end', async () => {
    const core: Connection = mysql.createConnection(db.options)
    deferCleanup(() => new Promise<void>((resolve) => core.end(() => resolve())))
    await instrumentMysql2(core, recorder)
    let rows = 0
    await as('mysql.stream', () => new Promise<void>((resolve, reject) => core.query('SELECT id, full_name FROM people WHERE id <= 5').on('result', () => rows++).on('error', reject).on('end', resolve)))
    expect(rows).toBe(5)
    const reads = await readsOf('mysql.stream')
    // The first row alone (strict mode refuses before a row is out), then the rest at the end.
    expect(reads.map((r) => r.row_count)).toEqual([1, 4])
    expect(reads.flatMap((r) => r.record_ids)).toEqual(['1', '2', '3', '4', '5'])
  })
})
