import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uuidv7 } from '../../common/uuid.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { ensureTopics } from '../../consumers/topics.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { runDbAuditReader } from '../../producers/db-audit/index.js'
import { instrumentPg } from '../../producers/hooks/pg.js'
import { createReadRecorder } from '../../producers/hooks/read-recorder.js'
import { dbAuditCompleteness } from '../../queries/db-audit-match.js'
import { runSavedQuery } from '../../queries/saved-query.js'
import { unauditedReads } from '../../queries/unaudited-reads.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { untilStored } from '../helpers/cross-check.js'
import { testDeployment } from '../helpers/ingest.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { testSigningKey } from '../helpers/producer-trust.js'
import { openTestStore } from '../helpers/store.js'
import { freshTempDir } from '../helpers/temp-dir.js'

/**
 * The database-side cross-check end to end, on a real PostgreSQL 15 with
 * pgAudit: an application reading through the pg hook (its reads carry the
 * backend pid and statement digest) and psql reading the same table as the
 * same role. pgAudit's log goes through the reader and Kafka into
 * db_audit_log, the hooked reads into access_log; every application read
 * must be matched and exactly the psql reads reported.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PORT = 55436
const DATABASE = 'rt_cross_check'
const CLUSTER_ENV = {
  ...process.env,
  READTRAIL_PG_AUDIT_HOME: join(ROOT, '.cache', `pg-cross-check-${randomBytes(4).toString('hex')}`),
  READTRAIL_PG_AUDIT_PORT: String(PORT),
  READTRAIL_PG_AUDIT_DATABASE: DATABASE,
  READTRAIL_PG_AUDIT_FORMAT: 'csvlog',
}
const CONNECTION = { host: '127.0.0.1', port: PORT, user: 'postgres', database: DATABASE }
const cluster = (...args: string[]) => execFileSync(join(ROOT, 'scripts/pg-audit-cluster.sh'), args, { env: CLUSTER_ENV, stdio: ['ignore', 'pipe', 'pipe'] }).toString()
const kafka = testKafka()

beforeAll(async () => {
  cluster('start')
  const admin = new pg.Client(CONNECTION)
  await admin.connect()
  await admin.query(`
    DROP TABLE IF EXISTS applicants;
    CREATE TABLE applicants (id int PRIMARY KEY, full_name text NOT NULL, phone text NOT NULL);
    INSERT INTO applicants SELECT g, 'Applicant ' || g, '+39 0' || g FROM generate_series(1, 5000) g;
  `)
  await admin.end()
  cluster('audit', DATABASE, 'public.applicants')
}, 180_000)

afterAll(() => {
  cluster('reset')
})

function psql(sql: string): void {
  execFileSync('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(PORT), '-U', 'postgres', '-d', DATABASE, '-c', sql])
}

describe('database-side cross-check (pgAudit)', () => {
  it('matches every hooked read and reports exactly the psql reads, grouped by user, address and application', async () => {
    const topic = await freshTopic(kafka, 2)
    await ensureTopics(kafka, { topic, partitions: 2, sideStreams: true })
    const store = await openTestStore()
    const groupId = `cc-${uuidv7()}`
    const ingest = await testDeployment(kafka, topic).ingest({ store, topic, groupId, sideStreams: true })

    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'records-api', signingKey: testSigningKey('records-api') }, { logger: testLogger })
    deferCleanup(() => producer.close())
    const recorder = createReadRecorder(producer, { tables: { applicants: { policy: 'fail-closed' } } })
    const pool = await instrumentPg(new pg.Pool({ ...CONNECTION, max: 4, application_name: 'records-api' }), recorder)
    // The cluster is stopped when the file ends: idle clients then see admin_shutdown.
    pool.on('error', () => {})
    deferCleanup(() => pool.end().catch(() => {}))

    const reader = await runDbAuditReader({
      source: 'cross-check-pg', kind: 'pgaudit', log: join(CLUSTER_ENV.READTRAIL_PG_AUDIT_HOME, 'log'), logFormat: 'csvlog', tables: ['public.applicants'],
      stateDir: freshTempDir('rt-cross-check-'), topic, service: 'registry', signingKey: testSigningKey('registry'), pollIntervalMs: 100, kafka: testKafkaConnection(), logger: testLogger,
    })
    deferCleanup(() => reader.stop())

    // Mixed traffic: thousands of hooked reads on four pooled connections
    // (the same statements over and over, parameterised and literal, a
    // read that finds nothing), and psql under the same role in between.
    const APP_READS = 2000
    const work: Promise<unknown>[] = []
    for (let i = 0; i < APP_READS; i++) {
      const as = `clerk-${i % 7}`
      const read = i % 10 === 0
        ? () => pool.query(`SELECT id, full_name FROM applicants WHERE id BETWEEN ${i} AND ${i + 3}`)
        : i % 97 === 0
          ? () => pool.query('SELECT id, phone FROM applicants WHERE id = $1', [-i])
          : () => pool.query('SELECT id, full_name, phone FROM applicants WHERE id = $1', [1 + (i % 5000)])
      work.push(runWithAuditContext({ principal: { id: as } }, read))
      if (i === 500 || i === 1500) psql('SELECT id, full_name, phone FROM applicants WHERE id = 42')
      if (i === 1000) psql('SELECT * FROM applicants LIMIT 200')
      if (work.length >= 40) await Promise.all(work.splice(0))
    }
    await Promise.all(work)
    await producer.flush()

    // Everything through: the hooked reads and the server's entries (2000 + 3).
    await untilStored(store, APP_READS + 3, APP_READS)
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 60_000 })
    expect(reader.stats().published).toBe(APP_READS + 3)

    const completeness = await dbAuditCompleteness(store)
    expect(completeness.map((c) => ({ db: c.db_name, entries: c.entries, unmatched: c.unmatched }))).toEqual([{ db: DATABASE, entries: APP_READS + 3, unmatched: 3 }])

    const answer = await runSavedQuery(store, unauditedReads, { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000) })
    expect(answer.rows).toHaveLength(1)
    expect(answer.rows[0]).toMatchObject({ db_name: DATABASE, db_user: 'postgres', client_addr: '127.0.0.1', application_name: 'psql' })
    expect(Number(answer.rows[0]!.statements)).toBe(3)
    await pool.end()
    await ingest.stop()
  })
})
