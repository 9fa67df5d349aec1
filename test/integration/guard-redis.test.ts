import { spawn, type ChildProcess } from 'node:child_process'
import { createPublicKey } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { createClient } from '@redis/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import { createAuditProducer, type AuditProducer } from '../../producers/audit-producer.js'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import type { TakeRequest } from '../../producers/guard/budget-store.js'
import { RedisStoreConfig } from '../../producers/guard/guard-config.js'
import { createRedisBudgetStore } from '../../producers/guard/redis-budget-store.js'
import { instrumentPg } from '../../producers/hooks/pg.js'
import { createReadRecorder } from '../../producers/hooks/read-recorder.js'
import { sideTopic } from '../../schemas/side-batch.js'
import { readAccessEvents, readAlerts } from '../helpers/guard-kafka.js'
import { freshGuardPrefix, privateRedis, SHARED_REDIS_URL } from '../helpers/guard-redis.js'
import { createRegistryDatabase } from '../helpers/guard-registry.js'
import { freshTopic, TEST_BROKERS, testKafka, testKafkaConnection, testLogger } from '../helpers/kafka.js'
import { PG_CONNECTION } from '../helpers/postgres.js'
import { testSigningKey, testSigningKeyFile } from '../helpers/producer-trust.js'
import { thrown } from '../helpers/thrown.js'

const SERVICE = 'registry-api'
const quiet = createLogger({ level: 'silent' })
const minute = (limit: number, key: string, cost = 1): TakeRequest => ({ key, cost, limits: [{ windowSeconds: 60, limit }], force: false })

/** Redis's own clock (ms): the script counts by it, so the test aims at its bucket boundaries. */
async function redisClock(url: string): Promise<{ now(): Promise<number>; close(): Promise<void> }> {
  const c = createClient({ url })
  await c.connect()
  return {
    async now() {
      const [s, us] = (await c.sendCommand(['TIME'])) as string[]
      return Number(s) * 1000 + Math.floor(Number(us) / 1000)
    },
    close: () => c.close(),
  }
}

async function createAlertTopic(kafka: ReturnType<typeof testKafka>, topic: string): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: sideTopic(topic, 'alert'), numPartitions: 1 }], waitForLeaders: true })
  await admin.disconnect()
  afterAll(async () => {
    const a = kafka.admin()
    await a.connect()
    await a.deleteTopics({ topics: [sideTopic(topic, 'alert')] }).catch(() => {})
    await a.disconnect()
  })
}

