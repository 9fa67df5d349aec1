import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DbAuditError, DbAuditReader, runDbAuditReader } from '../../producers/db-audit/index.js'
import { positionPath } from '../../producers/db-audit/position-file.js'
import type { DbAuditEvent } from '../../schemas/db-audit-event.js'
import { sideTopic } from '../../schemas/side-batch.js'
import { readPublishedEvents, seqProblems, waitForPublishedEvents } from '../fixtures/db-audit/published-events.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { freshTempDir } from '../helpers/temp-dir.js'

// A private PostgreSQL 15 with pgAudit object auditing (scripts/pg-audit-cluster.sh),
// writing csvlog and jsonlog side by side: both readers must publish the same reads.
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PORT = 55434
const DATABASE = 'rt_db_audit'
const CLUSTER_ENV = {
  ...process.env,
  READTRAIL_PG_AUDIT_HOME: join(ROOT, '.cache', `pg-audit-test-${randomBytes(4).toString('hex')}`),
  READTRAIL_PG_AUDIT_PORT: String(PORT),
  READTRAIL_PG_AUDIT_DATABASE: DATABASE,
  READTRAIL_PG_AUDIT_FORMAT: 'both',
}
const LOG_DIR = join(CLUSTER_ENV.READTRAIL_PG_AUDIT_HOME, 'log')
const CONNECTION = { host: '127.0.0.1', port: PORT, user: 'postgres', database: DATABASE }
const TABLES = ['public.patients']

const cluster = (...args: string[]) => execFileSync(join(ROOT, 'scripts/pg-audit-cluster.sh'), args, { env: CLUSTER_ENV, stdio: ['ignore', 'pipe', 'pipe'] }).toString()
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A read the log must show: the backend that ran it and the digest of the text sent. */
type Expected = string
const key = (session: string | number, statement: string, table = 'public.patients'): Expected => `${session}|${sha256(statement)}|${table}`
const keyOf = (e: DbAuditEvent): Expected => `${e.db_session}|${e.statement_digest}|${e.object_name}`

const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const kafka = testKafka()

/** Application traffic through node-postgres: parameterised reads, literal games, reads of other tables. Returns the patients reads. */
async function appTraffic(clients: readonly pg.Client[], rounds: number): Promise<Expected[]> {
  const expected: Expected[] = []
  const pids = await Promise.all(clients.map(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid))
  await Promise.all(
    clients.map(async (client, k) => {
      const pid = pids[k]!
      for (let i = 0; i < rounds; i++) {
        const byId = 'SELECT id, full_name FROM patients WHERE id = $1'
        await client.query(byId, [i % 50])
        expected.push(key(pid, byId))
        if (i % 10 === 0) {
          // A fake pgAudit line and a newline inside a literal; a table name inside a literal of another table's read.
          const tricky = `SELECT full_name FROM patients WHERE full_name = 'AUDIT: OBJECT,1,1,READ,SELECT,TABLE,public.doctors,"x"\n,' || $1`
          await client.query(tricky, [String(i)])
          expected.push(key(pid, tricky))
          await client.query(`SELECT 'public.patients' AS t FROM doctors LIMIT 1`)
          const join = 'SELECT p.id, d.full_name FROM patients p JOIN doctors d ON d.id = p.id % 5 WHERE p.id < 3'
          await client.query(join)
          expected.push(key(pid, join))
        }
      }
    }),
  )
  return expected
}

/** A direct read by psql, as a DBA (or a thief with the role's password) would make it. */
function psqlRead(): Expected {
  const sql = 'SELECT pg_backend_pid(), count(*) FROM patients'
  const out = execFileSync('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(PORT), '-U', 'postgres', '-d', DATABASE, '-c', sql]).toString().trim()
  return key(out.split('|')[0]!, sql)
}

async function connectClients(n: number): Promise<pg.Client[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const client = new pg.Client({ ...CONNECTION, application_name: 'records-api' })
      await client.connect()
      // A server restart ends the connection: the error is expected, the test reconnects.
      client.on('error', () => {})
      return client
    }),
  )
}

async function closeClients(clients: readonly pg.Client[]): Promise<void> {
  await Promise.all(clients.map((c) => c.end().catch(() => {})))
}

/** A reader in a child process, which the test can SIGKILL. */
function spawnReader(options: Record<string, unknown>): { child: ChildProcess; started: Promise<void>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/db-audit/run-reader.ts', JSON.stringify(options)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  const started = new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('"started":true')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`reader exited (${code}) before it started`)))
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  deferCleanup(() => child.kill('SIGKILL'))
  return { child, started, exited }
}

beforeAll(async () => {
  cluster('start')
  const admin = new pg.Client(CONNECTION)
  await admin.connect()
  await admin.query(`
    DROP TABLE IF EXISTS patients, doctors;
    CREATE TABLE patients (id int PRIMARY KEY, full_name text NOT NULL);
    CREATE TABLE doctors (id int PRIMARY KEY, full_name text NOT NULL);
    INSERT INTO patients SELECT g, 'Patient ' || g FROM generate_series(0, 99) g;
    INSERT INTO doctors SELECT g, 'Dr ' || g FROM generate_series(0, 9) g;
  `)
  await admin.end()
  cluster('audit', DATABASE, 'public.patients')
}, 180_000)

afterAll(() => {
  cluster('reset')
})

