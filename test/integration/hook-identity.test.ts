import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Fastify from 'fastify'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { beforeAll, describe, expect, it } from 'vitest'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { auditContextMiddleware } from '../../producers/context/express.js'
import { registerAuditContext } from '../../producers/context/fastify.js'
import { instrumentMysql2 } from '../../producers/hooks/mysql2.js'
import { instrumentPg } from '../../producers/hooks/pg.js'
import { createReadRecorder, type ReadRecorder } from '../../producers/hooks/read-recorder.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { startHookPipeline, type HookPipeline } from '../helpers/hook-pipeline.js'
import { testLogger } from '../helpers/kafka.js'
import { createHookDatabase, type HookDatabase } from '../helpers/mariadb.js'
import { createPracticeDatabase, PG_CONNECTION } from '../helpers/postgres.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'

/** Stored reads with what identifies them, by the principal or trace that made them. */
async function identities(pipeline: HookPipeline): Promise<{ principal_id: string; principal_type: string; db_name: string; table_name: string; client_ip: string | null; trace_id: string | null; query_fingerprint: string }[]> {
  await pipeline.settle()
  return pipeline.store.queryRows(
    `SELECT principal_id, toString(principal_type) AS principal_type, db_name, table_name,
            if(isNull(client_ip), NULL, replaceRegexpOne(toString(client_ip), '^::ffff:', '')) AS client_ip, trace_id, query_fingerprint
     FROM ${pipeline.store.table('access_log')} ORDER BY chain_id, seq`,
  )
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  deferCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('who, where and which database a hooked read is recorded under', () => {
  let pipeline: HookPipeline
  let pgDb: string
  let home: HookDatabase
  let other: HookDatabase
  let pgRecorder: ReadRecorder
  let url: string

  beforeAll(async () => {
    // The producer keeps the default sqlDialect (postgres): the mysql2 hook must lex MySQL anyway.
    ;[pipeline, pgDb, home, other] = await Promise.all([startHookPipeline(), createPracticeDatabase(), createHookDatabase(50, 5), createHookDatabase(50, 5)])
    pgRecorder = createReadRecorder(pipeline.producer, { tables: { patients: {} } }, { logger: testLogger })
    url = `postgres://${PG_CONNECTION.user}${PG_CONNECTION.password ? `:${PG_CONNECTION.password}` : ''}@${PG_CONNECTION.host}:${PG_CONNECTION.port}/${pgDb}`
  })

  it('records the database a pg.Pool or pg.Client reaches through a connection string, not `postgres` (regression)', async () => {
    const pool = await instrumentPg(new pg.Pool({ connectionString: url, max: 2 }), pgRecorder)
    deferCleanup(() => pool.end())
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    deferCleanup(() => client.end())
    await instrumentPg(client, pgRecorder)
    await runWithAuditContext({ principal: { id: 'id.pool' } }, () => pool.query('SELECT id, full_name FROM patients WHERE id = 100001'))
    await runWithAuditContext({ principal: { id: 'id.client' } }, () => client.query('SELECT id, full_name FROM patients WHERE id = 100002'))
    const configured = createReadRecorder(pipeline.producer, { tables: { patients: {} }, database: 'practice-main' }, { logger: testLogger })
    const named = await instrumentPg(new pg.Pool({ connectionString: url, max: 1 }), configured)
    deferCleanup(() => named.end())
    await runWithAuditContext({ principal: { id: 'id.configured' } }, () => named.query('SELECT id FROM patients WHERE id = 100003'))
    const reads = await identities(pipeline)
    const dbOf = (id: string) => reads.filter((r) => r.principal_id === id).map((r) => r.db_name)
    expect([dbOf('id.pool'), dbOf('id.client'), dbOf('id.configured')]).toEqual([[pgDb], [pgDb], ['practice-main']])
  })

  it("records a MySQL table under its own database, not the connection's default one, and lexes its SQL as MySQL", async () => {
    const recorder = createReadRecorder(pipeline.producer, { tables: { [`${other.database}.people`]: {}, people: {} } }, { logger: testLogger })
    const conn = await instrumentMysql2(await mysql.createConnection(home.options), recorder, { logger: testLogger })
    deferCleanup(() => conn.end())
    await runWithAuditContext({ principal: { id: 'id.mysql' } }, () =>
      conn.query(`SELECT o.id, o.full_name, h.phone FROM \`${other.database}\`.people o JOIN people h ON h.id = o.id WHERE o.full_name <> "Jane Secret-Name" AND o.id < 4`),
    )
    const reads = (await identities(pipeline)).filter((r) => r.principal_id === 'id.mysql')
    expect(reads.map((r) => [r.db_name, r.table_name]).sort()).toEqual([[home.database, 'people'], [other.database, `${other.database}.people`]].sort())
    // Read as PostgreSQL, "Jane Secret-Name" would be an identifier and stay in the fingerprint.
    for (const r of reads) expect(r.query_fingerprint).not.toContain('Secret')
  })

  it('keeps the client IP and trace id of anonymous requests through Express and Fastify (regression)', async () => {
    const pool = await instrumentPg(new pg.Pool({ connectionString: url, max: 2 }), pgRecorder)
    deferCleanup(() => pool.end())
    const principal = (req: { headers: Record<string, unknown> }) => (typeof req.headers['x-user'] === 'string' ? { id: req.headers['x-user'] } : undefined)
    const app = express()
    app.use(auditContextMiddleware({ principal }))
    app.get('/p', (_req, res, next) => {
      pool.query('SELECT id, phone FROM patients WHERE id = 100010').then(() => res.json({ ok: true }), next)
    })
    const expressUrl = await listen(createServer(app))
    const fastify = Fastify()
    registerAuditContext(fastify, { principal })
    fastify.get('/p', async () => {
      await pool.query('SELECT id, phone FROM patients WHERE id = 100011')
      return { ok: true }
    })
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    deferCleanup(() => fastify.close())
    const fastifyUrl = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`
    for (const base of [expressUrl, fastifyUrl]) {
      const res = await fetch(`${base}/p`, { headers: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` } })
      expect(res.status).toBe(200)
    }
    const anonymous = (await identities(pipeline)).filter((r) => r.trace_id === TRACE_ID)
    expect(anonymous).toHaveLength(2)
    for (const r of anonymous) expect(r).toMatchObject({ principal_id: 'hook-test', principal_type: 'system', client_ip: '127.0.0.1', db_name: pgDb })
    // Not counted as reads outside any context: the application said who (nobody signed in).
    expect(pgRecorder.stats().anonymous).toBe(2)
  })
})
