import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Partitioners, type Kafka } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { readCheckpointLog } from '../../checkpoints/checkpoint-log.js'
import { chainIdOf, linkEntries } from '../../consumers/chain.js'
import type { Ingest } from '../../consumers/ingest.js'
import { waitForCatchUp } from '../../consumers/lag.js'
import type { RepairReport } from '../../integrity/repair-report.js'
import type { VerificationReport } from '../../integrity/report.js'
import type { AccessEvent } from '../../schemas/access-event.js'
import { createCodec } from '../../schemas/codec.js'
import { loadSchemaRegistry } from '../../schemas/registry.js'
import type { Store } from '../../store/store.js'
import { runCli, type CliResult } from '../helpers/cli-process.js'
import { makeEvent } from '../helpers/events.js'
import { testDeployment, type TestDeployment } from '../helpers/ingest.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, TEST_BROKERS, testKafka } from '../helpers/kafka.js'
import { openTestStore, releaseTestStore, testDataDir } from '../helpers/store.js'

/**
 * `readtrail repair` (issue 10): signed rows deleted from the store are
 * restored from Kafka only when the rebuild hashes up to the signed
 * checkpoint; unsigned rows Kafka does not vouch for are quarantined on
 * request; a lost checkpoint topic is refilled from the file unless the file
 * was rolled back. The attacks are carried out with SQL on the store and
 * admin calls on Kafka; repair and verify run as the CLI, as an operator
 * would run them (the test hands the embedded store over for each run).
 */
// Wire-1 events, one per message (offsets are events), consumed by a writer that allows unsigned producers (a migrating deployment): repair is under test, not producers.
const codec = createCodec(loadSchemaRegistry())
const mutate = (store: Store, sql: string) => store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })

interface Setup {
  kafka: Kafka
  store: Store
  database: string
  topic: string
  chainId: string
  groupId: string
  deployment: TestDeployment
  env: Record<string, string>
  sent: AccessEvent[]
}

async function setup(): Promise<Setup> {
  const kafka = testKafka()
  const topic = await freshTopic(kafka, 1)
  const store = await openTestStore()
  const deployment = testDeployment(kafka, topic)
  const groupId = `${topic}-writer`
  const dir = mkdtempSync(join(tmpdir(), 'readtrail-repair-'))
  const env = {
    READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','),
    READTRAIL_TOPIC: topic,
    READTRAIL_GROUP_ID: groupId,
    READTRAIL_DATA_DIR: testDataDir(),
    READTRAIL_CLICKHOUSE_DATABASE: store.database,
    READTRAIL_CHECKPOINT_KEY: deployment.publicKeyPath.replace(/\.pub$/, ''),
    READTRAIL_CHECKPOINT_LOG: deployment.logPath,
    READTRAIL_VERIFY_STATE: join(dir, 'verify-state.json'),
    READTRAIL_VERIFY_KEY: join(dir, 'verifier.key'),
    // The topic holds wire-1 messages: repair, like the writer here, takes them as a migrating deployment does.
    READTRAIL_ALLOW_UNSIGNED: '1',
  }
  return { kafka, store, database: store.database, topic, chainId: chainIdOf(topic, 0), groupId, deployment, env, sent: [] }
}

async function produce(s: Setup, count: number): Promise<void> {
  const producer = s.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const events = Array.from({ length: count }, () => makeEvent())
  await producer.send({ topic: s.topic, acks: -1, messages: events.map((e) => ({ partition: 0, value: codec.encode(e) })) })
  await producer.disconnect()
  s.sent.push(...events)
}

async function startIngest(s: Setup): Promise<Ingest> {
  return s.deployment.ingest({ store: s.store, topic: s.topic, groupId: s.groupId, allowUnsigned: true })
}

async function catchUp(s: Setup): Promise<void> {
  await waitForCatchUp(s.kafka, s.groupId, s.topic, { timeoutMs: 60_000 })
}

/** Ingest everything produced so far, then a clean stop (which signs the final head). */
async function ingestAll(s: Setup): Promise<void> {
  const ingest = await startIngest(s)
  await catchUp(s)
  await ingest.stop()
}

/** Runs the CLI on the test's store: this process hands the embedded store over for the run and takes it back. */
async function cli(s: Setup, args: string[]): Promise<CliResult> {
  await releaseTestStore()
  try {
    return await runCli(args, s.env)
  } finally {
    s.store = await openTestStore(s.database)
  }
}

async function repair(s: Setup, ...args: string[]): Promise<{ code: number | null; report: RepairReport; stderr: string }> {
  const r = await cli(s, ['repair', '--json', ...args])
  if (r.code === 2) throw new Error(`repair failed: ${r.stderr}`)
  return { code: r.code, report: JSON.parse(r.stdout) as RepairReport, stderr: r.stderr }
}

async function verify(s: Setup, mode: '--in-db' | '--independent'): Promise<{ code: number | null; report: VerificationReport }> {
  const r = await cli(s, ['verify', mode, '--json'])
  expect(r.code, r.stderr).not.toBe(2)
  return { code: r.code, report: JSON.parse(r.stdout) as VerificationReport }
}

