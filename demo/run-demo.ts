import { randomBytes } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import type { AppConfig } from '../cli/config.js'
import { formatRows } from '../cli/format-rows.js'
import { generateProducerKey } from '../cli/producer-keys-command.js'
import { ReadtrailError } from '../common/errors.js'
import { createKafka } from '../common/kafka.js'
import type { Logger } from '../common/logger.js'
import { createIngest } from '../consumers/ingest.js'
import { waitForCatchUp } from '../consumers/lag.js'
import { deadLetterTopicOf, ensureTopics } from '../consumers/topics.js'
import { formatReport, type VerificationReport } from '../integrity/report.js'
import { verifyStore } from '../integrity/verify-store.js'
import { loadOrCreateVerifierKey, nextVerifyState, writeVerifyState, type VerifyState } from '../integrity/verify-state.js'
import { breachScope } from '../queries/breach-scope.js'
import { bulkExtraction } from '../queries/bulk-extraction.js'
import { loadCheckpoints } from '../integrity/checkpoint-sources.js'
import { checkpointTopicOf } from '../checkpoints/checkpoint-topic.js'
import { generateKeyFiles, loadSigningKey } from '../checkpoints/keys.js'
import { serializeEvidenceBundle } from '../evidence/bundle.js'
import { exportEvidence } from '../evidence/export-bundle.js'
import { verifyEvidence } from '../evidence/verify-bundle.js'
import { createAuditProducer } from '../producers/audit-producer.js'
import { recordsTouchedByPrincipal, type RecordTouchedRow } from '../queries/records-touched-by-principal.js'
import { runSavedQuery } from '../queries/saved-query.js'
import { whoTouchedRecord } from '../queries/who-touched-record.js'
import { claimDataDir } from '../store/owner-lock.js'
import { openStore, type Store } from '../store/store.js'
import { FIRST_APPLICANT_ID, generateApplicants } from './applicants.js'
import { createRegistryApp, type RequestContext } from './registry-app.js'
import { runDatabaseSide, type DatabaseSideResult } from './database-side.js'
import { alerts } from '../queries/alerts.js'
import { unauditedReads } from '../queries/unaudited-reads.js'
import { sideTopic } from '../schemas/side-batch.js'

export interface DemoResult {
  scraped: number
  touchedByCompromised: number
  verified: boolean
}

const HOUR_US = 3_600_000_000
const MINUTE_US = 60_000_000

/**
 * Scenario 1 of shared/SCENARIOS.md, end to end on real components: staff of
 * an admissions registry read a few applicants each; one compromised clerk
 * account scrapes thousands at night. Everything goes through the SDK, Kafka
 * and the chain writer into the embedded store; then the investigator's
 * questions are answered from the log and the chain is verified.
 */
const DEMO_MARKER = '.readtrail-demo'
const DEMO_DATABASE = 'readtrail_demo'

/**
 * The demo starts from an empty store every run, so it must never be pointed
 * at a real audit log: it wipes only a directory it made itself (or an empty
 * one), after checking no readtrail process owns it, and on a ClickHouse
 * server it writes to its own `readtrail_demo` database.
 */
async function openDemoStore(config: AppConfig, logger: Logger): Promise<Store> {
  if (config.store.url !== undefined) {
    const server = openStore({ ...config.store, database: DEMO_DATABASE }, { command: 'readtrail demo', logger })
    await server.client.command({ query: `DROP DATABASE IF EXISTS ${DEMO_DATABASE}` })
    await server.ensureSchema()
    return server
  }
  const dir = config.store.dataDir
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(join(dir, DEMO_MARKER))) {
    throw new ReadtrailError('USAGE', `refusing to wipe ${dir} for the demo: it is not a demo store (no ${DEMO_MARKER}); choose another --data-dir`)
  }
  claimDataDir(dir, 'readtrail demo')() // throws STORE_LOCKED while another process owns it
  rmSync(dir, { recursive: true, force: true })
  const store = openStore(config.store, { command: 'readtrail demo', logger })
  writeFileSync(join(dir, DEMO_MARKER), 'Created by `readtrail demo`; wiped at every demo run.\n')
  await store.ensureSchema()
  return store
}