describe('extraction guard on the real Redis', () => {
  it('the Lua sliding window: atomic take, refusal not counted, retry time, and a burst at a window boundary cannot pass 1× budget', async () => {
    const store = createRedisBudgetStore(RedisStoreConfig.parse({ url: SHARED_REDIS_URL, timeoutMs: 1000 }), { logger: quiet })
    try {
      const key = `${freshGuardPrefix()}{lua}`
      for (let i = 0; i < 5; i++) expect(await store.take(minute(5, key))).toMatchObject({ taken: true, over: undefined })
      const refused = await store.take(minute(5, key))
      expect(refused).toMatchObject({ taken: false, over: { windowSeconds: 60, limit: 5, observed: 6 } })
      expect(refused.retryAfterMs).toBeGreaterThan(59_000)
      expect(refused.retryAfterMs).toBeLessThanOrEqual(61_000)
      expect(await store.take({ ...minute(5, key, 2), force: true })).toMatchObject({ taken: true, over: { observed: 7 } })
      expect(await store.take(minute(5, `${key}x`, 6))).toMatchObject({ taken: false, retryAfterMs: Number.POSITIVE_INFINITY })

      // Burst: 40 asks for a budget of 20 in the last ~300 ms before a
      // second (bucket) boundary, where a fixed window would also reset, then
      // 40 more just after it.
      const burstKey = `${freshGuardPrefix()}{burst}`
      const clock = await redisClock(SHARED_REDIS_URL)
      try {
        const start = await clock.now()
        const boundary = Math.ceil((start + 1500) / 1000) * 1000
        await new Promise((r) => setTimeout(r, boundary - 300 - start))
        const before = await Promise.all(Array.from({ length: 40 }, () => store.take(minute(20, burstKey))))
        const beforeEnded = await clock.now()
        await new Promise((r) => setTimeout(r, Math.max(0, boundary - beforeEnded) + 20))
        const afterStarted = await clock.now()
        const after = await Promise.all(Array.from({ length: 40 }, () => store.take(minute(20, burstKey))))
        expect(beforeEnded).toBeLessThan(boundary)
        expect(afterStarted).toBeGreaterThanOrEqual(boundary)
        // 80 asks across the boundary, 20 allowed in all: not 40, the fixed-window flaw.
        expect(before.filter((r) => r.taken)).toHaveLength(20)
        expect(after.filter((r) => r.taken)).toHaveLength(0)
      } finally {
        await clock.close()
      }
    } finally {
      await store.close()
    }
  })

  it('hostile principal ids and table names reach no key: every counter in Redis is the prefix and a hash tag of a digest', async () => {
    const prefix = freshGuardPrefix()
    const producer = { config: { service: 'registry-api', signingKey: testSigningKey(SERVICE), sqlDialect: 'postgres' }, enqueueParsedRead: () => 'x', publishAlert: () => {} } as unknown as AuditProducer
    const hostileTable = 'app.{evil}:*'
    const recorder = createReadRecorder(producer, { tables: { [hostileTable]: {} }, guard: { budgets: { '}{': { tables: [hostileTable], limits: { user: { perMinute: 2 } } } }, redis: { url: SHARED_REDIS_URL, keyPrefix: prefix, timeoutMs: 1000 } } }, { logger: quiet })
    const ids = ['a:b', '{a}', '}', `${prefix}{x}`, '*', 'x\r\nFLUSHALL\r\n', 'ü'.repeat(256)]
    const read = (id: string) => recorder.record([{ table: hostileTable, policy: 'fail-open', columns: ['id'], recordIds: ['1', '2'], rowCount: 2, recordIdsComplete: true }], undefined, 'app', { principal: { id, type: 'user' } })
    for (const id of ids) await read(id)
    // Each has its own full budget: none collided with another's counter.
    for (const id of ids) expect(await thrown(Promise.resolve().then(() => read(id)))).toMatchObject({ code: 'EXTRACTION_LIMIT' })
    const c = createClient({ url: SHARED_REDIS_URL })
    await c.connect()
    try {
      const keys = (await c.sendCommand(['KEYS', `${prefix}*`])) as string[]
      expect(keys).toHaveLength(ids.length)
      for (const k of keys) expect(k).toMatch(/^rt-test:[0-9a-f]{8}:\{[A-Za-z0-9_-]{43}\}$/)
    } finally {
      await c.close()
      await recorder.close()
    }
  })

  it('three application processes share one budget through Redis: exactly the budget is allowed across them', { timeout: 120_000 }, async () => {
    const database = await createRegistryDatabase(600)
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    await createAlertTopic(kafka, topic)
    const budget = 120
    const keyPrefix = freshGuardPrefix()
    const children: ChildProcess[] = []
    afterAll(() => children.forEach((c) => c.exitCode === null && c.kill()))
    const script = fileURLToPath(new URL('../helpers/guard-app.ts', import.meta.url))
    const results = await (async () => {
      const lines = Array.from({ length: 3 }, (_, i) => {
        const config = { database, brokers: TEST_BROKERS, topic, signingKeyFile: testSigningKeyFile(SERVICE), redisUrl: SHARED_REDIS_URL, keyPrefix, budget, reads: 100, firstId: 1 + i * 200, principal: 'clerk.spread' }
        const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] })
        children.push(child)
        let stderr = ''
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
        const out = createInterface({ input: child.stdout! })
        const queue: string[] = []
        const waiting: { resolve: (l: string) => void; reject: (e: Error) => void }[] = []
        out.on('line', (l) => (waiting.length > 0 ? waiting.shift()!.resolve(l) : queue.push(l)))
        child.once('exit', (code) => {
          for (const w of waiting.splice(0)) w.reject(new Error(`guard-app ${i} exited with ${code}: ${stderr.slice(-2000)}`))
        })
        return () => new Promise<string>((resolve, reject) => (queue.length > 0 ? resolve(queue.shift()!) : waiting.push({ resolve, reject })))
      })
      expect(await Promise.all(lines.map((next) => next()))).toEqual(['ready', 'ready', 'ready'])
      for (const c of children) c.stdin!.end('go\n')
      return (await Promise.all(lines.map((next) => next()))).map((l) => JSON.parse(l) as { ok: number; refused: number; other: string[] })
    })()
    await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))))
    for (const r of results) expect(r.other).toEqual([])
    // 300 single-record reads spread over three pods: the budget holds across them, to the record.
    expect(results.reduce((s, r) => s + r.ok, 0)).toBe(budget)
    expect(results.reduce((s, r) => s + r.refused, 0)).toBe(300 - budget)
    // Every instance was served some and refused some: they really competed.
    for (const r of results) expect(r.ok + r.refused).toBe(100)

    const events = (await readAccessEvents(kafka, topic, createPublicKey(testSigningKey(SERVICE)))).filter((e) => e.principal_id === 'clerk.spread')
    expect(events.filter((e) => e.outcome === 'success')).toHaveLength(budget)
    expect(events.filter((e) => e.outcome === 'denied')).toHaveLength(300 - budget)
  })
})

