import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mysql, { type Connection } from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runDbAuditReader } from '../../producers/db-audit/index.js'
import type { DbAuditEvent } from '../../schemas/db-audit-event.js'
import { sideTopic } from '../../schemas/side-batch.js'
import { seqProblems, waitForPublishedEvents } from '../fixtures/db-audit/published-events.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { freshTopic, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { freshTempDir } from '../helpers/temp-dir.js'

// A private MariaDB with server_audit (scripts/mariadb-audit.sh) whose log
// rotates on size every 64 KiB, so a few thousand reads cross many files.
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PORT = 53307
const HOME = join(ROOT, '.cache', `mariadb-audit-test-${randomBytes(4).toString('hex')}`)
const SERVER_ENV = { ...process.env, READTRAIL_MARIADB_AUDIT_HOME: HOME, READTRAIL_MARIADB_AUDIT_PORT: String(PORT), READTRAIL_MARIADB_AUDIT_ROTATE_SIZE: '65536', READTRAIL_MARIADB_AUDIT_ROTATIONS: '50' }
const AUDIT_LOG = join(HOME, 'log', 'server_audit.log')
const CONNECTION = { host: '127.0.0.1', port: PORT, user: 'readtrail', password: 'readtrail', database: 'shop' }
const TABLES = ['shop.people']

const server = (...args: string[]) => execFileSync(join(ROOT, 'scripts/mariadb-audit.sh'), args, { env: SERVER_ENV, stdio: ['ignore', 'pipe', 'pipe'] }).toString()
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

type Expected = string
const key = (session: string | number, statement: string): Expected => `${session}|${sha256(statement)}|shop.people`
const keyOf = (e: DbAuditEvent): Expected => `${e.db_session}|${e.statement_digest}|${e.object_name}`

const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const kafka = testKafka()

/** Application traffic through mysql2: prepared reads, client-side escaped values, literal games, other tables. */
async function appTraffic(connections: readonly Connection[], rounds: number): Promise<Expected[]> {
  const expected: Expected[] = []
  await Promise.all(
    connections.map(async (c) => {
      for (let i = 0; i < rounds; i++) {
        const byId = 'SELECT id, full_name FROM people WHERE id = ?'
        await c.execute(byId, [i % 50])
        expected.push(key(c.threadId, byId))
        if (i % 10 === 0) {
          // mysql2 escapes the value into the text it sends; server_audit escapes it again in the log.
          const sql = 'SELECT full_name FROM people WHERE full_name = ?'
          const values = [`o'brien\\ 7,12,QUERY,shop,'x',0\n\t${i}`]
          await c.query(sql, values)
          expected.push(key(c.threadId, mysql.format(sql, values)))
          await c.query(`SELECT 'shop.people' AS t FROM other LIMIT 1`)
          const join = 'SELECT p.id, o.id FROM people p JOIN other o ON o.id = p.id WHERE p.id < 3'
          await c.query(join)
          expected.push(key(c.threadId, join))
        }
      }
    }),
  )
  return expected
}

/** A direct read with the mariadb client under the application's account. */
function clientRead(): Expected {
  const sql = 'SELECT CONNECTION_ID(), count(*) FROM people'
  const out = execFileSync('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(PORT), '-u', 'readtrail', '-preadtrail', 'shop', '-N', '-B', '-e', sql]).toString().trim()
  return key(out.split('\t')[0]!, sql)
}

async function connect(n: number): Promise<Connection[]> {
  return Promise.all(Array.from({ length: n }, () => mysql.createConnection(CONNECTION)))
}

async function close(connections: readonly Connection[]): Promise<void> {
  await Promise.all(connections.map((c) => c.end().catch(() => {})))
}

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
  server('start')
  const admin = await mysql.createConnection({ ...CONNECTION, database: undefined, multipleStatements: true })
  await admin.query(`
    DROP DATABASE IF EXISTS shop; CREATE DATABASE shop; USE shop;
    CREATE TABLE people (id INT PRIMARY KEY, full_name VARCHAR(200) NOT NULL);
    CREATE TABLE other (id INT PRIMARY KEY);
    INSERT INTO people SELECT seq, CONCAT('Person ', seq) FROM seq_0_to_99;
    INSERT INTO other SELECT seq FROM seq_0_to_9;
  `)
  await admin.end()
}, 180_000)

afterAll(() => {
  server('reset')
})

describe('server_audit reader on a real MariaDB', () => {
  it('publishes every read of the sensitive table exactly once through size and manual rotation, a killed reader and a server restart', async () => {
    const topic = await freshTopic(kafka, 1)
    const side = sideTopic(topic, 'db-audit')
    const keyPath = join(freshTempDir('rt-db-audit-key-'), 'db-audit.pem')
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
    const childOptions = { source: 'maria-a', kind: 'server_audit', log: AUDIT_LOG, tables: TABLES, stateDir: freshTempDir('rt-db-audit-a-'), topic, service: 'db-audit-test', signingKey: keyPath, pollIntervalMs: 100, kafka: testKafkaConnection() }
    const inProcess = await runDbAuditReader({ source: 'maria-b', kind: 'server_audit', log: AUDIT_LOG, tables: TABLES, stateDir: freshTempDir('rt-db-audit-b-'), topic, service: 'db-audit-test', signingKey: privateKey, pollIntervalMs: 100, kafka: testKafkaConnection(), logger: testLogger })
    deferCleanup(() => inProcess.stop())
    let reader = spawnReader(childOptions)
    await reader.started

    const expected: Expected[] = []
    let connections = await connect(4)
    expected.push(...(await appTraffic(connections, 150)), clientRead())
    server('rotate')
    expected.push(...(await appTraffic(connections, 100)), clientRead())

    // The child reader is killed mid-stream and started again.
    const traffic = appTraffic(connections, 150)
    await sleep(300)
    reader.child.kill('SIGKILL')
    await reader.exited
    expected.push(...(await traffic))
    reader = spawnReader(childOptions)
    await reader.started

    // The server restarts: connection ids start again from the bottom.
    await close(connections)
    server('restart')
    connections = await connect(4)
    expected.push(...(await appTraffic(connections, 100)), clientRead())
    await close(connections)

    for (const producer of ['maria-b', 'maria-a']) {
      const events = await waitForPublishedEvents(kafka, side, producer, publicKey, expected.length)
      expect(seqProblems(events), producer).toEqual([])
      expect(events.map(keyOf).sort(), producer).toEqual([...expected].sort())
      expect(events[0]).toMatchObject({ source_kind: 'server_audit', db_name: 'shop', db_user: 'readtrail', client_addr: '127.0.0.1', command: 'SELECT', object_name: 'shop.people', statement_truncated: false })
      // Size rotation at 64 KiB: the entries came from many files (each file's offsets start again; the
      // name is the one the file had when read, which is the live path when the reader keeps up).
      expect(events.filter((e, i) => i > 0 && e.log_offset < events[i - 1]!.log_offset).length).toBeGreaterThanOrEqual(3)
    }
    reader.child.kill('SIGTERM')
    expect(await reader.exited).toBe(0)
    expect(inProcess.stats()).toMatchObject({ rejected: 0, oversize: 0, lostFiles: 0, truncated: 0 })
  })
})
