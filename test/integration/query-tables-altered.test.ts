import { describe, expect, it } from 'vitest'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import type { Finding, VerificationReport } from '../../integrity/report.js'
import { nextVerifyState, type VerifyState } from '../../integrity/verify-state.js'
import { collectFacts } from '../../integrity/verify-store.js'
import { verifyLog } from '../../integrity/verify.js'
import { PRINCIPAL_VIEW_COLUMNS, RECORD_PARTS_SQL } from '../../store/ddl.js'
import type { Store } from '../../store/store.js'
import { buildSignedLog, type SignedLog } from '../helpers/signed-log.js'

/**
 * Verify checks the engine and definition of every table the saved queries
 * answer from and of the materialised views that feed them, in every run:
 * in-db and independent, with or without the view checks, full or
 * incremental. The attacks are an insider's DDL on the store: access_log,
 * its chain and its checkpoints stay untouched.
 */
const A = 'orders/0'
const B = 'orders/1'

const ddl = (store: Store, sql: string) => store.client.command({ query: sql })

async function signedLog(): Promise<{ log: SignedLog; state: VerifyState }> {
  const log = await buildSignedLog({ chains: [A, B], rowsPerChain: 30, checkpointEvery: 10 })
  const full = await runVerify(log, 'in-db', null)
  expect(full.report.findings).toEqual([])
  return { log, state: full.state }
}

/** One run the way `readtrail verify [--since-checkpoint] [--skip-views]` does it. */
async function runVerify(log: SignedLog, mode: 'in-db' | 'independent', since: VerifyState | null, views = true): Promise<{ report: VerificationReport; state: VerifyState }> {
  const checkpoints = await loadCheckpoints({ database: log.store.database, publicKeyPath: log.publicKeyPath, logPath: log.logPath, topic: { kafka: log.kafka, name: log.topic } })
  const outcome = await verifyLog((request) => collectFacts(log.store, request), log.store.database, { mode, checkpoints, since, views, workers: 2, producerGraceMs: 60_000 })
  return { report: outcome.report, state: nextVerifyState(since, outcome.report, outcome.producerThrough) }
}

const RUNS = [
  ['in-db', false, true],
  ['independent', false, true],
  ['in-db --skip-views', false, false],
  ['in-db --since-checkpoint', true, true],
  ['independent --since-checkpoint', true, true],
] as const

/** Every kind of run reports exactly these query_table_altered findings (chain, seq 0, detail pattern), and fails. */
async function expectAltered(log: SignedLog, state: VerifyState, expected: [string, RegExp][]): Promise<void> {
  for (const [name, incremental, views] of RUNS) {
    const { report } = await runVerify(log, name.startsWith('in-db') ? 'in-db' : 'independent', incremental ? state : null, views)
    const altered = report.findings.filter((f) => f.kind === 'query_table_altered')
    expect(report.ok, name).toBe(false)
    expect(altered.map((f) => [f.chain_id, f.seq]), `${name}: ${JSON.stringify(altered)}`).toEqual(expected.map(([chain]) => [chain, 0]))
    altered.forEach((f: Finding, i) => expect(f.detail, name).toMatch(expected[i]![1]))
  }
}