export async function runDemo(config: AppConfig, logger: Logger, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<DemoResult> {
  const runId = Date.now().toString(36)
  const topic = `${config.topic}.demo-${runId}`
  const groupId = `readtrail-demo-${runId}`
  const store = await openDemoStore(config, logger)
  const kafka = createKafka(config.kafka, logger)
  await ensureTopics(kafka, { topic, partitions: config.partitions, sideStreams: true })
  // The demo signs with its own key, made fresh in its own directory.
  const keyPath = join(config.store.dataDir, 'keys', 'checkpoint.key')
  rmSync(join(config.store.dataDir, 'keys'), { recursive: true, force: true })
  generateKeyFiles(keyPath)
  const logPath = join(config.store.dataDir, 'checkpoints.jsonl')
  rmSync(logPath, { force: true })
  const checkpointTopic = checkpointTopicOf(topic)
  // The application's service signs its batches with its own key; the writer stores only what a key in the trusted file signed.
  const service = 'admissions-backoffice'
  const trustedPath = join(config.store.dataDir, 'trusted-producers.json')
  const producerKey = join(config.store.dataDir, 'keys', `${service}.pem`)
  rmSync(trustedPath, { force: true })
  generateProducerKey({ service, out: producerKey, trusted: trustedPath, home: config.store.dataDir }, new PassThrough())
  // The database's own audit log is read and signed by a reader with a key of its own.
  const readerService = 'admissions-db-audit'
  const readerKey = join(config.store.dataDir, 'keys', `${readerService}.pem`)
  generateProducerKey({ service: readerService, out: readerKey, trusted: trustedPath, home: config.store.dataDir }, new PassThrough())
  const ingest = createIngest({
    kafka,
    store,
    logger,
    writer: { kafka: config.kafka, topic, groupId, trustedProducers: trustedPath },
    checkpoints: { key: loadSigningKey(keyPath), logPath, topic: checkpointTopic },
    sideStreams: true,
  })
  const audit = await createAuditProducer(
    { kafka: config.kafka, topic, service, environment: 'demo', sessionHashKey: randomBytes(32), signingKey: producerKey },
    { logger, kafka },
  )
  /** The questions part two answers from the log: the unaudited read, the guard's work, and verify's completeness line. */
  async function showDatabaseSide(side: DatabaseSideResult): Promise<{ ok: boolean; report: VerificationReport }> {
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 120_000 })
    await waitForCatchUp(kafka, `${groupId}.db-audit`, sideTopic(topic, 'db-audit'), { timeoutMs: 120_000 })
    await waitForCatchUp(kafka, `${groupId}.alerts`, sideTopic(topic, 'alert'), { timeoutMs: 120_000 })
    await ingest.signer.signNow()
    const window = { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000) }
    const unaudited = await runSavedQuery(store, unauditedReads, window)
    out('')
    out('Q6  Which reads of applicants did no application make?  unaudited-reads (the last hour)')
    out(formatRows(unaudited.rows, ['db_name', 'db_user', 'client_addr', 'application_name', 'tables', 'statements', 'sample_statements'], 'table').replace(/^/gm, '    '))
    const alerted = await runSavedQuery(store, alerts, window)
    const [denied] = await store.queryRows<{ reads: string; records: string }>(
      `SELECT toString(count()) AS reads, toString(sum(length(record_ids))) AS records FROM ${store.table('access_log')} WHERE outcome = 'denied' AND principal_id = 'clerk.marta'`,
    )
    out('')
    out('Q7  What did the guard stop?  readtrail alerts')
    out(formatRows(alerted.rows, ['occurred_at', 'action', 'principal_id', 'table_name', 'budget', 'window_seconds', 'budget_limit', 'observed', 'records_in_read'], 'table').replace(/^/gm, '    '))
    out(`    and ${denied?.reads ?? 0} reads by clerk.marta recorded with outcome denied, naming the ${denied?.records ?? 0} records they would have returned.`)
    const checkpointsNow = await loadCheckpoints({ database: store.database, publicKeyPath: `${keyPath}.pub`, logPath, topic: { kafka, name: checkpointTopic } })
    const completeness = await verifyStore(store, { checkpoints: checkpointsNow })
    out('')
    for (const line of formatReport(completeness).split('\n')) {
      if (/^readtrail verify|^database |^UNAUDITED|^ {2}(db_audit_log|alert_log) /.test(line)) out(line)
    }
    return { ok: completeness.ok && side.pagesRefused > 0 && unaudited.rows.length === 1, report: completeness }
  }
  try {
    await ingest.start()
    const applicants = generateApplicants(20_000)
    const app = createRegistryApp(applicants, audit)
    out(`Admissions registry: ${applicants.length} fake applicants (ids ${FIRST_APPLICANT_ID}..${FIRST_APPLICANT_ID + applicants.length - 1}).`)

    const day = Date.UTC(2026, 10, 26) * 1000
    const staff = (id: string, hour: number, minute: number, ip: string): RequestContext => ({
      principal: { id },
      sessionId: `${id}-session`,
      clientIp: ip,
      at: day + hour * HOUR_US + minute * MINUTE_US,
    })
    const target = FIRST_APPLICANT_ID + 4_041
    // Ordinary work: a few records each, in office hours, from the office network.
    for (let i = 0; i < 12; i++) await app.getApplicant(staff('clerk.anna', 9, i * 7, '10.20.1.15'), target - 6 + i)
    for (let i = 0; i < 8; i++) await app.getApplicant(staff('clerk.bruno', 11, i * 5, '10.20.1.22'), FIRST_APPLICANT_ID + 900 + i * 13)
    await app.searchByName(staff('clerk.bruno', 14, 2, '10.20.1.22'), 'Greco')
    await app.exportForMailing({ ...staff('svc.mailer', 6, 0, '10.20.9.3'), principal: { id: 'svc.mailer', type: 'service' }, purpose: 'admission-letters' }, 2021)

    // The breach: clerk.marta's credentials, used at 02:10 from abroad, page
    // through the whole registry 100 rows at a time, one page every 2 s.
    const scrapeFrom = FIRST_APPLICANT_ID + 3_999
    const pages = 50
    const scrapes: Promise<unknown>[] = []
    for (let p = 0; p < pages; p++) {
      const ctx: RequestContext = { principal: { id: 'clerk.marta' }, sessionId: 'stolen-token-7f3a', clientIp: '203.0.113.66', at: day + 2 * HOUR_US + 10 * MINUTE_US + p * 2_000_000 }
      scrapes.push(app.listPage(ctx, scrapeFrom + p * 100, 100))
    }
    await Promise.all(scrapes)
    await audit.flush()
    out(`Application done: ${20 + 2 + pages} audited reads published to Kafka topic ${topic}.`)

    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 120_000 })
    const signed = await ingest.signer.signNow()
    out(`Chain writer caught up: ${ingest.stats().writer.stored} events chained into ClickHouse (${store.kind}, database ${store.database}).`)
    out(`Each chain head signed (Ed25519) into ${logPath} and topic ${checkpointTopic}: ${signed.map((c) => `${c.chain_id} seq ${c.seq}`).join(', ')}.`)

    const touched: RecordTouchedRow[] = (await runSavedQuery(store, recordsTouchedByPrincipal, { principal: 'clerk.marta' })).rows
    out('')
    out(`Q1  Which records did clerk.marta touch?  records-touched-by-principal principal=clerk.marta`)
    out(`    ${touched.length} applicant records, ids ${touched[0]?.record_id}..${touched[touched.length - 1]?.record_id}, columns ${touched[0]?.columns.join(', ')}`)
    out(formatRows(touched.slice(0, 5), recordsTouchedByPrincipal.columns, 'table').replace(/^/gm, '    '))
    const first = touched.reduce((m, r) => (r.first_access < m ? r.first_access : m), touched[0]?.first_access ?? '')
    const last = touched.reduce((m, r) => (r.last_access > m ? r.last_access : m), '')
    const seconds = Math.max(1, (Date.parse(last) - Date.parse(first)) / 1000)
    out(`    Pattern: ${touched.length} records between ${first} and ${last}: ${Math.round((touched.length / seconds) * 60)} records/minute, faster than any person reads.`)

    const { rows: who } = await runSavedQuery(store, whoTouchedRecord, { table: 'applicants', record: String(target) })
    const explore = exploreCommands(config, store.database, target)
    out('')
    out(`Q2  Who touched applicant ${target}?  who-touched-record table=applicants record=${target}`)
    out(formatRows(who, ['occurred_at', 'principal_id', 'columns', 'client_ip', 'service', 'chain_id', 'seq'], 'table').replace(/^/gm, '    '))

    const checkpoints = await loadCheckpoints({ database: store.database, publicKeyPath: `${keyPath}.pub`, logPath, topic: { kafka, name: checkpointTopic } })
    let verified = true
    let verifyState: VerifyState | null = null
    for (const mode of ['in-db', 'independent'] as const) {
      const report = await verifyStore(store, { mode, checkpoints, workers: 2, kafkaLog: { kafka, topic, groupId } })
      verified &&= report.ok
      verifyState = nextVerifyState(verifyState, report, {})
      out('')
      out(formatReport(report))
    }
    // Kept beside the demo's store, not in READTRAIL_HOME: it vouches for this store only.
    const statePath = join(config.store.dataDir, 'verify-state.json')
    // Signed with the demo's own verifier key, made fresh beside its checkpoint key.
    const verifierKey = join(config.store.dataDir, 'keys', 'verifier.key')
    generateKeyFiles(verifierKey)
    writeVerifyState(statePath, verifyState!, loadOrCreateVerifierKey({ keyPath: verifierKey, publicKeyPath: `${verifierKey}.pub` }, logger))

    // The incident team's questions, each answer stating what it stands on.
    const breach = { principals: 'clerk.marta', ips: '203.0.113.66', from: new Date(day / 1000), to: new Date(day / 1000 + 86_400_000) }
    const context = { subjectKeys: new Map([['admissions.applicants', 0]]) }
    const scope = await runSavedQuery(store, breachScope, breach, { context, verifyState })
    out('')
    out(`Q3  Breach scope for the notification:  breach-scope principals=clerk.marta ips=203.0.113.66 (one day)`)
    out(formatRows(scope.rows, ['database', 'table', 'distinct_records', 'distinct_subjects', 'columns', 'reads', 'first_access', 'last_access'], 'table').replace(/^/gm, '    '))
    out(`    provenance: ${scope.provenance.summary}`)
    const bulk = await runSavedQuery(store, bulkExtraction, { from: breach.from, to: breach.to, threshold: 300 }, { context, verifyState })
    out('')
    out(`Q4  Who read faster than a person can?  bulk-extraction threshold=300 rows/minute`)
    out(formatRows(bulk.rows, ['principal_id', 'reason', 'peak_minute', 'peak_rows_per_minute', 'reads', 'rows_read'], 'table').replace(/^/gm, '    '))
    out(`    provenance: ${bulk.provenance.summary}`)
    verified &&= scope.provenance.status === 'verified' && bulk.provenance.status === 'verified'

    // The regulator's copy: one read of the target by the stolen account,
    // with the chain segment to its signed checkpoint, checked with no database.
    const marta = who.find((w) => w.principal_id === 'clerk.marta')
    const [row] = marta
      ? await store.queryRows<{ event_id: string }>(`SELECT toString(event_id) AS event_id FROM ${store.table('access_log')} WHERE chain_id = {chain_id:String} AND seq = {seq:UInt64}`, {
          chain_id: marta.chain_id,
          seq: marta.seq,
        })
      : []
    if (row) {
      const publicKeyPem = readFileSync(`${keyPath}.pub`, 'utf8')
      const bundle = await exportEvidence(store, { eventId: row.event_id, checkpoints: [...checkpoints.analysis.trusted.values()].flat(), publicKeyPem })
      const bundlePath = join(config.store.dataDir, `evidence-${row.event_id}.json`)
      writeFileSync(bundlePath, serializeEvidenceBundle(bundle))
      const verdict = verifyEvidence(JSON.parse(readFileSync(bundlePath, 'utf8')), { trustedKeyPem: publicKeyPem })
      verified &&= verdict.ok
      out('')
      out(`Q5  Evidence for the regulator: readtrail evidence export --event ${row.event_id}`)
      out(`    ${bundlePath}: ${verdict.ok ? 'PROVED offline' : `NOT PROVED (${verdict.problem})`} — ${bundle.segment.length} later rows link it to checkpoint #${bundle.checkpoint.index}`)
      for (const line of verdict.proved) out(`    - ${line}`)
      explore.push(`${cliInvocation()} evidence verify ${shellQuote(resolve(bundlePath))} --public-key ${shellQuote(resolve(`${keyPath}.pub`))}`)
    }
    // Part two: what the hooks cannot see, and stopping the next scraper while it runs.
    out('')
    out('Part 2, the next night: the back office now reads a real PostgreSQL through the pg hook, with an extraction guard; the server audits itself with pgAudit.')
    const side = await runDatabaseSide({ kafka: config.kafka, topic, audit, readerKey, readerService, stateDir: join(config.store.dataDir, 'db-audit-state'), logger, out })
    if (!side.ran) out(`    skipped: ${side.why}`)
    else {
      const shown = await showDatabaseSide(side)
      verified &&= shown.ok
      // Part two's reads are verified too: the state the explore commands' answers stand on covers them.
      verifyState = nextVerifyState(verifyState, shown.report, {})
      writeVerifyState(statePath, verifyState, loadOrCreateVerifierKey({ keyPath: verifierKey, publicKeyPath: `${verifierKey}.pub` }, logger))
    }
    out('')
    out('Explore this store yourself: its signing key, checkpoint log, verify state and verifier key are in the same directory.')
    for (const line of explore) out(`  ${line}`)
    return { scraped: pages * 100, touchedByCompromised: touched.length, verified }
  } finally {
    await audit.close()
    await ingest.stop()
    await store.close()
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [topic, deadLetterTopicOf({ topic }), checkpointTopic, sideTopic(topic, 'db-audit'), sideTopic(topic, 'alert')] }).catch(() => {})
    await admin.disconnect()
  }
}