async function expectVerifiedClean(s: Setup): Promise<void> {
  for (const mode of ['--in-db', '--independent'] as const) {
    const v = await verify(s, mode)
    expect(v.report.findings, mode).toEqual([])
    expect(v.code, mode).toBe(0)
  }
}

async function rowCount(s: Setup): Promise<number> {
  const [row] = await s.store.queryRows<{ n: number }>(`SELECT count() AS n FROM ${s.store.table('access_log')}`)
  return Number(row?.n ?? 0)
}

const deleteSeqs = (s: Setup, where: string) => mutate(s.store, `ALTER TABLE ${s.store.table('access_log')} DELETE WHERE chain_id = '${s.chainId}' AND (${where})`)

async function lastCheckpointSeq(s: Setup): Promise<number> {
  return (await readCheckpointLog(s.deployment.logPath)).entries.at(-1)?.checkpoint.seq ?? 0
}

describe('readtrail repair restores signed rows only when Kafka proves them', () => {
  it('restores a deleted checkpointed row, a range inside an insert and a whole insert; verify is clean and consume resumes', async () => {
    const s = await setup()
    // Three inserts at least: produced while the writer runs, each caught up before the next.
    const ingest = await startIngest(s)
    for (const n of [20, 10, 10]) {
      await produce(s, n)
      await catchUp(s)
    }
    await ingest.stop()
    expect(await lastCheckpointSeq(s)).toBe(40)
    const inserts = await s.store.queryRows<{ first: number; last: number }>(
      `SELECT min(seq) AS first, max(seq) AS last FROM ${s.store.table('access_log')} GROUP BY ingested_at ORDER BY first`,
    )
    expect(inserts.length).toBeGreaterThanOrEqual(3)
    const whole = inserts.find((i) => i.first > 8 && i.last < 39)!
    expect(whole).toBeDefined()
    // Deleted from access_log only, as an insider would: the query views still hold the rows.
    await deleteSeqs(s, `seq = 40 OR seq BETWEEN 5 AND 7 OR seq BETWEEN ${whole.first} AND ${whole.last}`)
    const missing = 1 + 3 + (whole.last - whole.first + 1)

    const damaged = await verify(s, '--in-db')
    expect(damaged.code).toBe(1)
    expect(damaged.report.findings.map((f) => f.kind)).toEqual(expect.arrayContaining(['truncated', 'deleted_rows']))

    const dry = await repair(s, '--dry-run')
    expect(dry.code).toBe(3)
    expect(dry.report.items.map((i) => [i.from_seq, i.to_seq, i.outcome])).toEqual([
      [40, 40, 'provable'],
      [whole.first, whole.last, 'provable'],
      [5, 7, 'provable'],
    ])
    expect(await rowCount(s)).toBe(40 - missing)

    const done = await repair(s)
    expect(done.code).toBe(0)
    expect(done.report.items.map((i) => i.outcome)).toEqual(['restored', 'restored', 'restored'])
    expect(done.stderr.match(/READTRAIL_INTEGRITY_ALERT/g)).toHaveLength(3)
    expect(await rowCount(s)).toBe(40)
    await expectVerifiedClean(s)
    expect((await repair(s)).report.items).toEqual([])

    await produce(s, 5)
    await ingestAll(s)
    await expectIntactChains(s.store, s.sent.map((e) => e.event_id))
    expect(await lastCheckpointSeq(s)).toBe(45)
    await expectVerifiedClean(s)
  })

  it('reports a gap whose messages were deleted from Kafka, and inserts nothing', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    await deleteSeqs(s, 'seq BETWEEN 3 AND 5')
    const admin = s.kafka.admin()
    await admin.connect()
    await admin.fetchTopicMetadata({ topics: [s.topic] })
    await admin.deleteTopicRecords({ topic: s.topic, partitions: [{ partition: 0, offset: '10' }] })
    await admin.disconnect()

    const r = await repair(s)
    expect(r.code).toBe(1)
    expect(r.report.items).toMatchObject([{ action: 'restore', from_seq: 3, to_seq: 5, outcome: 'unproved', code: 'REPAIR_MESSAGES_MISSING' }])
    expect(r.report.items[0]!.detail).toContain("below the partition's log start 10")
    expect(await rowCount(s)).toBe(27)
  })

  it('reports a gap next to an edited row as unanchored, and inserts nothing', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    await deleteSeqs(s, 'seq BETWEEN 10 AND 12')
    await mutate(s.store, `ALTER TABLE ${s.store.table('access_log')} UPDATE principal_id = 'mallory' WHERE chain_id = '${s.chainId}' AND seq = 13`)

    const r = await repair(s)
    expect(r.code).toBe(1)
    expect(r.report.items).toMatchObject([
      { from_seq: 13, outcome: 'unproved', code: 'REPAIR_CHAIN_BROKEN' },
      { from_seq: 10, to_seq: 12, outcome: 'unproved', code: 'REPAIR_CHAIN_BROKEN' },
    ])
    expect(await rowCount(s)).toBe(27)
  })
})