describe('verify checks the query-serving tables\' definitions in every run', () => {
  it('an untouched store reports nothing in any kind of run', async () => {
    const { log, state } = await signedLog()
    for (const [name, incremental, views] of RUNS) {
      const { report } = await runVerify(log, name.startsWith('in-db') ? 'in-db' : 'independent', incremental ? state : null, views)
      expect(report.findings, name).toEqual([])
    }
  })

  it('access_by_principal replaced by a table of another engine holding all but one reader', async () => {
    const { log, state } = await signedLog()
    const t = (name: string) => log.store.table(name)
    await ddl(log.store, `RENAME TABLE ${t('access_by_principal')} TO ${t('access_by_principal_was')}`)
    await ddl(log.store, `CREATE TABLE ${t('access_by_principal')} AS ${t('access_by_principal_was')} ENGINE = Memory`)
    await ddl(log.store, `INSERT INTO ${t('access_by_principal')} SELECT * FROM ${t('access_by_principal_was')} WHERE principal_id != 'clerk-1'`)
    await expectAltered(log, state, [['(access_by_principal)', /^access_by_principal: has engine Memory, readtrail creates MergeTree; its definition differs: .*INDEX client_ip_bf.*ENGINE = Memory/]])
  })

  it('a materialized view re-created with a SELECT that leaves one reader out', async () => {
    const { log, state } = await signedLog()
    const t = (name: string) => log.store.table(name)
    await ddl(log.store, `DROP TABLE ${t('access_by_principal_mv')}`)
    await ddl(log.store, `CREATE MATERIALIZED VIEW ${t('access_by_principal_mv')} TO ${t('access_by_principal')} AS SELECT ${PRINCIPAL_VIEW_COLUMNS.join(', ')} FROM ${t('access_log')} WHERE principal_id != 'clerk-1'`)
    await expectAltered(log, state, [['(access_by_principal_mv)', /^access_by_principal_mv: its SELECT differs: readtrail creates .*, found .*clerk-1/]])
  })

  it('an extra materialized view that feeds forged rows into access_by_principal', async () => {
    const { log, state } = await signedLog()
    const t = (name: string) => log.store.table(name)
    const forged = PRINCIPAL_VIEW_COLUMNS.join(', ').replace('principal_id', "'clerk.framed' AS principal_id")
    await ddl(log.store, `CREATE MATERIALIZED VIEW ${t('access_by_principal_extra')} TO ${t('access_by_principal')} AS SELECT ${forged} FROM ${t('access_log')}`)
    await expectAltered(log, state, [['(access_by_principal)', /^access_by_principal: fed by ".*\.access_by_principal_extra", a materialized view readtrail did not create/]])
  })

  it('a view table whose sort key was changed (same engine, same columns)', async () => {
    const { log, state } = await signedLog()
    const t = (name: string) => log.store.table(name)
    await ddl(log.store, `RENAME TABLE ${t('access_by_principal')} TO ${t('access_by_principal_was')}`)
    await ddl(log.store, `CREATE TABLE ${t('access_by_principal')} AS ${t('access_by_principal_was')} ENGINE = MergeTree ORDER BY (occurred_at, principal_id)`)
    await expectAltered(log, state, [['(access_by_principal)', /^access_by_principal: its definition differs: readtrail creates .*ORDER BY \(principal_id, occurred_at\).*, found .*ORDER BY \(occurred_at, principal_id\)/]])
  })

  it('a projection of access_log dropped, or redefined under its name', async () => {
    const { log, state } = await signedLog()
    await ddl(log.store, `ALTER TABLE ${log.store.table('access_log')} DROP PROJECTION p_hours`)
    await expectAltered(log, state, [['(access_log)', /^access_log: its definition differs: readtrail creates .*PROJECTION p_hours/]])
    await ddl(log.store, `ALTER TABLE ${log.store.table('access_log')} ADD PROJECTION p_hours (SELECT principal_id, count() GROUP BY principal_id)`)
    await expectAltered(log, state, [['(access_log)', /^access_log: its definition differs: .*PROJECTION p_hours \(SELECT principal_id, count\(\) GROUP BY principal_id\)/]])
  })

  it('a record key index redefined under its name, same expression, a filter that skips nothing', async () => {
    const { log, state } = await signedLog()
    const table = log.store.table('access_log')
    await ddl(log.store, `ALTER TABLE ${table} DROP INDEX record_parts_bf`)
    await ddl(log.store, `ALTER TABLE ${table} ADD INDEX record_parts_bf ${RECORD_PARTS_SQL} TYPE bloom_filter(0.99) GRANULARITY 1`)
    await expectAltered(log, state, [['(access_log)', /^access_log: its definition differs: readtrail creates .*bloom_filter\(0\.01\).*, found .*bloom_filter\(0\.99\)/]])
  })
})