/**
 * The demo's last words: the commands that explore its store afterwards,
 * with the environment they need. The demo keeps its keys, checkpoint log,
 * verify state and verifier key inside its data directory, so
 * READTRAIL_HOME and READTRAIL_DATA_DIR both point there; its subject key
 * lets subject and breach queries name applicants. Verification reads the
 * checkpoint file only: the demo deletes its topics when it ends.
 */
export function exploreCommands(config: AppConfig, database: string, record: number, cli = cliInvocation()): string[] {
  const dir = shellQuote(resolve(config.store.dataDir))
  const env = [
    ...(config.store.url === undefined ? [`READTRAIL_HOME=${dir}`, `READTRAIL_DATA_DIR=${dir}`] : [`READTRAIL_HOME=${dir}`, `READTRAIL_CLICKHOUSE_URL=${shellQuote(withoutCredentials(config.store.url))}`]),
    `READTRAIL_CLICKHOUSE_DATABASE=${shellQuote(database)}`,
    'READTRAIL_SUBJECT_KEYS=admissions.applicants=id',
  ]
  return [
    `export ${env.join(' ')}`,
    `${cli} query records-touched-by-principal --param principal=clerk.marta --param limit=10`,
    `${cli} query who-touched-record --param table=applicants --param record=${record}`,
    `${cli} query breach-scope --param principals=clerk.marta --param ips=203.0.113.66 --param from=2026-11-26 --param to=2026-11-27`,
    `${cli} report breach-scope --param principals=clerk.marta --param from=2026-11-26 --param to=2026-11-27 --out ${shellQuote(join(resolve(config.store.dataDir), 'breach-report.html'))} --force`,
    `${cli} verify --no-kafka-checkpoints`,
  ]
}

/** How this process was started, so the printed commands run as they are: `readtrail` on PATH, or `node <path>` of this checkout. */
function cliInvocation(): string {
  const script = process.argv[1] ?? ''
  if (!/[\\/]cli[\\/]main\.js$/.test(script)) return 'readtrail'
  const path = relative(process.cwd(), script)
  return `node ${shellQuote(path.startsWith('..') ? script : path)}`
}

/** A server URL without user or password: the printed line may be pasted anywhere. */
function withoutCredentials(url: string): string {
  try {
    const u = new URL(url)
    u.username = ''
    u.password = ''
    return u.toString()
  } catch {
    return url
  }
}

/** A word the shell passes through unchanged. */
function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}
