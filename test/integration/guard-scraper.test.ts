import { createPublicKey } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import pg from 'pg'
import Cursor from 'pg-cursor'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuditProducer, type AuditProducer } from '../../producers/audit-producer.js'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { auditContextMiddleware } from '../../producers/context/express.js'
import { instrumentPg } from '../../producers/hooks/pg.js'
import { createReadRecorder, type ReadRecorder } from '../../producers/hooks/read-recorder.js'
import { sideTopic } from '../../schemas/side-batch.js'
import { readAccessEvents, readAlerts } from '../helpers/guard-kafka.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { PG_CONNECTION } from '../helpers/postgres.js'
import { createRegistryDatabase } from '../helpers/guard-registry.js'
import { testSigningKey } from '../helpers/producer-trust.js'
import { thrown } from '../helpers/thrown.js'

const SERVICE = 'registry-api'
const BUDGET = 50
const APPLICANTS = 200

describe('extraction guard: scenario 1 scraper through Express and the pg hook', () => {
  let kafka: ReturnType<typeof testKafka>
  let topic: string
  let producer: AuditProducer
  let recorder: ReadRecorder
  let pool: pg.Pool
  let server: Server
  let base: string

  beforeAll(async () => {
    const database = await createRegistryDatabase(APPLICANTS)
    kafka = testKafka()
    topic = await freshTopic(kafka, 1)
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: sideTopic(topic, 'alert'), numPartitions: 1 }], waitForLeaders: true })
    await admin.disconnect()
    afterAll(async () => {
      const a = kafka.admin()
      await a.connect()
      await a.deleteTopics({ topics: [sideTopic(topic, 'alert')] }).catch(() => {})
      await a.disconnect()
    })
    producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: SERVICE, signingKey: testSigningKey(SERVICE), lingerMs: 0 }, { logger: testLogger })
    recorder = createReadRecorder(
      producer,
      {
        tables: { applicants: {} },
        guard: { budgets: { 'applicant-records': { tables: ['applicants'], limits: { user: { perMinute: BUDGET, perHour: 10 * BUDGET } }, action: 'refuse' } } },
      },
      { logger: testLogger },
    )
    pool = await instrumentPg(new pg.Pool({ ...PG_CONNECTION, database, max: 4 }), recorder)
    const app = express()
    app.use(auditContextMiddleware({ principal: (req) => (typeof req.headers['x-user'] === 'string' ? { id: req.headers['x-user'] } : undefined) }))
    app.get('/applicants/:id', (req, res, next) => {
      pool.query('SELECT * FROM applicants WHERE id = $1', [req.params['id']]).then((r) => res.json(r.rows), next)
    })
    // The application's own error handler: the guard's refusal becomes a 429 with its code, no rows.
    app.use((err: { code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.code === 'EXTRACTION_LIMIT' ? 429 : 500).json({ code: err.code })
    })
    server = createServer(app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    return async () => {
      await new Promise((resolve) => server.close(resolve))
      await pool.end()
      await recorder.close()
      await producer.close()
    }
  })

  it('stops the scraper after its budget; its refused reads and the alert are on Kafka, signed', async () => {
    // The scraper walks the ids one by one, as in the breach.
    const statuses: number[] = []
    const bodies: unknown[] = []
    for (let id = 1; id <= 80; id++) {
      const res = await fetch(`${base}/applicants/${id}`, { headers: { 'x-user': 'clerk.scraper' } })
      statuses.push(res.status)
      bodies.push(await res.json())
    }
    expect(statuses.slice(0, BUDGET)).toEqual(Array(BUDGET).fill(200))
    expect(statuses.slice(BUDGET)).toEqual(Array(80 - BUDGET).fill(429))
    expect(bodies.slice(BUDGET)).toEqual(Array(80 - BUDGET).fill({ code: 'EXTRACTION_LIMIT' }))
    // A colleague reading at a human pace is not affected.
    expect((await fetch(`${base}/applicants/7`, { headers: { 'x-user': 'clerk.ada' } })).status).toBe(200)

    // The caller sees no rows in every driver form: callback, promise, cursor.
    const asScraper = <T>(fn: () => Promise<T>) => runWithAuditContext({ principal: { id: 'clerk.scraper' } }, fn)
    const viaCallback = await asScraper(() => new Promise<{ err: unknown; rows: unknown }>((resolve) => pool.query('SELECT * FROM applicants WHERE id = 150', (err, res) => resolve({ err, rows: res?.rows }))))
    expect(viaCallback).toMatchObject({ err: { code: 'EXTRACTION_LIMIT' }, rows: undefined })
    expect(await thrown(asScraper(() => pool.query('SELECT id, email FROM applicants WHERE id BETWEEN 151 AND 153')))).toMatchObject({ code: 'EXTRACTION_LIMIT' })
    const cursorResult = await asScraper(async () => {
      const client = await pool.connect()
      try {
        const cursor = client.query(new Cursor('SELECT id, phone FROM applicants WHERE id > 160 ORDER BY id'))
        const got = await cursor.read(5).then((rows) => ({ rows }), (err: unknown) => ({ err }))
        await cursor.close()
        return got
      } finally {
        client.release()
      }
    })
    expect(cursorResult).toMatchObject({ err: { code: 'EXTRACTION_LIMIT' } })
    expect(cursorResult).not.toHaveProperty('rows')

    await producer.flush()
    const publicKey = createPublicKey(testSigningKey(SERVICE))
    const events = (await readAccessEvents(kafka, topic, publicKey)).filter((e) => e.principal_id === 'clerk.scraper')
    const success = events.filter((e) => e.outcome === 'success')
    const denied = events.filter((e) => e.outcome === 'denied')
    expect(success.flatMap((e) => e.record_ids).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: BUDGET }, (_, i) => String(i + 1)))
    // Each refused read names the records it would have returned: the letters of an attempted extraction.
    expect(denied.flatMap((e) => e.record_ids).sort((a, b) => Number(a) - Number(b))).toEqual([
      ...Array.from({ length: 80 - BUDGET }, (_, i) => String(BUDGET + 1 + i)),
      '150', '151', '152', '153', '161', '162', '163', '164', '165',
    ])

    // Alerts go out in the background: wait for the first.
    let alerts: Awaited<ReturnType<typeof readAlerts>> = []
    for (let i = 0; i < 50 && alerts.length === 0; i++) {
      alerts = await readAlerts(kafka, topic, publicKey)
      if (alerts.length === 0) await new Promise((r) => setTimeout(r, 200))
    }
    // One alert per principal, budget, window and action per minute: the scraper's 30+ refusals make one.
    expect(alerts).toHaveLength(1)
    const firstDenied = denied.find((e) => e.record_ids[0] === String(BUDGET + 1))!
    expect(alerts[0]).toMatchObject({
      principal_id: 'clerk.scraper',
      principal_type: 'user',
      table_name: 'applicants',
      budget: 'applicant-records',
      window_seconds: 60,
      limit: BUDGET,
      observed: BUDGET + 1,
      action: 'refuse',
      read_id: firstDenied.read_id,
      records_in_read: 1,
      producer_seq: 1,
      origin_service: SERVICE,
      // Alerts are numbered under a producer id of their own per process (see alertProducerId).
      origin_producer: expect.stringMatching(new RegExp(`^${producer.producerId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:alerts:[0-9a-f]{8}$`)),
    })
    expect(recorder.stats()).toMatchObject({ denied: 80 - BUDGET + 3, guard: { refused: 80 - BUDGET + 3 } })
    expect(producer.alertStats()).toEqual({ published: 1, failed: 0, dropped: 0 })
  })
})
