import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { formatCheckpointLine, SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { linkEntries, type ChainHead } from '../../consumers/chain.js'
import { formatReport, type Finding, type VerificationReport } from '../../integrity/report.js'
import type { VerifyOptions } from '../../integrity/verify.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { buildKafkaLog, replayedMessage, type KafkaRow, type KafkaSignedLog } from '../helpers/kafka-log.js'

/**
 * The red-team suite against the trust anchors outside ClickHouse: the Kafka
 * log and the two copies of the checkpoints. Each attack is what an insider
 * with write access to the store (SQL), the files under READTRAIL_HOME or
 * the Kafka admin API can do, and verify must name the exact chain, seq and
 * kind in both modes. The rows come from real messages on a real topic.
 *
 * Layout: partitions 0 and 1 of a fresh topic are chains P0 and P1, 20 rows
 * each, signed at seqs 10 and 20; tests add unsigned rows where they need a
 * tail. The query views copy rows on insert only, so an attack on access_log
 * also shows as view mismatches (in-db only): those are left out
 * of the exact lists, as in red-team.test.ts.
 */
const MODES = ['in-db', 'independent'] as const
const DERIVED = new Set(['view_mismatch'])
const located = (findings: Finding[]) => findings.filter((f) => !DERIVED.has(f.kind)).map((f) => [f.chain_id, f.seq, f.kind])
const mutate = (store: Store, sql: string) => store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })

async function signedLog(unsignedOnP0 = 0): Promise<KafkaSignedLog> {
  const log = await buildKafkaLog({ partitions: 2 })
  await log.ingest(0, 20, 10)
  await log.ingest(1, 20, 10)
  if (unsignedOnP0 > 0) await log.ingest(0, unsignedOnP0, 0)
  return log
}

async function expectFound(log: KafkaSignedLog, expected: (string | number)[][], options: Partial<VerifyOptions> = {}): Promise<VerificationReport[]> {
  const reports: VerificationReport[] = []
  for (const mode of MODES) {
    const report = await log.verify(mode, options)
    reports.push(report)
    expect(report.ok, `${mode}: ${JSON.stringify(report.findings)}`).toBe(false)
    expect(located(report.findings), `${mode}: ${JSON.stringify(report.findings.slice(0, 12))}`).toEqual(expected)
  }
  return reports
}

async function expectClean(log: KafkaSignedLog, options: Partial<VerifyOptions> = {}): Promise<VerificationReport[]> {
  const reports: VerificationReport[] = []
  for (const mode of MODES) {
    const report = await log.verify(mode, options)
    reports.push(report)
    expect(report.findings, `${mode}: ${JSON.stringify(report.findings)}`).toEqual([])
    expect(report.ok, mode).toBe(true)
    expect(report.kafka_checked).toBe(true)
  }
  return reports
}

const headOf = (log: KafkaSignedLog, partition: number, seq: number): ChainHead => {
  const row = log.rows.get(log.chainOf(partition))![seq - 1]!
  return { chainId: log.chainOf(partition), seq, hash: Buffer.from(row.hash, 'hex'), lastOffset: row.offset }
}

/** Replaces a chain's rows from `fromSeq` on with `entries`, every hash recomputed: a consistent rewrite of the tail. */
async function rewriteTail(log: KafkaSignedLog, partition: number, fromSeq: number, entries: { event: KafkaRow['event']; offset: bigint }[]): Promise<void> {
  const t = log.store.table('access_log')
  await mutate(log.store, `ALTER TABLE ${t} DELETE WHERE chain_id = '${log.chainOf(partition)}' AND seq >= ${fromSeq}`)
  const linked = linkEntries(headOf(log, partition, fromSeq - 1), entries.map((e) => ({ ...e, schemaVersion: 1 })), log.ingestedAt)
  await log.store.insertRowBinary('access_log', linked.rows, linked.count)
}

