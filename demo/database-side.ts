import { execFileSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { isReadtrailError } from '../common/errors.js'
import type { KafkaConnection } from '../common/kafka.js'
import type { Logger } from '../common/logger.js'
import type { AuditProducer } from '../producers/audit-producer.js'
import { runWithAuditContext } from '../producers/context/audit-context.js'
import { runDbAuditReader } from '../producers/db-audit/index.js'
import { instrumentPg } from '../producers/hooks/pg.js'
import { createReadRecorder } from '../producers/hooks/read-recorder.js'
import { repoRoot } from './local-kafka.js'

/** The private PostgreSQL 15 with pgAudit the demo reads from (scripts/pg-audit-cluster.sh). */
const PG_AUDIT_PORT = 55437
const DATABASE = 'admissions'
/** Records of applicants one clerk may read per minute before the guard refuses (scenario 1's clerks read a few dozen a day). */
export const DEMO_BUDGET_PER_MINUTE = 250
const PAGE = 100
const PAGES = 8

export interface DatabaseSideOptions {
  kafka: KafkaConnection
  topic: string
  audit: AuditProducer
  /** The database-audit reader's signing key (in the trusted-producers file) and the name it is trusted for. */
  readerKey: string
  readerService: string
  stateDir: string
  logger: Logger
  out: (line: string) => void
}

export type DatabaseSideOutcome = ({ ran: true } & DatabaseSideResult) | { ran: false; why: string }

export interface DatabaseSideResult {
  /** Pages the scraper got before the guard refused it. */
  pagesServed: number
  pagesRefused: number
  /** Statements on the sensitive table the server ran: the database-side reads the log must account for. */
  statements: number
  /** Entries the reader published (one per statement). */
  published: number
}

/**
 * Part two of the demo, on a real PostgreSQL with pgAudit: the registry's
 * back office reads through the pg hook with an extraction guard; the
 * stolen clerk account tries to page through the table again and is refused
 * once it passes its budget; a DBA session reads the same table with psql,
 * as the application's role, which no hook sees. The database's own audit
 * log goes through the reader to Kafka, where ingest chains it beside the
 * reads: the unaudited read and the refused scraper are then in the log.
 */
export async function runDatabaseSide(options: DatabaseSideOptions): Promise<DatabaseSideOutcome> {
  const { out } = options
  const script = join(repoRoot(), 'scripts', 'pg-audit-cluster.sh')
  // Its own cluster directory and port: a cluster another tool started stays as it is.
  const home = join(repoRoot(), '.cache', 'pg-audit-demo')
  const env = { ...process.env, READTRAIL_PG_AUDIT_HOME: home, READTRAIL_PG_AUDIT_PORT: String(PG_AUDIT_PORT), READTRAIL_PG_AUDIT_DATABASE: DATABASE, READTRAIL_PG_AUDIT_FORMAT: 'csvlog' }
  // Only a machine without PostgreSQL 15 skips this part, saying why; any other failure fails the demo.
  if (!existsSync('/usr/lib/postgresql/15/bin/pg_ctl')) return { ran: false, why: 'PostgreSQL 15 is not installed here (/usr/lib/postgresql/15/bin); on Debian: apt-get install postgresql-15' }
  // A fresh reader position every run: the demo's topic is new, and so is what it must hold.
  rmSync(options.stateDir, { recursive: true, force: true })
  // Progress goes to stderr, which the demo keeps for errors: captured, not shown.
  const started = execFileSync('bash', [script, 'start'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const logDir = /log dir (\S+)\)/.exec(started)?.[1]
  if (!logDir) throw new Error(`unexpected output from scripts/pg-audit-cluster.sh start: ${started}`)
  const connection = { host: '127.0.0.1', port: PG_AUDIT_PORT, user: 'postgres', database: DATABASE }
  const admin = new pg.Client(connection)
  await admin.connect()
  try {
    await admin.query(`
      DROP TABLE IF EXISTS applicants;
      CREATE TABLE applicants (id int PRIMARY KEY, full_name text NOT NULL, phone text NOT NULL, address text NOT NULL);
      INSERT INTO applicants SELECT g, 'Applicant ' || g, '+39 0' || (3000000 + g), 'Via Roma ' || g FROM generate_series(1, 5000) g;
    `)
  } finally {
    await admin.end()
  }
  execFileSync('bash', [script, 'audit', DATABASE, 'public.applicants'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  out(`PostgreSQL 15 with pgAudit on 127.0.0.1:${PG_AUDIT_PORT}: ${DATABASE}.applicants (5000 rows), reads of it logged by the server itself to ${logDir}.`)

  // From the end of the log: this run's statements only, whatever earlier runs left there.
  const reader = await runDbAuditReader({
    source: 'admissions-pg', kind: 'pgaudit', log: logDir, logFormat: 'csvlog', tables: ['public.applicants'], stateDir: options.stateDir, startAt: 'end',
    topic: options.topic, service: options.readerService, signingKey: options.readerKey, kafka: options.kafka, pollIntervalMs: 100, logger: options.logger,
  })
  const recorder = createReadRecorder(options.audit, {
    tables: { applicants: { policy: 'fail-closed' } },
    guard: { budgets: { 'applicant-records': { tables: ['applicants'], limits: { user: { perMinute: DEMO_BUDGET_PER_MINUTE, perHour: 1000 } }, action: 'refuse' } } },
  })
  const pool = await instrumentPg(new pg.Pool({ ...connection, max: 2, application_name: 'admissions-backoffice' }), recorder)
  let statements = 0
  let pagesServed = 0
  let pagesRefused = 0
  try {
    // A clerk's ordinary morning.
    await runWithAuditContext({ principal: { id: 'clerk.anna' }, clientIp: '10.20.1.15' }, async () => {
      for (const id of [4035, 4036, 4041, 4041, 4050]) {
        await pool.query('SELECT id, full_name, phone FROM applicants WHERE id = $1', [id])
        statements += 1
      }
    })
    // The stolen account again, paging through the table.
    const refusals: string[] = []
    await runWithAuditContext({ principal: { id: 'clerk.marta' }, sessionId: 'stolen-token-7f3a', clientIp: '203.0.113.66' }, async () => {
      for (let p = 0; p < PAGES; p++) {
        statements += 1
        try {
          await pool.query('SELECT id, full_name, phone, address FROM applicants WHERE id > $1 ORDER BY id LIMIT $2', [p * PAGE, PAGE])
          pagesServed += 1
        } catch (err) {
          if (!isReadtrailError(err) || err.code !== 'EXTRACTION_LIMIT') throw err
          pagesRefused += 1
          if (refusals.length === 0) refusals.push(err.message)
        }
      }
    })
    out(`Guard: clerk.marta may read ${DEMO_BUDGET_PER_MINUTE} applicant records a minute. Scraper pages of ${PAGE}: ${pagesServed} served, ${pagesRefused} refused with EXTRACTION_LIMIT (no rows returned):`)
    out(`    ${refusals[0] ?? '(none refused)'}`)
    // A DBA session with the application's role: no hook sees it, pgAudit does.
    execFileSync('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(PG_AUDIT_PORT), '-U', 'postgres', '-d', DATABASE, '-c', 'SELECT id, full_name, phone, address FROM applicants WHERE id BETWEEN 4000 AND 4099'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    statements += 1
    out('psql as the application role: SELECT id, full_name, phone, address FROM applicants WHERE id BETWEEN 4000 AND 4099 (no hook in that session).')
    await options.audit.flush()
    const deadline = Date.now() + 60_000
    while (reader.stats().published < statements && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    const published = reader.stats().published
    out(`Database-audit reader: ${published} pgAudit entries for public.applicants published, signed, to ${options.topic}.db-audit.`)
    out(`(The cluster keeps running for you to explore; stop it with: READTRAIL_PG_AUDIT_HOME=${home} READTRAIL_PG_AUDIT_PORT=${PG_AUDIT_PORT} bash scripts/pg-audit-cluster.sh stop)`)
    return { ran: true, pagesServed, pagesRefused, statements, published }
  } finally {
    await pool.end().catch(() => {})
    await recorder.close()
    await reader.stop()
  }
}
