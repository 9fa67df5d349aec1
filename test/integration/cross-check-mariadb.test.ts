import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uuidv7 } from '../../common/uuid.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import { ensureTopics } from '../../consumers/topics.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { runDbAuditReader } from '../../producers/db-audit/index.js'
import { instrumentMysql2 } from '../../producers/hooks/mysql2.js'
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
 * The database-side cross-check end to end on a real MariaDB with its
 * server_audit plugin: an application reading through the mysql2 hook
 * (prepared statements and client-side formatted queries; each read carries
 * the connection's thread id and the digest of the text sent) and the
 * mariadb client reading the same table under the same account. Every
 * application read must be matched and exactly the client's reads reported.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PORT = 53309
const HOME = join(ROOT, '.cache', `mariadb-cross-check-${randomBytes(4).toString('hex')}`)
const SERVER_ENV = { ...process.env, READTRAIL_MARIADB_AUDIT_HOME: HOME, READTRAIL_MARIADB_AUDIT_PORT: String(PORT) }
const CONNECTION = { host: '127.0.0.1', port: PORT, user: 'readtrail', password: 'readtrail', database: 'registry' }
const server = (...args: string[]) => execFileSync(join(ROOT, 'scripts/mariadb-audit.sh'), args, { env: SERVER_ENV, stdio: ['ignore', 'pipe', 'pipe'] }).toString()
const kafka = testKafka()

beforeAll(async () => {
  server('start')
  const admin = await mysql.createConnection({ ...CONNECTION, database: undefined, multipleStatements: true })
  await admin.query(`
    DROP DATABASE IF EXISTS registry; CREATE DATABASE registry; USE registry;
    CREATE TABLE applicants (id INT PRIMARY KEY, full_name VARCHAR(200) NOT NULL, phone VARCHAR(40) NOT NULL);
    INSERT INTO applicants SELECT seq, CONCAT('Applicant ', seq), CONCAT('+39 0', seq) FROM seq_1_to_5000;
  `)
  await admin.end()
}, 180_000)

afterAll(() => {
  server('reset')
})

function client(sql: string): void {
  execFileSync('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(PORT), '-u', 'readtrail', '-preadtrail', 'registry', '-N', '-B', '-e', sql])
}

describe('database-side cross-check (MariaDB server_audit)', () => {
  it('matches every hooked read and reports exactly the mariadb client reads', async () => {
    const topic = await freshTopic(kafka, 2)
    await ensureTopics(kafka, { topic, partitions: 2, sideStreams: true })
    const store = await openTestStore()
    const groupId = `cc-${uuidv7()}`
    const ingest = await testDeployment(kafka, topic).ingest({ store, topic, groupId, sideStreams: true })

    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'records-api', signingKey: testSigningKey('records-api'), sqlDialect: 'mysql' }, { logger: testLogger })
    deferCleanup(() => producer.close())
    const recorder = createReadRecorder(producer, { tables: { applicants: { policy: 'fail-closed' } } })
    const pool = await instrumentMysql2(mysql.createPool({ ...CONNECTION, connectionLimit: 4 }), recorder)
    deferCleanup(() => pool.end().catch(() => {}))

    const reader = await runDbAuditReader({
      source: 'cross-check-mariadb', kind: 'server_audit', log: join(HOME, 'log', 'server_audit.log'), tables: ['registry.applicants'],
      stateDir: freshTempDir('rt-cross-check-'), topic, service: 'registry', signingKey: testSigningKey('registry'), pollIntervalMs: 100, kafka: testKafkaConnection(), logger: testLogger,
    })
    deferCleanup(() => reader.stop())

    const APP_READS = 1500
    const work: Promise<unknown>[] = []
    for (let i = 0; i < APP_READS; i++) {
      const read = i % 10 === 0
        ? () => pool.query('SELECT id, full_name FROM applicants WHERE full_name = ? OR id = ?', [`o'brien ${i}`, 1 + (i % 5000)])
        : i % 97 === 0
          ? () => pool.execute('SELECT id, phone FROM applicants WHERE id = ?', [-i])
          : () => pool.execute('SELECT id, full_name, phone FROM applicants WHERE id = ?', [1 + (i % 5000)])
      work.push(runWithAuditContext({ principal: { id: `clerk-${i % 7}` } }, read))
      if (i === 300 || i === 1200) client('SELECT id, full_name, phone FROM applicants WHERE id = 42')
      if (i === 700) client('SELECT * FROM applicants LIMIT 200')
      if (work.length >= 40) await Promise.all(work.splice(0))
    }
    await Promise.all(work)
    await producer.flush()

    await untilStored(store, APP_READS + 3, APP_READS)
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 60_000 })

    const completeness = await dbAuditCompleteness(store)
    expect(completeness.map((c) => ({ db: c.db_name, entries: c.entries, unmatched: c.unmatched }))).toEqual([{ db: 'registry', entries: APP_READS + 3, unmatched: 3 }])
    const answer = await runSavedQuery(store, unauditedReads, { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000) })
    expect(answer.rows).toHaveLength(1)
    expect(answer.rows[0]).toMatchObject({ db_name: 'registry', db_user: 'readtrail', client_addr: '127.0.0.1' })
    expect(Number(answer.rows[0]!.statements)).toBe(3)
    await pool.end()
    await ingest.stop()
  })
})
