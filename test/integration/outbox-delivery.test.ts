import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { verifyStore } from '../../integrity/verify-store.js'
import { createAuditProducer } from '../../producers/audit-producer.js'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { instrumentPg } from '../../producers/hooks/pg.js'
import { createReadRecorder } from '../../producers/hooks/read-recorder.js'
import { startHookPipeline, type StoredRead } from '../helpers/hook-pipeline.js'
import { freshTopic, testKafka, testLogger } from '../helpers/kafka.js'
import { createPracticeDatabase, PG_CONNECTION } from '../helpers/postgres.js'
import { startPrivateBroker } from '../helpers/private-broker.js'
import { thrown } from '../helpers/thrown.js'
import { deferCleanup } from '../helpers/cleanup.js'
import { testSigningKey, testSigningKeyFile } from '../helpers/producer-trust.js'

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'readtrail-outbox-'))
  deferCleanup(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i))

/** Each record id appears in exactly one stored event, and the producer's sequence runs 1..n. */
function expectEachReadOnce(stored: StoredRead[], ids: string[]): void {
  const seen = stored.flatMap((r) => r.record_ids).sort()
  expect(seen).toEqual([...ids].sort())
  const byProducer = new Map<string, number[]>()
  for (const r of stored) byProducer.set(r.producer_id, [...(byProducer.get(r.producer_id) ?? []), r.producer_seq])
  for (const [producer, seqs] of byProducer) {
    seqs.sort((a, b) => a - b)
    expect(seqs, producer).toEqual(seqs.map((_, i) => i + 1))
  }
}