describe('pgAudit reader on a real PostgreSQL 15 (csvlog and jsonlog)', () => {
  it('publishes every read of the sensitive table exactly once through rotation, a killed reader and a database restart', async () => {
    const topic = await freshTopic(kafka, 1)
    const side = sideTopic(topic, 'db-audit')
    const keyDir = freshTempDir('rt-db-audit-key-')
    const keyPath = join(keyDir, 'db-audit.pem')
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
    const csvOptions = { source: 'pg-csv', kind: 'pgaudit' as const, log: LOG_DIR, logFormat: 'csvlog' as const, tables: TABLES, stateDir: freshTempDir('rt-db-audit-csv-'), topic, service: 'db-audit-test', signingKey: keyPath, pollIntervalMs: 100, kafka: testKafkaConnection() }
    const json = await runDbAuditReader({ source: 'pg-json', kind: 'pgaudit', log: LOG_DIR, logFormat: 'jsonlog', tables: TABLES, stateDir: freshTempDir('rt-db-audit-json-'), topic, service: 'db-audit-test', signingKey: privateKey, pollIntervalMs: 100, kafka: testKafkaConnection(), logger: testLogger })
    deferCleanup(() => json.stop())
    let csv = spawnReader(csvOptions)
    await csv.started

    const expected: Expected[] = []
    let clients = await connectClients(4)
    expected.push(...(await appTraffic(clients, 100)), psqlRead())

    // Rotation by signal (pg_ctl logrotate); file names have whole seconds.
    await sleep(1100)
    cluster('rotate')
    expected.push(...(await appTraffic(clients, 100)), psqlRead())

    // The csv reader is killed mid-stream and started again.
    const traffic = appTraffic(clients, 150)
    await sleep(300)
    csv.child.kill('SIGKILL')
    await csv.exited
    expected.push(...(await traffic))
    csv = spawnReader(csvOptions)
    await csv.started

    // The database restarts (a new log file at start-up); clients reconnect.
    await closeClients(clients)
    cluster('restart')
    clients = await connectClients(4)
    expected.push(...(await appTraffic(clients, 100)), psqlRead())

    // Rotation from SQL.
    await sleep(1100)
    await clients[0]!.query('SELECT pg_rotate_logfile()')
    expected.push(...(await appTraffic(clients, 50)), psqlRead())
    await closeClients(clients)

    for (const producer of ['pg-json', 'pg-csv']) {
      const events = await waitForPublishedEvents(kafka, side, producer, publicKey, expected.length)
      expect(seqProblems(events), producer).toEqual([])
      expect(events.map(keyOf).sort(), producer).toEqual([...expected].sort())
      const direct = events.filter((e) => e.application_name === 'psql')
      expect(direct).toHaveLength(4)
      expect(direct[0]).toMatchObject({ source_kind: 'pgaudit', db_name: DATABASE, db_user: 'postgres', client_addr: '127.0.0.1', command: 'SELECT', object_name: 'public.patients' })
      expect(new Set(events.map((e) => e.log_file)).size).toBeGreaterThanOrEqual(4)
    }
    csv.child.kill('SIGTERM')
    expect(await csv.exited).toBe(0)
    expect(json.stats()).toMatchObject({ rejected: 0, oversize: 0, lostFiles: 0 })

    // Throughput: a fresh reader catches up on the whole csvlog history.
    const started = performance.now()
    const fresh = await new DbAuditReader({ ...csvOptions, source: 'pg-csv-bench', stateDir: freshTempDir('rt-db-audit-bench-'), signingKey: privateKey, maxBatchEvents: 10_000, logger: testLogger }).runOnce()
    const seconds = (performance.now() - started) / 1000
    expect(fresh.published).toBe(expected.length)
    process.stderr.write(`db-audit pgaudit csvlog: ${fresh.published} entries (${fresh.records} records) read, signed and published in ${seconds.toFixed(2)} s = ${Math.round(fresh.published / seconds)} entries/s, ${fresh.batches} batches\n`)
  })

  it('a batch acknowledged but not committed (crash between the two) is not published again; reader_seq stays continuous', async () => {
    const topic = await freshTopic(kafka, 1)
    const side = sideTopic(topic, 'db-audit')
    const stateDir = freshTempDir('rt-db-audit-crash-')
    const options = { source: 'pg-crash', kind: 'pgaudit' as const, log: LOG_DIR, logFormat: 'csvlog' as const, tables: TABLES, stateDir, topic, service: 'db-audit-test', signingKey: privateKey, kafka: testKafkaConnection(), logger: testLogger }
    const first = await new DbAuditReader(options).runOnce()
    const saved = join(stateDir, 'saved-position.json')
    copyFileSync(positionPath(stateDir, 'pg-crash'), saved)

    const clients = await connectClients(2)
    const expectedB = await appTraffic(clients, 40)
    const second = await new DbAuditReader(options).runOnce()
    expect(second.published).toBe(expectedB.length)
    // The crash: the second run's commit never reached the disk.
    copyFileSync(saved, positionPath(stateDir, 'pg-crash'))

    const expectedC = await appTraffic(clients, 20)
    await closeClients(clients)
    const third = await new DbAuditReader(options).runOnce()
    expect(third.skippedAcked).toBe(expectedB.length)
    expect(third.published).toBe(expectedC.length)

    const events = await readPublishedEvents(kafka, side, 'pg-crash', publicKey)
    expect(seqProblems(events)).toEqual([])
    expect(events).toHaveLength(first.published + expectedB.length + expectedC.length)
    expect(new Set(events.map((e) => `${e.log_file}@${e.log_offset}`)).size).toBe(events.length)

    // A position file others can read is refused, with its own code.
    chmodSync(positionPath(stateDir, 'pg-crash'), 0o644)
    const refused = await new DbAuditReader(options).runOnce().catch((err: unknown) => err)
    expect(refused).toBeInstanceOf(DbAuditError)
    expect((refused as DbAuditError).code).toBe('DB_AUDIT_POSITION_INVALID')
  })
})
