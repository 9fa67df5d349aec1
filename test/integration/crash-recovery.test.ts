import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kafka } from 'kafkajs'
import { afterAll, describe, expect, it } from 'vitest'
import { consumerLag, waitForCatchUp } from '../../consumers/lag.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { openStore } from '../../store/store.js'
import { runCli, spawnCli, testHome, type CliProcess } from '../helpers/cli-process.js'
import type { VerificationReport } from '../../integrity/report.js'
import { expectIntactChains } from '../helpers/integrity.js'
import { freshTopic, TEST_BROKERS, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { testStoreConfig } from '../helpers/store.js'
import { testSigningKey } from '../helpers/producer-trust.js'

const EVENTS = 40_000

describe('a chain writer killed mid-stream (SIGKILL) resumes without gap or duplicate', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'readtrail-crash-'))
  const running: CliProcess[] = []
  afterAll(() => {
    for (const p of running) p.child.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('kills `readtrail consume` twice while events stream in, then finishes with intact chains', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 3)
    const groupId = `${topic}-writer`
    // A short session timeout: the group hands a killed writer's partitions
    // to its successor after 6 s instead of 30.
    const env = { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','), READTRAIL_GROUP_ID: groupId, READTRAIL_DATA_DIR: dataDir, READTRAIL_TOPIC: topic, READTRAIL_KAFKA_SESSION_TIMEOUT_MS: '6000' }
    const start = async () => {
      const p = spawnCli(['consume'], env)
      running.push(p)
      await p.waitFor(/chain writer started/)
      return p
    }

    const producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: 'svc', signingKey: testSigningKey('svc'), lingerMs: 0 }, { kafka, logger: testLogger })
    const ids: string[] = []
    let produced = 0
    let kills = 0
    // Produce steadily in the background, and on until both kills happened,
    // so each kill lands mid-stream whatever the relative speeds.
    const production = (async () => {
      while (produced < EVENTS || kills < 2) {
        const batch = Array.from({ length: 500 }, (_, i) =>
          producer.recordRead({
            principal: { id: `p${(produced + i) % 5}` },
            resource: { database: 'db', table: 'patients' },
            columns: ['id', 'phone'],
            recordIds: [produced + i, produced + i + 1],
          }),
        )
        produced += batch.length
        for (const r of await Promise.all(batch)) ids.push(...r.eventIds)
      }
    })()

    for (let round = 1; round <= 2; round++) {
      const writer = await start()
      // Kill once this writer has committed some batches but the topic is not
      // drained. Counted in messages, which is what Kafka commits: a message
      // is a signed batch of many events, so events produced minus messages
      // behind says nothing about what was committed.
      const target = BigInt(round * 6)
      const deadline = Date.now() + 120_000
      for (;;) {
        if (Date.now() > deadline) throw new Error(`round ${round}: the writer committed too little in 120 s:\n${writer.output().slice(-4000)}`)
        const [committed, lag] = await Promise.all([committedMessages(kafka, groupId, topic), consumerLag(kafka, groupId, topic)])
        if (committed >= target && lag > 0n) break
        await new Promise((r) => setTimeout(r, 20))
      }
      writer.child.kill('SIGKILL')
      kills += 1
      const exit = await writer.exited
      expect(exit.signal).toBe('SIGKILL')
    }
    await production
    await producer.close()

    const last = await start()
    // The restarted writer resumed each chain from its newest signed checkpoint
    // (rows the killed writers stored after it are re-derived from Kafka).
    await last.waitFor(/chain resumes from its newest signed checkpoint/)
    await waitForCatchUp(kafka, groupId, topic, { timeoutMs: 240_000 })
    last.child.kill('SIGTERM')
    expect((await last.exited).code).toBe(0)
    // The killed writers' unsigned rows were vouched for by Kafka, not trusted from the store.
    expect(last.output()).toMatch(/"rederived":[1-9]/)

    const store = openStore(testStoreConfig('readtrail', dataDir), { command: 'crash test', logger: testLogger })
    try {
      expect(ids.length).toBeGreaterThanOrEqual(EVENTS)
      await expectIntactChains(store, ids)
    } finally {
      await store.close()
    }
    // No false alarm from the crashes: both modes verify clean against the
    // checkpoints the killed writers and the last one signed, and the last
    // one's final checkpoint vouches for every chain's head.
    for (const mode of ['--in-db', '--independent']) {
      const r = await runCli(['verify', mode, '--json'], env)
      expect(r.code, r.stderr).toBe(0)
      const report = JSON.parse(r.stdout) as VerificationReport
      expect(report.findings).toEqual([])
      expect(report.checkpoints.valid).toBeGreaterThanOrEqual(3)
      for (const c of report.chains) expect(c.checkpoint?.seq, c.chain_id).toBe(c.last_seq)
    }
    // Any stored event can be handed over as evidence, checked with no store.
    const bundle = join(dataDir, 'evidence.json')
    const exported = await runCli(['evidence', 'export', '--event', ids[1234]!, '--out', bundle], env)
    expect(exported.code, exported.stderr).toBe(0)
    expect(exported.stdout).toContain(`Event ${ids[1234]}`)
    const proved = await runCli(['evidence', 'verify', bundle, '--public-key', join(testHome(), 'keys', 'checkpoint.key.pub')], {})
    expect(proved.code, proved.stdout).toBe(0)
    expect(proved.stdout).toMatch(/^PROVED/)
  })
})

/** Messages of `topic` the group has committed, summed over partitions. */
async function committedMessages(kafka: Kafka, groupId: string, topic: string): Promise<bigint> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
    return (committed?.partitions ?? []).reduce((n, p) => n + (BigInt(p.offset) > 0n ? BigInt(p.offset) : 0n), 0n)
  } finally {
    await admin.disconnect()
  }
}
