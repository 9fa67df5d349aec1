import { describe, expect, it } from 'vitest'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import type { VerificationReport } from '../../integrity/report.js'
import { nextVerifyState, type VerifyState } from '../../integrity/verify-state.js'
import { collectFacts } from '../../integrity/verify-store.js'
import { verifyLog } from '../../integrity/verify.js'
import { spawnCli } from '../helpers/cli-process.js'
import { TEST_BROKERS } from '../helpers/kafka.js'
import { buildSignedLog, type SignedLog } from '../helpers/signed-log.js'
import { openTestStore, releaseTestStore, testDataDir } from '../helpers/store.js'
import type { Store } from '../../store/store.js'

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

const A = 'orders/0'
const B = 'orders/1'

/** One verify run the way `readtrail verify [--since-checkpoint]` does it, returning the state it would record. */
async function run(log: SignedLog, mode: 'in-db' | 'independent', since: VerifyState | null): Promise<{ report: VerificationReport; state: VerifyState }> {
  const checkpoints = await loadCheckpoints({ database: log.store.database, publicKeyPath: log.publicKeyPath, logPath: log.logPath, topic: { kafka: log.kafka, name: log.topic } })
  const outcome = await verifyLog((request) => collectFacts(log.store, request), log.store.database, { mode, checkpoints, since, workers: 2, producerGraceMs: 60_000 })
  return { report: outcome.report, state: nextVerifyState(since, outcome.report, outcome.producerThrough) }
}

const mutate = (log: SignedLog, sql: string) => log.store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })

describe('verify --since-checkpoint checks only what came after the last verified checkpoint', () => {
  it.each(['in-db', 'independent'] as const)('%s: starts at each anchor, sees damage after it, and records the new anchor', async (mode) => {
    const log = await buildSignedLog({ chains: [A, B], rowsPerChain: 40, checkpointEvery: 10 })
    const full = await run(log, mode, null)
    expect(full.report.ok).toBe(true)
    expect(full.state.chains[A]!.anchor).toMatchObject({ index: 4, seq: 40 })
    expect(full.state.chains[A]!.verified_through).toBe(40)
    // Each chain's producer is complete through 40: incremental runs read only its newer events.
    expect(Object.values(full.state.producers).sort()).toEqual([40, 40])

    // A restarted writer appends 20 rows to A, signing at 50 and 60.
    await log.append(A, 20, 10)
    const next = await run(log, mode, full.state)
    expect(next.report.findings).toEqual([])
    expect(next.report.incremental).toBe(true)
    // From each anchor on: A 40..60, B only its anchor row 40.
    expect(next.report.chains.map((c) => [c.chain_id, c.first_seq, c.last_seq, c.rows, c.checkpoint?.index])).toEqual([
      [A, 40, 60, 21, 6],
      [B, 40, 40, 1, 4],
    ])
    expect(next.report.rows_verified).toBe(22)
    expect(next.state.chains[A]!.anchor).toMatchObject({ index: 6, seq: 60 })

    // Damage after the anchor is found; damage before it is a full run's job.
    await log.append(A, 10, 10)
    await mutate(log, `ALTER TABLE ${log.store.table('access_log')} UPDATE principal_id = 'mallory' WHERE chain_id = '${A}' AND seq IN (5, 65)`)
    const damaged = await run(log, mode, next.state)
    expect(damaged.report.findings.map((f) => [f.chain_id, f.seq, f.kind])).toEqual([[A, 65, 'hash_mismatch']])
    // A damaged chain keeps its anchor, so the next run looks again.
    expect(damaged.state.chains[A]!.anchor).toMatchObject({ index: 6, seq: 60 })
    expect(damaged.state.chains[A]!.last_run?.ok).toBe(false)
    const again = await run(log, mode, damaged.state)
    expect(again.report.findings.map((f) => [f.seq, f.kind])).toEqual([[65, 'hash_mismatch']])
    const everything = await run(log, mode, null)
    expect(everything.report.findings.filter((f) => f.kind !== 'view_mismatch').map((f) => [f.seq, f.kind])).toEqual([
      [5, 'hash_mismatch'],
      [65, 'hash_mismatch'],
    ])
  })

  it('an incremental run sees a truncated tail and a rewritten anchor', async () => {
    const log = await buildSignedLog({ chains: [A], rowsPerChain: 40, checkpointEvery: 10 })
    const full = await run(log, 'in-db', null)
    await log.append(A, 20, 10)
    await mutate(log, `ALTER TABLE ${log.store.table('access_log')} DELETE WHERE chain_id = '${A}' AND seq > 55`)
    const cut = await run(log, 'in-db', full.state)
    expect(cut.report.findings.filter((f) => f.kind !== 'view_mismatch').map((f) => [f.seq, f.kind])).toEqual([[56, 'truncated']])
    // Everything from the anchor on is gone: the anchor row itself is missing.
    await mutate(log, `ALTER TABLE ${log.store.table('access_log')} DELETE WHERE chain_id = '${A}' AND seq >= 38`)
    const gone = await run(log, 'independent', full.state)
    expect(gone.report.findings.map((f) => [f.seq, f.kind])).toEqual([[40, 'truncated']])
  })

  it('`readtrail verify --every` runs incrementally, one JSON line per run, and exits 1 with an alert on the first damage', async () => {
    const log = await buildSignedLog({ chains: [A], rowsPerChain: 30, checkpointEvery: 10 })
    const { database } = log.store
    await releaseTestStore()
    const env = {
      READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','),
      READTRAIL_TOPIC: log.topic.replace(/\.checkpoints$/, ''),
      READTRAIL_CHECKPOINT_PUBLIC_KEY: log.publicKeyPath,
      READTRAIL_CHECKPOINT_LOG: log.logPath,
    }
    // File checkpoints only: this fixture's chain ids are not a real topic's
    // partitions, which the Kafka-log check (read with both copies) reports.
    const watcher = spawnCli(['verify', '--no-kafka-checkpoints', '--every', '1s', '--data-dir', testDataDir(), '--database', database], env)
    const lines: Record<string, unknown>[] = []
    watcher.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>)
    })
    try {
      await expect
        .poll(() => lines.filter((l) => l['msg'] === 'verification run intact').length, {
          timeout: 60_000,
          interval: 200,
        })
        .toBeGreaterThanOrEqual(2)
      expect(lines[0]).toMatchObject({ ok: true, incremental: false, rows_verified: 30 })
      // Later runs start at the anchor: only seq 30.
      expect(lines[1]).toMatchObject({ ok: true, incremental: true, rows_verified: 1 })
      // The attacker removes the newest rows while the watcher runs. Between
      // runs the store is free: the watcher opens it per run.
      const store = await openWhenFree(database)
      await store.client.command({ query: `ALTER TABLE ${store.table('access_log')} DELETE WHERE seq > 25`, clickhouse_settings: { mutations_sync: '2' } })
      await releaseTestStore()
      const exit = await watcher.exited
      expect(exit.code).toBe(1)
      const alert = lines.find((l) => l['alert'] === 'READTRAIL_INTEGRITY_ALERT')
      // The run starts at its anchor (seq 30), which is gone with the rest.
      expect(alert).toMatchObject({ ok: false, findings: [expect.objectContaining({ chain_id: A, seq: 30, kind: 'truncated' })] })
    } catch (err) {
      // What the watcher said, for the failure message.
      throw new Error(`${(err as Error).message}\nwatcher stdout: ${JSON.stringify(lines).slice(0, 4000)}\nstderr: ${watcher.output().slice(-4000)}`, { cause: err })
    } finally {
      watcher.child.kill('SIGTERM')
    }
  })
})