/** Delete-records as an admin client runs it (kafkajs needs the topic's metadata first). */
async function deleteRecords(log: KafkaSignedLog, before: string): Promise<void> {
  await withAdmin(log, async (admin) => {
    await admin.fetchTopicMetadata({ topics: [log.checkpointTopic] })
    await admin.deleteTopicRecords({ topic: log.checkpointTopic, partitions: [{ partition: 0, offset: before }] })
  })
}

async function withAdmin<T>(log: KafkaSignedLog, use: (admin: ReturnType<KafkaSignedLog['kafka']['admin']>) => Promise<T>): Promise<T> {
  const admin = log.kafka.admin()
  await admin.connect()
  try {
    return await use(admin)
  } finally {
    await admin.disconnect()
  }
}

describe('red team, Kafka and checkpoint copies: every attack is found at its chain and seq, in both modes', () => {
  it('an untouched log with an unsigned tail verifies clean; the tail is reported UNSIGNED, never verified', async () => {
    const log = await signedLog(5)
    const P0 = log.chainOf(0)
    const P1 = log.chainOf(1)
    for (const report of await expectClean(log)) {
      expect(report.chains.map((c) => [c.chain_id, c.last_seq, c.checkpoint?.seq, c.unsigned_from_seq, c.unsigned_rows])).toEqual([
        [P0, 25, 20, 21, 5],
        [P1, 20, 20, null, 0],
      ])
      expect(report.checkpoint_high).toEqual({ [P0]: { index: 2, seq: 20 }, [P1]: { index: 2, seq: 20 } })
      expect(formatReport(report)).toContain('rows 21..25 UNSIGNED (newer than the newest checkpoint)')
      expect(report.warnings.join('\n')).not.toContain('NOT checked against the topic')
    }
  })

  it('without kafkaLog the report says chain ids and offsets were NOT checked', async () => {
    const log = await signedLog()
    const report = await log.verify('in-db', { kafkaLog: null })
    expect(report.ok).toBe(true)
    expect(report.kafka_checked).toBe(false)
    expect(report.warnings.join('\n')).toContain('chain ids and Kafka offsets NOT checked against the topic')
  })

  it('a whole chain forged from genesis under a chain id that is no partition of the topic: unknown_chain at its first row', async () => {
    const log = await signedLog()
    const forgedId = `${log.topic}/7`
    const forged = linkEntries({ chainId: forgedId, seq: 0, hash: Buffer.alloc(32), lastOffset: null }, [0, 1, 2].map((i) => ({ event: makeEvent({ principal_id: 'alibi' }), offset: BigInt(i), schemaVersion: 1 })), log.ingestedAt)
    await log.store.insertRowBinary('access_log', forged.rows, forged.count)
    await expectFound(log, [[forgedId, 1, 'unknown_chain']])
  })

  it('a forged head row with a huge kafka_offset (it would blind the writer): offset_invalid at that row', async () => {
    const log = await signedLog()
    const P0 = log.chainOf(0)
    const forged = linkEntries(headOf(log, 0, 20), [{ event: makeEvent({ principal_id: 'framed-clerk' }), offset: 1_000_000_000_000n, schemaVersion: 1 }], log.ingestedAt)
    await log.store.insertRowBinary('access_log', forged.rows, forged.count)
    const [report] = await expectFound(log, [[P0, 21, 'offset_invalid']])
    expect(report!.findings.find((f) => f.kind === 'offset_invalid')!.detail).toContain('beyond the end of partition 0')
  })

  it('offsets that do not rise (seq 23 re-linked claiming the message of seq 22): offset_invalid there, and the message it displaced is a gap', async () => {
    const log = await signedLog(5)
    const P0 = log.chainOf(0)
    const rows = log.rows.get(P0)!
    await rewriteTail(log, 0, 23, [
      { event: rows[22]!.event, offset: rows[21]!.offset },
      { event: rows[23]!.event, offset: rows[23]!.offset },
      { event: rows[24]!.event, offset: rows[24]!.offset },
    ])
    await expectFound(log, [
      [P0, 23, 'offset_invalid'],
      [P0, 24, 'offset_gap'],
    ])
  })

  it('a row deleted from the unsigned tail and the tail re-linked (the chain alone is consistent): offset_gap at the row after it', async () => {
    const log = await signedLog(5)
    const P0 = log.chainOf(0)
    const rows = log.rows.get(P0)!
    // Row 23 goes; rows 24 and 25 become 23 and 24 with every hash recomputed.
    await rewriteTail(log, 0, 23, [rows[23]!, rows[24]!])
    const reports = await expectFound(log, [
      // Its producer numbered it 23: the hole shows there too.
      [P0, 23, 'producer_gap'],
      [P0, 23, 'offset_gap'],
    ])
    for (const r of reports) expect(r.findings.find((f) => f.kind === 'offset_gap')!.detail).toContain(`first ${rows[22]!.offset}`)
  })

  it('the unsigned tail deleted after a crash (the group committed past it): head_mismatch at the first missing seq', async () => {
    const log = await signedLog(5)
    const P0 = log.chainOf(0)
    await mutate(log.store, `ALTER TABLE ${log.store.table('access_log')} DELETE WHERE chain_id = '${P0}' AND seq > 20`)
    const reports = await expectFound(log, [[P0, 21, 'head_mismatch']])
    for (const r of reports) expect(r.chains.find((c) => c.chain_id === P0)).toMatchObject({ last_seq: 20, unsigned_from_seq: null })
  })

  it('a whole unsigned chain deleted while its group committed offset stays: head_mismatch at seq 1', async () => {
    const log = await buildKafkaLog({ partitions: 2 })
    await log.ingest(0, 10, 10)
    await log.ingest(1, 4, 0)
    await mutate(log.store, `ALTER TABLE ${log.store.table('access_log')} DELETE WHERE chain_id = '${log.chainOf(1)}'`)
    await expectFound(log, [[log.chainOf(1), 1, 'head_mismatch']])
  })

  it("the writer's group offset set past the partition's end with the admin API (the writer would skip every message up to it): head_mismatch", async () => {
    const log = await signedLog()
    await log.commitAt(0, 1_000_000n)
    const [report] = await expectFound(log, [[log.chainOf(0), 21, 'head_mismatch']])
    expect(report!.findings[0]!.detail).toContain('set by hand')
  })

  it('no false alarm: a message the writer dead-lettered is a gap its dead letter explains', async () => {
    const log = await buildKafkaLog({ partitions: 2 })
    await log.ingest(0, 10, 10)
    const [offset] = await log.produceSkipped(0, [{ value: Buffer.from('not an access event') }])
    await log.deadLetter(0, offset!)
    await log.ingest(0, 10, 10)
    await log.ingest(1, 5, 5)
    await expectClean(log)
  })

  it('the same skipped message without its dead letter: offset_gap at the row after it', async () => {
    const log = await buildKafkaLog({ partitions: 2 })
    await log.ingest(0, 10, 10)
    await log.produceSkipped(0, [{ value: Buffer.from('not an access event') }])
    await log.ingest(0, 10, 10)
    await expectFound(log, [[log.chainOf(0), 11, 'offset_gap']])
  })

  it('no false alarm: a replayed duplicate of a stored event is a gap the Kafka log itself explains', async () => {
    const log = await buildKafkaLog({ partitions: 2 })
    const first = await log.ingest(0, 10, 10)
    await log.produceSkipped(0, [replayedMessage(first[3]!.event)])
    await log.ingest(0, 10, 10)
    await expectClean(log)
  })

  it('a replay header on an event the chain does not hold explains nothing: offset_gap', async () => {
    const log = await buildKafkaLog({ partitions: 2 })
    await log.ingest(0, 10, 10)
    await log.produceSkipped(0, [replayedMessage(makeEvent())])
    await log.ingest(0, 10, 10)
    await expectFound(log, [[log.chainOf(0), 11, 'offset_gap']])
  })

  it('no false alarm: a head past the committed offset (a crash between insert and commit) is clean', async () => {
    const log = await signedLog(5)
    await log.commitAt(0, log.rows.get(log.chainOf(0))![17]!.offset)
    await expectClean(log)
  })

  it('the checkpoint file deleted: checkpoint_copy_missing per chain, at the first checkpoint it lacks', async () => {
    const log = await signedLog()
    rmSync(log.logPath)
    await expectFound(log, [
      [log.chainOf(0), 10, 'checkpoint_copy_missing'],
      [log.chainOf(1), 10, 'checkpoint_copy_missing'],
    ])
  })

  it('both copies gone while the store holds rows: checkpoint_copy_missing per chain at its first row', async () => {
    const log = await signedLog()
    rmSync(log.logPath)
    await withAdmin(log, (admin) => admin.deleteTopics({ topics: [log.checkpointTopic] }))
    await expectFound(log, [
      [log.chainOf(0), 1, 'checkpoint_copy_missing'],
      [log.chainOf(1), 1, 'checkpoint_copy_missing'],
    ])
  })

  it('every checkpoint record deleted from the topic (delete-records): checkpoint_topic_weakened and the Kafka copy missing per chain', async () => {
    const log = await signedLog()
    await deleteRecords(log, '-1')
    const reports = await expectFound(log, [
      ['(checkpoint topic)', 0, 'checkpoint_topic_weakened'],
      [log.chainOf(0), 10, 'checkpoint_copy_missing'],
      [log.chainOf(1), 10, 'checkpoint_copy_missing'],
    ])
    for (const r of reports) expect(r.findings[0]!.detail).toContain('starts at offset 4')
  })

  it("the checkpoint topic's first records deleted: its log-start offset advanced is checkpoint_topic_weakened", async () => {
    const log = await signedLog()
    await deleteRecords(log, '1')
    await expectFound(log, [
      ['(checkpoint topic)', 0, 'checkpoint_topic_weakened'],
      // The Kafka copy of P0 now starts at #2.
      [log.chainOf(0), 20, 'checkpoint_chain_broken'],
    ])
  })

  it('the checkpoint topic set to expire its records: checkpoint_topic_weakened naming the setting', async () => {
    const log = await signedLog()
    await withAdmin(log, (admin) => admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: log.checkpointTopic, configEntries: [{ name: 'retention.ms', value: '60000' }] }] }))
    const reports = await expectFound(log, [['(checkpoint topic)', 0, 'checkpoint_topic_weakened']])
    for (const r of reports) expect(r.findings[0]!.detail).toContain('retention.ms=60000')
  })

  it('both copies wound back together (file rewritten, topic recreated and refilled): checkpoint_regressed against the recorded high-water mark', async () => {
    const log = await signedLog()
    const P0 = log.chainOf(0)
    const [clean] = await expectClean(log)
    const high = clean!.checkpoint_high
    // The insider keeps every checkpoint but P0's #2, in both copies.
    const kept = readFileSync(log.logPath, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => SignedCheckpoint.parse(JSON.parse(l)))
      .filter((c) => !(c.chain_id === P0 && c.index === 2))
    writeFileSync(log.logPath, kept.map((c) => `${formatCheckpointLine(c)}\n`).join(''))
    await withAdmin(log, async (admin) => {
      await admin.deleteTopics({ topics: [log.checkpointTopic] })
      await waitUntil(async () => !(await admin.listTopics()).includes(log.checkpointTopic))
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: log.checkpointTopic, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '-1' }, { name: 'retention.bytes', value: '-1' }, { name: 'cleanup.policy', value: 'delete' }] }],
      })
    })
    const producer = log.kafka.producer()
    await producer.connect()
    await producer.send({ topic: log.checkpointTopic, acks: -1, messages: kept.map((c) => ({ key: c.chain_id, value: formatCheckpointLine(c) })) })
    await producer.disconnect()
    // Consistent copies: without the recorded mark nothing shows.
    for (const mode of MODES) expect(located((await log.verify(mode)).findings), mode).toEqual([])
    const reports = await expectFound(log, [[P0, 11, 'checkpoint_regressed']], { checkpointHigh: high })
    for (const r of reports) expect(r.findings[0]!.detail).toMatch(/#2 \(seq 20\).*now #1 \(seq 10\)/)
  })
})

async function waitUntil(ok: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await ok()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('condition never held')
}
