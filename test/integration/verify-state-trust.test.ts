import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { linkEntries } from '../../consumers/chain.js'
import { makeEvent } from '../helpers/events.js'
import { runCli, spawnCli, type CliResult } from '../helpers/cli-process.js'
import { TEST_BROKERS } from '../helpers/kafka.js'
import { buildSignedLog, type SignedLog } from '../helpers/signed-log.js'
import { openTestStore, releaseTestStore, testDataDir } from '../helpers/store.js'
import type { Store } from '../../store/store.js'

/**
 * The verify state is a file under READTRAIL_HOME: an insider can edit it,
 * roll it back or replace it. These tests attack it as such an insider
 * would (editing the JSON, SQL on the store) and run the real CLI: the state
 * is believed only under the verifier's signature, a failure is cleared only
 * by a run that covered it, and rows no checkpoint signs are never verified.
 *
 * Layout: chain A, 30 rows, a signed checkpoint every 10 rows; principals
 * clerk-0, clerk-1, clerk-2 in turn. The checkpoints are read from the file
 * only (--no-kafka-checkpoints): the chain ids of this fixture are not a real
 * topic's partitions, which the Kafka-log check would rightly report.
 */
const A = 'orders/0'

interface Setup {
  log: SignedLog
  home: string
  statePath: string
  /** readtrail <args> against this log, with its own READTRAIL_HOME. */
  cli(args: string[]): Promise<CliResult>
  /** Runs SQL on the store between CLI runs (the test process releases it after). */
  sql(statement: string): Promise<void>
}

async function setUp(rows = 30): Promise<Setup> {
  const log = await buildSignedLog({ chains: [A], rowsPerChain: rows, checkpointEvery: 10 })
  const { database } = log.store
  await releaseTestStore()
  const home = mkdtempSync(join(tmpdir(), 'readtrail-trust-'))
  afterAll(() => rmSync(home, { recursive: true, force: true }))
  const env = {
    READTRAIL_HOME: home,
    READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','),
    READTRAIL_TOPIC: log.topic.replace(/\.checkpoints$/, ''),
    READTRAIL_CHECKPOINT_PUBLIC_KEY: log.publicKeyPath,
    READTRAIL_CHECKPOINT_LOG: log.logPath,
  }
  const where = ['--data-dir', testDataDir(), '--database', database]
  return {
    log,
    home,
    statePath: join(home, 'verify-state.json'),
    cli: (args) => runCli([...args, ...where], env),
    async sql(statement) {
      const store = await openTestStore(database)
      try {
        await store.client.command({ query: statement, clickhouse_settings: { mutations_sync: '2' } })
      } finally {
        await releaseTestStore()
      }
    },
  }
}

const verify = (s: Setup, ...flags: string[]) => s.cli(['verify', '--json', '--no-kafka-checkpoints', ...flags])
const touched = (s: Setup, principal: string) => s.cli(['query', 'records-touched-by-principal', '--param', `principal=${principal}`, '--param', 'limit=0', '--format', 'json'])
const provenanceOf = (r: CliResult) => (JSON.parse(r.stdout) as { provenance: { status: string; summary: string; chains: { chain_id: string; status: string }[] } }).provenance
const explain = (r: CliResult) => `exit ${r.code}\nstdout: ${r.stdout.slice(0, 3000)}\nstderr: ${r.stderr.slice(0, 3000)}`