describe('extraction guard when Redis stops mid-run (a private redis-server)', () => {
  const redis = privateRedis(56_379 + (process.pid % 500))
  let producer: AuditProducer
  let pool: pg.Pool
  let kafka: ReturnType<typeof testKafka>
  let topic: string

  beforeAll(async () => {
    const database = await createRegistryDatabase(400)
    kafka = testKafka()
    topic = await freshTopic(kafka, 1)
    await createAlertTopic(kafka, topic)
    producer = await createAuditProducer({ kafka: testKafkaConnection(), topic, service: SERVICE, signingKey: testSigningKey(SERVICE), lingerMs: 0 }, { logger: testLogger })
    pool = new pg.Pool({ ...PG_CONNECTION, database, max: 4 })
    return async () => {
      await pool.end()
      await producer.close()
    }
  })

  it('fail-open reads go on unchecked (counted, alert `unchecked`), fail-closed reads are refused GUARD_UNAVAILABLE, each within the timeout; checks resume when Redis is back', async () => {
    const timeoutMs = 100
    // One recorder per policy, each on its own pool over the same table.
    const openRecorder = createReadRecorder(
      producer,
      { tables: { applicants: {} }, guard: { budgets: { open: { tables: ['applicants'], limits: { user: { perMinute: 30 } }, onStoreDown: 'fail-open' } }, redis: { url: redis.url, keyPrefix: freshGuardPrefix(), timeoutMs } } },
      { logger: testLogger },
    )
    const closedRecorder = createReadRecorder(
      producer,
      { tables: { applicants: {} }, guard: { budgets: { closed: { tables: ['applicants'], limits: { user: { perMinute: 30 } }, onStoreDown: 'fail-closed' } }, redis: { url: redis.url, keyPrefix: freshGuardPrefix(), timeoutMs } } },
      { logger: testLogger },
    )
    const openPool = await instrumentPg(new pg.Pool({ ...pool.options, max: 2 }), openRecorder)
    const closedPool = await instrumentPg(new pg.Pool({ ...pool.options, max: 2 }), closedRecorder)
    const read = (p: pg.Pool, id: number) => runWithAuditContext({ principal: { id: 'clerk.outage' } }, () => p.query('SELECT id, email FROM applicants WHERE id = $1', [id]))
    try {
      // Redis up: counted and enforced.
      for (let id = 1; id <= 30; id++) await read(openPool, id)
      expect(await thrown(read(openPool, 31))).toMatchObject({ code: 'EXTRACTION_LIMIT' })
      for (let id = 1; id <= 5; id++) await read(closedPool, id)

      redis.stop()
      const slowest = { open: 0, closed: 0 }
      for (let id = 100; id < 120; id++) {
        let t0 = performance.now()
        expect((await read(openPool, id)).rows).toHaveLength(1)
        slowest.open = Math.max(slowest.open, performance.now() - t0)
        t0 = performance.now()
        expect(await thrown(read(closedPool, id))).toMatchObject({ code: 'GUARD_UNAVAILABLE', retriable: true })
        slowest.closed = Math.max(slowest.closed, performance.now() - t0)
      }
      // Never longer than the Redis timeout plus the query itself.
      expect(slowest.open).toBeLessThan(timeoutMs + 400)
      expect(slowest.closed).toBeLessThan(timeoutMs + 400)
      expect(openRecorder.stats().guard).toMatchObject({ unchecked: 20 })
      expect(closedRecorder.stats().guard).toMatchObject({ unavailable: 20 })

      // A hung Redis (answers nothing) is bounded the same way: CLIENT PAUSE holds every command.
      redis.start()
      // Checked again once a fail-closed read gets through.
      await waitUntil(async () => read(closedPool, 200).then(() => true, () => false))
      const pauser = createClient({ url: redis.url })
      await pauser.connect()
      await pauser.sendCommand(['CLIENT', 'PAUSE', '1500', 'ALL'])
      const t0 = performance.now()
      expect(await thrown(read(closedPool, 201))).toMatchObject({ code: 'GUARD_UNAVAILABLE' })
      expect(performance.now() - t0).toBeLessThan(timeoutMs + 400)
      await pauser.close().catch(() => pauser.destroy())
      await new Promise((r) => setTimeout(r, 1600))

      // Back: checks resume (a fresh Redis has no counters: the window starts again).
      await waitUntil(async () => read(closedPool, 300).then(() => true, () => false))
      const uncheckedBefore = openRecorder.stats().guard.unchecked
      for (let id = 301; id <= 305; id++) await read(openPool, id)
      expect(openRecorder.stats().guard.unchecked).toBe(uncheckedBefore)

      await producer.flush()
      let alerts: Awaited<ReturnType<typeof readAlerts>> = []
      await waitUntil(async () => {
        alerts = await readAlerts(kafka, topic, createPublicKey(testSigningKey(SERVICE)))
        return alerts.some((a) => a.action === 'unchecked')
      })
      // One `unchecked` alert for the outage (bounded rate), plus the refusal while Redis was up.
      expect(alerts.filter((a) => a.action === 'unchecked')).toEqual([expect.objectContaining({ budget: 'open', principal_id: 'clerk.outage', detail: expect.stringContaining('fail-open') as unknown as string })])
      expect(alerts.filter((a) => a.action === 'refuse')).toEqual([expect.objectContaining({ budget: 'open', observed: 31, limit: 30 })])
      const events = (await readAccessEvents(kafka, topic, createPublicKey(testSigningKey(SERVICE)))).filter((e) => e.principal_id === 'clerk.outage')
      // The fail-closed refusals during the outage are in the log as denied reads naming their record.
      expect(events.filter((e) => e.outcome === 'denied').flatMap((e) => e.record_ids)).toEqual(expect.arrayContaining(['31', '100', '119', '201']))
    } finally {
      await openPool.end()
      await closedPool.end()
      await openRecorder.close()
      await closedRecorder.close()
    }
  })
})

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 100))
  }
}
