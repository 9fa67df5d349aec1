import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALERT_TABLE } from '../../store/side-tables.js'
import { openStore } from '../../store/store.js'
import { runCli, spawnCli } from '../helpers/cli-process.js'
import { freshTopic, TEST_BROKERS, testKafka, testLogger } from '../helpers/kafka.js'
import { insertSideRows, makeAlertEvent } from '../helpers/side-rows.js'
import { testStoreConfig } from '../helpers/store.js'

/**
 * `readtrail alerts`: the saved query alerts over alert_log behind its own
 * flags, in every output format, with the provenance and exit codes of
 * `readtrail query`, directly and through the process that owns the store.
 */
const T0 = Date.UTC(2026, 10, 26, 9) * 1000
const MIN = 60_000_000
const CHAIN = 'guard.alerts/0'

const ALERTS = [
  makeAlertEvent({ occurred_at: T0, principal_id: 'clerk.marta', table_name: 'applicants', action: 'alert', observed: 320 }),
  makeAlertEvent({ occurred_at: T0 + MIN, principal_id: 'clerk.marta', table_name: 'applicants', action: 'throttle', observed: 650 }),
  makeAlertEvent({ occurred_at: T0 + 2 * MIN, principal_id: 'clerk.marta', table_name: 'applicants', action: 'refuse', observed: 1200, detail: '=HYPERLINK("http://x")' }),
  makeAlertEvent({ occurred_at: T0 + 3 * MIN, principal_id: 'vendor.support', db_name: 'practice', table_name: 'public.patients', action: 'unchecked', observed: 0 }),
  makeAlertEvent({ occurred_at: T0 + 24 * 60 * MIN, principal_id: "x' OR 1=1 --", table_name: 'applicants', action: 'alert' }),
]

describe('readtrail alerts', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'readtrail-alerts-'))
  const dir = ['--data-dir', dataDir]
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  beforeAll(async () => {
    const store = openStore(testStoreConfig('readtrail', dataDir), { command: 'alerts test', logger: testLogger })
    try {
      await store.ensureSchema()
      await insertSideRows(store, ALERT_TABLE, CHAIN, ALERTS)
      await store.withDatabase('no_side_streams').ensureSchema()
    } finally {
      await store.close()
    }
  })

  const json = async (...args: string[]) => {
    const r = await runCli(['alerts', ...args, '--format', 'json', ...dir])
    expect(r.code, r.stderr).toBe(5)
    return JSON.parse(r.stdout) as { query: string; rows: Record<string, unknown>[]; provenance: { status: string; chains: { chain_id: string }[] } }
  }
  const observed = (rows: Record<string, unknown>[]) => rows.map((r) => `${String(r['principal_id'])}:${String(r['action'])}`)

  it('lists every alert oldest first, standing on alert_log\'s chain (no signed checkpoint yet: exit 5)', async () => {
    const answer = await json()
    expect(answer.query).toBe('alerts')
    expect(observed(answer.rows)).toEqual(['clerk.marta:alert', 'clerk.marta:throttle', 'clerk.marta:refuse', 'vendor.support:unchecked', "x' OR 1=1 --:alert"])
    expect(answer.rows[1]).toMatchObject({ db_name: 'registry', table_name: 'applicants', budget: 'applicants-per-minute', window_seconds: 60, observed: 650, chain_id: CHAIN, seq: 2 })
    expect(answer.provenance.status).toBe('unsigned')
    expect(answer.provenance.chains.map((c) => c.chain_id)).toEqual([CHAIN])
  })

  it('filters on time, principal, table and action', async () => {
    expect(observed((await json('--from', '2026-11-26T09:01:00Z', '--to', '2026-11-26T09:03:00Z')).rows)).toEqual(['clerk.marta:throttle', 'clerk.marta:refuse'])
    expect(observed((await json('--principal', "x' OR 1=1 --")).rows)).toEqual(["x' OR 1=1 --:alert"])
    expect(observed((await json('--table', 'patients')).rows)).toEqual(['vendor.support:unchecked'])
    expect(observed((await json('--table', 'practice.public.patients')).rows)).toEqual(['vendor.support:unchecked'])
    expect(observed((await json('--table', 'registry.applicants', '--action', 'throttle,refuse')).rows)).toEqual(['clerk.marta:throttle', 'clerk.marta:refuse'])
    const none = await runCli(['alerts', '--principal', 'nobody', '--format', 'json', ...dir])
    expect(JSON.parse(none.stdout).rows).toEqual([])
  })

  it('prints a table and CSV with the provenance, a cell a spreadsheet would evaluate neutralised', async () => {
    const table = await runCli(['alerts', '--action', 'refuse', ...dir])
    expect(table.code).toBe(5)
    expect(table.stdout).toMatch(/^readtrail alerts: 1 rows$/m)
    expect(table.stdout).toMatch(/^provenance: UNSIGNED/m)
    const csv = await runCli(['alerts', '--action', 'refuse', '--format', 'csv', ...dir])
    const lines = csv.stdout.trim().split('\n').filter((l) => !l.startsWith('#'))
    expect(lines[0]).toBe('occurred_at,action,principal_id,principal_type,db_name,table_name,budget,window_seconds,budget_limit,observed,records_in_read,read_id,detail,service,environment,alert_id,chain_id,seq')
    expect(lines[1]).toContain(`,refuse,clerk.marta,user,registry,applicants,applicants-per-minute,60,300,1200,50,,"'=HYPERLINK(""http://x"")",test-service,test,`)
    expect(csv.stderr).toMatch(/^readtrail: UNSIGNED/)
    const limited = await runCli(['alerts', '--param', 'limit=2', '--format', 'ndjson', ...dir])
    expect(JSON.parse(limited.stdout.split('\n')[0]!)._readtrail).toMatchObject({ truncated: true, row_count: 2 })
  })

  it('refuses an unknown action and a filter given twice, before anything runs', async () => {
    const action = await runCli(['alerts', '--action', 'alert,ignore', ...dir])
    expect(action.code).toBe(2)
    expect(action.stderr).toContain('QUERY_PARAM_INVALID')
    expect(action.stderr).toContain('action')
    const twice = await runCli(['alerts', '--principal', 'a', '--param', 'principal=b', ...dir])
    expect(twice.code).toBe(2)
    expect(twice.stderr).toContain('--principal and --param principal= both given')
  })

  it('says plainly when the store has no alert_log yet', async () => {
    const r = await runCli(['alerts', '--database', 'no_side_streams', ...dir])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('readtrail query alerts: a table it reads is not in database no_side_streams; db_audit_log and alert_log exist once readtrail consume has taken up')
  })

  it('while `consume` owns the embedded store, answers through it', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const owner = spawnCli(['consume', ...dir], { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','), READTRAIL_TOPIC: topic, READTRAIL_GROUP_ID: `${topic}-g` })
    try {
      await owner.waitFor(/serving queries for other readtrail processes/)
      const r = await runCli(['alerts', '--principal', 'clerk.marta', '--format', 'json', ...dir])
      // Only the provenance warning: the answer came through the owner.
      expect(r.stderr).toMatch(/^readtrail: UNSIGNED: [^\n]*\n$/)
      expect(r.code).toBe(5)
      expect(observed(JSON.parse(r.stdout).rows)).toEqual(['clerk.marta:alert', 'clerk.marta:throttle', 'clerk.marta:refuse'])
    } finally {
      owner.child.kill('SIGTERM')
      expect((await owner.exited).code).toBe(0)
    }
  })
})