describe('the verify state is trusted only under the verifier signature', () => {
  it('editing verify-state.json (a failed run flipped to ok) makes queries and incremental verify refuse; a full verify re-signs it', async () => {
    const s = await setUp()
    const clean = await verify(s)
    expect(clean.code, explain(clean)).toBe(0)
    // The first verify made the verifier key, like an SSH host key.
    expect(statSync(join(s.home, 'keys', 'verifier.key')).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(s.statePath, 'utf8'))).toMatchObject({ format: 'readtrail-verify-state-v2', sig: expect.any(String) })
    const verified = await touched(s, 'clerk-0')
    expect(verified.code, explain(verified)).toBe(0)
    expect(provenanceOf(verified).status).toBe('verified')

    await s.sql(`ALTER TABLE ${s.log.store.table('access_log')} UPDATE principal_id = 'mallory' WHERE chain_id = '${A}' AND seq = 4`)
    expect((await verify(s)).code).toBe(1)
    const failed = await touched(s, 'clerk-0')
    expect(failed.code, explain(failed)).toBe(4)

    // The insider turns FAILED back into VERIFIED by editing the file.
    const state = JSON.parse(readFileSync(s.statePath, 'utf8')) as { chains: Record<string, { failures: unknown[]; verified_through: number; last_run: { ok: boolean } }> }
    state.chains[A]!.failures = []
    state.chains[A]!.last_run.ok = true
    state.chains[A]!.verified_through = 30
    writeFileSync(s.statePath, JSON.stringify(state, null, 2))
    const refused = await touched(s, 'clerk-0')
    expect(refused.code, explain(refused)).toBe(2)
    expect(refused.stderr).toContain('VERIFY_STATE_UNTRUSTED')
    const incremental = await verify(s, '--since-checkpoint')
    expect(incremental.code, explain(incremental)).toBe(2)
    expect(incremental.stderr).toContain('VERIFY_STATE_UNTRUSTED')

    // The old, unsigned format is no way round it either.
    writeFileSync(s.statePath, JSON.stringify({ format: 'readtrail-verify-state-v1', database: s.log.store.database, updated_at: new Date().toISOString(), chains: {}, producers: {} }))
    const v1 = await touched(s, 'clerk-0')
    expect([v1.code, v1.stderr.includes('VERIFY_STATE_UNTRUSTED')], explain(v1)).toEqual([2, true])

    // A full run rebuilds and signs a fresh state, says it replaced one, and finds the damage again.
    const full = await verify(s)
    expect(full.code, explain(full)).toBe(1)
    expect((JSON.parse(full.stdout) as { warnings: string[] }).warnings.join('\n')).toMatch(/was not trusted .*replaced it with a freshly signed one/)
    expect((await touched(s, 'clerk-0')).code).toBe(4)
  })

  it('a --skip-views run does not clear a view failure found earlier, nor does an incremental run', async () => {
    const s = await setUp()
    expect((await verify(s)).code).toBe(0)
    // A reader is removed from the query-serving table only: access_log is untouched.
    await s.sql(`ALTER TABLE ${s.log.store.table('access_by_principal')} DELETE WHERE chain_id = '${A}' AND seq = 7`)
    const found = await verify(s)
    expect(found.code, explain(found)).toBe(1)
    expect((JSON.parse(found.stdout) as { findings: { kind: string }[] }).findings.map((f) => f.kind)).toContain('view_mismatch')

    const skipViews = await verify(s, '--skip-views')
    expect(skipViews.code, explain(skipViews)).toBe(0)
    const sinceCheckpoint = await verify(s, '--since-checkpoint')
    expect(sinceCheckpoint.code, explain(sinceCheckpoint)).toBe(0)
    const state = JSON.parse(readFileSync(s.statePath, 'utf8')) as { chains: Record<string, { failures: { check: string; from_seq: number }[] }> }
    expect(state.chains[A]!.failures).toEqual([expect.objectContaining({ check: 'views', from_seq: 7 })])
    const answer = await touched(s, 'clerk-1')
    expect(answer.code, explain(answer)).toBe(4)
    expect(provenanceOf(answer).summary).toMatch(/^FAILED VERIFICATION/)
  })

  it('an incremental run does not clear a failure it did not re-check', async () => {
    const s = await setUp()
    expect((await verify(s)).code).toBe(0)
    // Damage behind the anchor (seq 30): only a full run looks there.
    await s.sql(`ALTER TABLE ${s.log.store.table('access_log')} UPDATE principal_id = 'mallory' WHERE chain_id = '${A}' AND seq = 5`)
    const full = await verify(s, '--skip-views')
    expect(full.code, explain(full)).toBe(1)
    const incremental = await verify(s, '--since-checkpoint')
    expect(incremental.code, explain(incremental)).toBe(0)
    expect(JSON.parse(incremental.stdout)).toMatchObject({ incremental: true, chains: [expect.objectContaining({ first_seq: 30 })] })
    const answer = await touched(s, 'clerk-2')
    expect(answer.code, explain(answer)).toBe(4)
    expect(provenanceOf(answer).chains).toEqual([expect.objectContaining({ chain_id: A, status: 'failed' })])
  })
})