describe('readtrail repair --quarantine-unsigned', () => {
  it('moves a forged unsigned tail into quarantined_rows; consume then re-derives the chain from Kafka', async () => {
    const s = await setup()
    await produce(s, 30)
    await ingestAll(s)
    const [head] = await s.store.queryRows<{ h: string }>(`SELECT hex(hash) AS h FROM ${s.store.table('access_log')} WHERE seq = 30`)
    const forged = linkEntries(
      { chainId: s.chainId, seq: 30, hash: Buffer.from(head!.h, 'hex'), lastOffset: 29n },
      [30n, 31n, 32n].map((offset) => ({ event: makeEvent({ principal_id: 'clerk.innocent', row_count: 5000 }), offset, schemaVersion: 1 })),
      Date.now() * 1000,
    )
    await s.store.insertRowBinary('access_log', forged.rows, forged.count)
    await produce(s, 5)
    const refused = await startIngest(s)
    const err = await Promise.race([refused.failed, new Promise((_, reject) => setTimeout(() => reject(new Error('ingest did not fail')), 60_000))])
    await refused.stop()
    expect(err).toMatchObject({ code: 'CHAIN_UNTRUSTED', details: { seq: 31 } })

    const dry = await repair(s, '--quarantine-unsigned', '--dry-run')
    expect(dry.code).toBe(3)
    expect(dry.report.items).toMatchObject([{ action: 'quarantine', from_seq: 31, outcome: 'would_quarantine' }])
    const r = await repair(s, '--quarantine-unsigned')
    expect(r.code).toBe(0)
    expect(r.report.items).toMatchObject([{ action: 'quarantine', from_seq: 31, outcome: 'quarantined' }])
    expect(r.report.items[0]!.rows!.map((q) => q.seq)).toEqual([31, 32, 33])
    const kept = await s.store.queryRows<{ seq: number; principal_id: string; reason: string }>(
      `SELECT seq, principal_id, reason FROM ${s.store.table('quarantined_rows')} ORDER BY seq`,
    )
    expect(kept.map((q) => [q.seq, q.principal_id])).toEqual([31, 32, 33].map((seq) => [seq, 'clerk.innocent']))
    expect(kept[0]!.reason).toContain('differs from the message at offset 30')

    await ingestAll(s)
    await expectIntactChains(s.store, s.sent.map((e) => e.event_id))
    expect(await lastCheckpointSeq(s)).toBe(35)
    await expectVerifiedClean(s)
  })
})

describe('readtrail repair --republish-checkpoints', () => {
  it('refills a deleted checkpoint topic from the file so consume starts again, and refuses a file rolled back behind the signed verify state', async () => {
    const s = await setup()
    await produce(s, 20)
    await ingestAll(s)
    await produce(s, 10)
    await ingestAll(s)
    // The signed verify state records the highest checkpoint seen (#2, seq 30).
    await expectVerifiedClean(s)
    const admin = s.kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [s.deployment.checkpointTopic] })
    await admin.disconnect()
    const lost = await startIngest(s).then(
      () => null,
      (e: unknown) => e,
    )
    expect(lost).toMatchObject({ code: 'CHECKPOINT_COPY_LOST' })

    const r = await repair(s, '--republish-checkpoints')
    expect(r.code).toBe(0)
    expect(r.report.items).toMatchObject([{ action: 'republish', outcome: 'republished' }])
    await produce(s, 5)
    await ingestAll(s)
    await expectIntactChains(s.store, s.sent.map((e) => e.event_id))
    await expectVerifiedClean(s)

    // The attacker winds the file back to checkpoint #1 and deletes the topic again.
    const lines = readFileSync(s.deployment.logPath, 'utf8').split('\n').filter(Boolean)
    writeFileSync(s.deployment.logPath, `${lines[0]}\n`)
    const again = s.kafka.admin()
    await again.connect()
    await again.deleteTopics({ topics: [s.deployment.checkpointTopic] })
    await again.disconnect()
    const refused = await cli(s, ['repair', '--republish-checkpoints'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/REPAIR_CHECKPOINTS_ROLLED_BACK/)
  })
})

describe('readtrail repair needs the writer stopped', () => {
  it('refuses while this process owns the embedded store, and while the writer group has members', async () => {
    const s = await setup()
    await produce(s, 5)
    await ingestAll(s)
    const locked = await runCli(['repair'], s.env)
    expect(locked.code).toBe(2)
    expect(locked.stderr).toMatch(/REPAIR_WRITER_RUNNING: readtrail repair needs the store to itself/)
    const ingest = await startIngest(s)
    try {
      const running = await runCli(['repair'], s.env)
      expect(running.code).toBe(2)
      expect(running.stderr).toMatch(/REPAIR_WRITER_RUNNING: the chain writer group/)
    } finally {
      await ingest.stop()
    }
  })
})