describe('delivery that never loses an acknowledged read', () => {
  let database: string
  it('keeps fail-open reads working while the broker is stopped for real, and stores each exactly once after it restarts', async () => {
    database = await createPracticeDatabase()
    const broker = await startPrivateBroker()
    const pipeline = await startHookPipeline({ brokers: broker.brokers, producer: { outbox: { dir: tempDir(), sendDeadlineMs: 300 }, ackTimeoutMs: 2000 } })
    const recorder = createReadRecorder(pipeline.producer, { tables: { patients: {} } }, { logger: testLogger })
    const pool = await instrumentPg(new pg.Pool({ ...PG_CONNECTION, database, max: 2 }), recorder)
    deferCleanup(() => pool.end())
    const read = async (i: number) => {
      const res = await runWithAuditContext({ principal: { id: 'clerk.outage' } }, () => pool.query<{ id: string }>('SELECT id, full_name FROM patients WHERE id = $1', [100000 + i]))
      expect(res.rows.map((r) => r.id)).toEqual([String(100000 + i)])
    }

    for (let i = 1; i <= 100; i++) await read(i)
    // A cold broker may miss the first deadlines (metadata, producer id):
    // whatever went to the outbox then is sent before the outage starts.
    expect(await pipeline.producer.drainOutbox(60_000)).toBe(true)
    const before = pipeline.producer.stats()
    expect(before.outboxPending).toBe(0)

    await broker.stop()
    const started = Date.now()
    for (let i = 101; i <= 200; i++) await read(i)
    const outageReadsMs = Date.now() - started
    await pipeline.producer.flush()
    const during = pipeline.producer.stats()
    // outboxed counts events (one per read); outboxPending counts outbox
    // records, each one signed batch holding every read that was ready together.
    expect(during.outboxed - before.outboxed).toBe(100)
    expect(during.outboxPending).toBeGreaterThanOrEqual(1)
    expect(during.outboxPending).toBeLessThanOrEqual(100)
    expect(recorder.stats().unrecorded).toBe(0)

    await broker.start()
    for (let i = 201; i <= 300; i++) await read(i)
    expect(await pipeline.producer.drainOutbox(120_000)).toBe(true)
    await pipeline.settle()
    // Every outbox record went out (reads after the restart may have missed a deadline and been outboxed too).
    expect(pipeline.producer.stats().replayed - during.replayed).toBeGreaterThanOrEqual(during.outboxPending)
    expect(pipeline.producer.stats().outboxPending).toBe(0)

    const stored = (await pipeline.storedReads()).filter((r) => r.principal_id === 'clerk.outage')
    expectEachReadOnce(stored, range(100001, 100300))
    const report = await verifyStore(pipeline.store)
    expect(report.findings).toEqual([])
    expect(report.ok).toBe(true)
    // Reads did not wait for the broker: fail-open.
    expect(outageReadsMs).toBeLessThan(30_000)
  })

  it('replays, after SIGKILL, what an application wrote to its outbox before any broker acknowledged it: nothing lost, nothing twice', async () => {
    const outboxDir = tempDir()
    // The app signs its batches for the topic the replaying process sends them to: a signature binds its topic.
    const topic = await freshTopic(testKafka(), 2)
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/outbox-app.ts', import.meta.url)), outboxDir, database, '400', topic, testSigningKeyFile('killed-app')], {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const durable: string[] = []
    let producerId = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the app did not report 60 durable reads in 90 s: ${stderr}`)), 90_000)
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.startsWith('ready ')) producerId = line.slice(6)
        if (line.startsWith('durable ')) durable.push(line.slice(8))
        if (durable.length === 60) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.once('exit', (code) => reject(new Error(`the app exited (${code}) early: ${stderr}`)))
    })
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))

    // A new process with the same outbox, the broker reachable: it replays.
    const pipeline = await startHookPipeline({ topic, producer: { outbox: { dir: outboxDir } } })
    expect(await pipeline.producer.drainOutbox(60_000)).toBe(true)
    await pipeline.settle()
    const stored = (await pipeline.storedReads()).filter((r) => r.producer_id === producerId)
    const storedIds = stored.flatMap((r) => r.record_ids)
    // Every read the app was told is durable is stored; reads after the last
    // report may also be (durable but not yet reported when it died).
    for (const id of durable) expect(storedIds).toContain(id)
    expect(storedIds.length).toBeGreaterThanOrEqual(durable.length)
    expectEachReadOnce(stored, range(100001, 100000 + storedIds.length))
    expect(stored.every((r) => r.principal_id === 'clerk.killed')).toBe(true)
    expect((await verifyStore(pipeline.store)).ok).toBe(true)
  })

  it('refuses fail-closed reads, with no rows, when neither the broker nor the outbox can take the event; fail-open reads go on', async () => {
    const outboxDir = tempDir()
    // The broker is unreachable and the outbox holds 4 KiB: it fills at once.
    const producer = await createAuditProducer(
      { kafka: { brokers: ['127.0.0.1:1'], clientId: 'closed', connectionTimeoutMs: 200 }, topic: 'unreachable', service: 'closed-app', signingKey: testSigningKey('closed-app'), outbox: { dir: outboxDir, maxBytes: 4096, sendDeadlineMs: 100 } },
      { logger: testLogger },
    )
    deferCleanup(() => producer.close())
    const recorder = createReadRecorder(
      producer,
      { tables: { patients: { policy: 'fail-closed' }, 'public.treatments': { policy: 'fail-open' } }, durableWithinMs: 3000 },
      { logger: testLogger },
    )
    const client = new pg.Client({ ...PG_CONNECTION, database })
    await client.connect()
    deferCleanup(() => client.end())
    await instrumentPg(client, recorder)
    const as = <T>(fn: () => Promise<T>) => runWithAuditContext({ principal: { id: 'clerk.closed' } }, fn)

    // Fill the outbox with fail-open reads until it refuses.
    for (let i = 0; i < 40 && producer.stats().failed === 0; i++) {
      const rows = await as(() => client.query('SELECT * FROM treatments WHERE doctor_id = $1', [1 + (i % 20)]))
      expect(rows.rows.length).toBeGreaterThan(0)
      await producer.flush()
    }
    expect(producer.stats().failed).toBeGreaterThan(0)

    let delivered: unknown[] | undefined
    const err = await thrown(as(async () => {
      // 300 record ids: more than the room left in the outbox.
      delivered = (await client.query('SELECT id, religion FROM patients WHERE id BETWEEN 100001 AND 100300')).rows
    }))
    expect(err).toMatchObject({ code: 'AUDIT_UNAVAILABLE', retriable: true })
    expect(delivered).toBeUndefined()
    // Fail-open tables keep answering, and the lapse is counted.
    const open = await as(() => client.query('SELECT * FROM treatments WHERE doctor_id = 3'))
    expect(open.rows.length).toBeGreaterThan(0)
    await producer.flush()
    await new Promise((r) => setTimeout(r, 50))
    expect(recorder.stats().unrecorded).toBeGreaterThan(0)
    expect(recorder.stats().refused).toBe(1)
  })

  it('refuses fail-closed reads without an outbox when the broker stopped, and records them again once it is back', async () => {
    const broker = await startPrivateBroker(19196)
    const pipeline = await startHookPipeline({ brokers: broker.brokers, producer: { ackTimeoutMs: 1000 } })
    const recorder = createReadRecorder(pipeline.producer, { tables: { patients: { policy: 'fail-closed' } }, durableWithinMs: 2000 }, { logger: testLogger })
    const client = new pg.Client({ ...PG_CONNECTION, database })
    await client.connect()
    deferCleanup(() => client.end())
    await instrumentPg(client, recorder)
    const read = (id: number) => runWithAuditContext({ principal: { id: 'clerk.noutbox' } }, () => client.query('SELECT id FROM patients WHERE id = $1', [id]))
    expect((await read(100010)).rows).toHaveLength(1)
    await broker.stop()
    expect(await thrown(read(100011))).toMatchObject({ code: 'AUDIT_UNAVAILABLE' })
    await broker.start()
    let back: pg.QueryResult | undefined
    for (let i = 0; i < 30 && !back; i++) back = await read(100012).catch(() => undefined)
    expect(back?.rows).toHaveLength(1)
    await pipeline.settle()
    const ids = (await pipeline.storedReads()).flatMap((r) => r.record_ids)
    expect(ids).toContain('100010')
    expect(ids).toContain('100012')
  })
})