describe('the verifier key', () => {
  it('`keys generate --verifier` makes it (0600) where verify looks for it, once; a lone public key is refused', async () => {
    const home = mkdtempSync(join(tmpdir(), 'readtrail-verifier-key-'))
    afterAll(() => rmSync(home, { recursive: true, force: true }))
    const made = await runCli(['keys', 'generate', '--verifier'], { READTRAIL_HOME: home })
    expect(made.code, explain(made)).toBe(0)
    expect(made.stdout).toContain(join(home, 'keys', 'verifier.key.pub'))
    expect(statSync(join(home, 'keys', 'verifier.key')).mode & 0o777).toBe(0o600)
    const again = await runCli(['keys', 'generate', '--verifier'], { READTRAIL_HOME: home })
    expect([again.code, again.stderr.includes('CHECKPOINT_KEY_INVALID')]).toEqual([2, true])
    // The private half removed: verify will not quietly start a new trust anchor.
    rmSync(join(home, 'keys', 'verifier.key'))
    // A data directory the engine has used (so not STORE_NOT_FOUND, which is checked first).
    mkdirSync(join(home, 'nowhere', 'metadata'), { recursive: true, mode: 0o700 })
    const verify = await runCli(['verify', '--no-checkpoints', '--data-dir', join(home, 'nowhere')], { READTRAIL_HOME: home })
    expect([verify.code, verify.stderr.includes('VERIFY_STATE_UNTRUSTED')], explain(verify)).toEqual([2, true])
  })
})

describe('verified means signed', () => {
  it('an answer over rows after the newest checkpoint is unsigned, exit 5, in every format', async () => {
    const s = await setUp()
    expect((await verify(s)).code).toBe(0)
    // The insider appends three well-chained reads framing a clerk after the newest checkpoint (seq 30).
    const store: Store = await openTestStore(s.log.store.database)
    try {
      const entries = [0, 1, 2].map((k) => ({ event: makeEvent({ principal_id: 'clerk.innocent', producer_id: 'forger', producer_seq: k + 1 }), offset: BigInt(100 + k), schemaVersion: 1 }))
      const linked = linkEntries(s.log.headAt(A, 30), entries, s.log.ingestedAt)
      await store.insertRowBinary('access_log', linked.rows, linked.count)
    } finally {
      await releaseTestStore()
    }
    const framed = await touched(s, 'clerk.innocent')
    expect(framed.code, explain(framed)).toBe(5)
    const p = provenanceOf(framed)
    expect(p.status).toBe('unsigned')
    expect(p.chains).toEqual([expect.objectContaining({ chain_id: A, first_seq: 31, last_seq: 33, status: 'unsigned', signed_through: 30 })])
    expect(p.summary).toMatch(/^UNSIGNED: .*orders\/0 seq 31\.\.33 \(signed only through 30\)/)
    const table = await s.cli(['query', 'records-touched-by-principal', '--param', 'principal=clerk.innocent'])
    expect(table.code).toBe(5)
    expect(table.stdout).toMatch(/^provenance: UNSIGNED/m)
    expect(table.stdout).toContain('orders/0 seq 31..33 (3 events): unsigned')
    const csv = await s.cli(['query', 'records-touched-by-principal', '--param', 'principal=clerk.innocent', '--format', 'csv'])
    expect([csv.code, csv.stdout.split('\n')[1]]).toEqual([5, expect.stringMatching(/^# provenance: UNSIGNED/)])
    // A verify does not make them verified either: no signature covers them.
    await verify(s)
    expect((await touched(s, 'clerk.innocent')).code).toBe(5)
    // Rows the checkpoints do cover still answer as before.
    const signed = await touched(s, 'clerk-0')
    expect(signed.code, explain(signed)).toBe(0)
  })
})

describe('periodic runs look back', () => {
  it('--every with --full-every: a restart keeps the schedule, and the scheduled full run finds old rows deleted everywhere that incremental runs never look at', async () => {
    const s = await setUp()
    const env = {
      READTRAIL_HOME: s.home,
      READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','),
      READTRAIL_TOPIC: s.log.topic.replace(/\.checkpoints$/, ''),
      READTRAIL_CHECKPOINT_PUBLIC_KEY: s.log.publicKeyPath,
      READTRAIL_CHECKPOINT_LOG: s.log.logPath,
    }
    const args = ['verify', '--no-kafka-checkpoints', '--every', '1s', '--full-every', '12s', '--data-dir', testDataDir(), '--database', s.log.store.database]
    const watch = () => {
      const child = spawnCli(args, env)
      const lines: Record<string, unknown>[] = []
      child.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of chunk.split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>)
      })
      return { child, lines }
    }
    const first = watch()
    try {
      await expect.poll(() => first.lines.length, { timeout: 60_000, interval: 200 }).toBeGreaterThanOrEqual(2)
      expect(first.lines[0]).toMatchObject({ ok: true, full: true, rows_verified: 30 })
      expect(first.lines[1]).toMatchObject({ ok: true, full: false, incremental: true })
    } finally {
      first.child.child.kill('SIGTERM')
      await first.child.exited
    }
    // The full run's time is in the signed state: a restarted job goes on incrementally.
    const second = watch()
    try {
      await expect.poll(() => second.lines.length, { timeout: 60_000, interval: 200 }).toBeGreaterThanOrEqual(1)
      expect(second.lines[0]).toMatchObject({ ok: true, full: false })
      // Between runs the insider deletes old rows from every table.
      const store = await openWhenFree(s.log.store.database)
      try {
        for (const table of ['access_log', 'access_by_principal']) {
          await store.client.command({ query: `ALTER TABLE ${store.table(table)} DELETE WHERE chain_id = '${A}' AND seq BETWEEN 3 AND 5`, clickhouse_settings: { mutations_sync: '2' } })
        }
      } finally {
        await releaseTestStore()
      }
      const deletedAt = second.lines.length
      const exit = await second.child.exited
      expect(exit.code, JSON.stringify(second.lines).slice(0, 4000)).toBe(1)
      const alert = second.lines.find((l) => l['alert'] === 'READTRAIL_INTEGRITY_ALERT')
      expect(alert).toMatchObject({ ok: false, full: true, incremental: false })
      expect(alert!['findings']).toContainEqual(expect.objectContaining({ chain_id: A, seq: 3, kind: 'deleted_rows' }))
      // Every run between the deletion and the full one was incremental and passed: they never look behind their anchor.
      const between = second.lines.slice(deletedAt, second.lines.indexOf(alert!))
      expect(between.every((l) => l['ok'] === true && l['full'] === false)).toBe(true)
    } catch (err) {
      throw new Error(`${(err as Error).message}\nwatcher stdout: ${JSON.stringify(second.lines).slice(0, 4000)}\nstderr: ${second.child.output().slice(-4000)}`, { cause: err })
    } finally {
      second.child.child.kill('SIGTERM')
    }
  })
})

/** Opens the store as soon as no other process (the watcher, mid-run) owns it. */
async function openWhenFree(database: string): Promise<Store> {
  for (;;) {
    try {
      return await openTestStore(database)
    } catch {
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}
