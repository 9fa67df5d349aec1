import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openStore } from '../../store/store.js'
import { runCli, spawnCli } from '../helpers/cli-process.js'
import { freshTopic, TEST_BROKERS, testKafka, testLogger } from '../helpers/kafka.js'
import { seedChain } from '../helpers/seed-chain.js'
import { testStoreConfig } from '../helpers/store.js'

describe('readtrail CLI', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'readtrail-cli-'))
  const dir = ['--data-dir', dataDir]
  // The seeded chain demo/0 has no signed checkpoint and is no partition of
  // a real topic, which verify reports (checkpoint_copy_missing,
  // unknown_chain) whenever it reads the checkpoints or the Kafka log: these
  // exit-code tests check the chain and the views only.
  const uncheckpointed = '--no-checkpoints'
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  /** The test process uses the store between CLI runs, never during one. */
  async function withStore(fn: (store: ReturnType<typeof openStore>) => Promise<void>): Promise<void> {
    const store = openStore(testStoreConfig('readtrail', dataDir), { command: 'cli test', logger: testLogger })
    try {
      await store.ensureSchema()
      await fn(store)
    } finally {
      await store.close()
    }
  }

  it('lists saved queries with their parameters', async () => {
    const r = await runCli(['query', '--list'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/records-touched-by-principal\s+principal \[table\] \[from\] \[to\] \[limit\]/)
    expect(r.stdout).toMatch(/who-touched-record\s+table record \[database\] \[from\] \[to\]/)
    expect(r.stdout).toMatch(/breach-scope\s+\[principals\] \[ips\] \[sessions\] from to\n\s+What compromised/)
    expect(r.stdout).toMatch(/\s+timezone\s+IANA time zone of the office/)
    for (const name of ['subject-access-report', 'breach-records', 'breach-timeline', 'bulk-extraction', 'off-hours-access', 'first-time-access', 'reads-without-purpose', 'principal-timeline', 'top-readers']) {
      expect(r.stdout).toContain(`${name}  `)
    }
    expect(r.stdout).toContain('exit codes: 0 answered on verified ranges, 3 some rows not yet verified, 4')
    expect(r.stdout).toContain('5 some rows not yet signed')
  })

  it('rejects bad parameters with a coded error naming each, before touching the store', async () => {
    const fresh = join(dataDir, 'never-created')
    const r = await runCli(['query', 'records-touched-by-principal', '--param', 'from=yesterday', '--param', 'colour=red', '--data-dir', fresh])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('QUERY_PARAM_INVALID')
    expect(r.stderr).toMatch(/principal: /)
    expect(r.stderr).toMatch(/from: /)
    expect(r.stderr).toMatch(/colour: unknown parameter/)
    expect(existsSync(fresh)).toBe(false)
  })

  it('rejects an unknown query and an unknown command', async () => {
    const q = await runCli(['query', 'drop-everything', ...dir])
    expect(q.code).toBe(2)
    expect(q.stderr).toContain('QUERY_UNKNOWN')
    const c = await runCli(['frobnicate'])
    expect(c.code).toBe(2)
    expect(c.stderr).toContain('USAGE')
    const flag = await runCli(['verify', '--bogus', ...dir])
    expect(flag.code).toBe(2)
    expect(flag.stderr).toMatch(/^readtrail: USAGE: .*--bogus/)
    const level = await runCli(['verify', ...dir], { READTRAIL_LOG_LEVEL: 'loud' })
    expect(level.code).toBe(2)
    expect(level.stderr).toMatch(/^readtrail: CONFIG_INVALID: .*READTRAIL_LOG_LEVEL/s)
  })

  it('reports invalid configuration once, naming every key', async () => {
    const r = await runCli(['verify', ...dir], { READTRAIL_TOPIC_PARTITIONS: '0', READTRAIL_KAFKA_BROKERS: 'no-port' })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('CONFIG_INVALID')
    expect(r.stderr).toContain('partitions')
    expect(r.stderr).toContain('kafka.brokers.0')
  })

  it('keys generate writes a 0600 key once; consume refuses to run without one', async () => {
    const keyPath = join(dataDir, 'keys-test', 'checkpoint.key')
    const made = await runCli(['keys', 'generate', '--out', keyPath])
    expect(made.code, made.stderr).toBe(0)
    expect(made.stdout).toContain(`${keyPath}.pub`)
    expect(made.stdout).toContain('BEGIN PUBLIC KEY')
    expect(statSync(keyPath).mode & 0o777).toBe(0o600)
    const again = await runCli(['keys', 'generate', '--out', keyPath])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain('CHECKPOINT_KEY_INVALID')
    const unsigned = await runCli(['consume', ...dir], { READTRAIL_CHECKPOINT_KEY: join(dataDir, 'no-such.key') })
    expect(unsigned.code).toBe(2)
    expect(unsigned.stderr).toContain('CHECKPOINT_KEY_MISSING')
    expect(existsSync(join(dataDir, 'readtrail-owner.json'))).toBe(false)
  })

  it('consume without a reachable broker exits 2 with KAFKA_UNAVAILABLE and leaves the store free', async () => {
    const r = await runCli(['consume', ...dir], { READTRAIL_KAFKA_BROKERS: '127.0.0.1:9' })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('KAFKA_UNAVAILABLE')
    expect(existsSync(join(dataDir, 'readtrail-owner.json'))).toBe(false)
  })

  it('verify exits 0 on an intact log, 1 with the damaged chain and seq, 2 when the store is unreachable', async () => {
    await withStore(async (store) => {
      await seedChain(store, 'demo/0', 30, (i) => ({ principal_id: i === 3 ? 'clerk.anna' : 'clerk.bruno', record_ids: [`${100 + i}`] }))
    })
    const intact = await runCli(['verify', uncheckpointed, '--json', ...dir])
    expect(intact.code, intact.stdout + intact.stderr).toBe(0)
    expect(JSON.parse(intact.stdout)).toMatchObject({ ok: true, rows_verified: 30, findings: [] })

    await withStore(async (store) => {
      await store.client.command({
        query: `ALTER TABLE ${store.table('access_log')} UPDATE principal_id = 'nobody' WHERE seq = 3`,
        clickhouse_settings: { mutations_sync: '2' },
      })
    })
    const damaged = await runCli(['verify', uncheckpointed, '--json', ...dir])
    expect(damaged.code).toBe(1)
    // The edit reaches access_log only, so the query views now disagree with
    // it at the same row too: every finding names demo/0 seq 3.
    const findings = JSON.parse(damaged.stdout).findings as { chain_id: string; seq: number; kind: string }[]
    expect(findings).toContainEqual(expect.objectContaining({ chain_id: 'demo/0', seq: 3, kind: 'hash_mismatch' }))
    expect(findings.every((f) => f.chain_id === 'demo/0' && f.seq === 3)).toBe(true)
    expect(findings.some((f) => f.kind === 'view_mismatch')).toBe(true)
    const chainOnly = await runCli(['verify', uncheckpointed, '--json', '--skip-views', ...dir])
    expect(chainOnly.code).toBe(1)
    expect(JSON.parse(chainOnly.stdout)).toMatchObject({ views_checked: false, findings: [{ chain_id: 'demo/0', seq: 3, kind: 'hash_mismatch' }] })
    const human = await runCli(['verify', uncheckpointed, ...dir])
    expect(human.code).toBe(1)
    expect(human.stdout).toContain('DAMAGED')
    expect(human.stdout).toContain('demo/0 seq 3: hash_mismatch')

    const unreachable = await runCli(['verify'], { READTRAIL_CLICKHOUSE_URL: 'http://127.0.0.1:9' })
    expect(unreachable.code).toBe(2)
    expect(unreachable.stderr).toMatch(/STORE_UNAVAILABLE/)
  })

  it('verify --acknowledge reaches the verify command: without --reason it is a usage error that records nothing', async () => {
    const r = await runCli(['verify', '--acknowledge', 'producer:p1:4', ...dir])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('USAGE')
    expect(r.stderr).toContain('--reason')
  })

  it('read-only commands never create a store: a wrong directory or a dropped table exits 2 with STORE_NOT_FOUND', async () => {
    const nowhere = join(dataDir, 'typo')
    const r = await runCli(['verify', '--data-dir', nowhere])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`STORE_NOT_FOUND: no readtrail store at ${nowhere}`)
    expect(existsSync(nowhere)).toBe(false)
    const other = await runCli(['verify', '--database', 'not_the_log', ...dir])
    expect(other.code).toBe(2)
    expect(other.stderr).toContain('no access_log table')
    expect(other.stderr).toContain('STORE_NOT_FOUND')
    const q = await runCli(['query', 'who-touched-record', '--param', 'table=t', '--param', 'record=1', '--database', 'not_the_log', ...dir])
    expect(q.code).toBe(2)
    expect(q.stderr).toContain('STORE_NOT_FOUND')
    expect(q.stderr).toContain(dataDir)
  })

  // The verify runs above recorded demo/0 as damaged (seq 3 edited): every
  // answer built on demo/0, and every empty answer, stands on a failed
  // verification, says so in each format and exits 4.
  it('runs saved queries in every output format with their provenance, binding hostile values as plain data', async () => {
    const csv = await runCli(['query', 'who-touched-record', '--param', 'table=applicants', '--param', 'record=103', '--format', 'csv', ...dir])
    expect(csv.code).toBe(4)
    expect(csv.stderr).toContain('FAILED VERIFICATION')
    const lines = csv.stdout.trim().split('\n')
    const comments = lines.filter((l) => l.startsWith('#'))
    expect(comments[0]).toBe('# readtrail who-touched-record: 1 rows')
    expect(comments[1]).toMatch(/^# provenance: FAILED VERIFICATION: .*demo\/0 seq 4\.\.4/)
    const data = lines.slice(comments.length)
    expect(data[0]).toBe('occurred_at,principal_id,principal_type,on_behalf_of,database,columns,client_ip,session_hash,service,action,purpose,outcome,event_id,chain_id,seq')
    expect(data).toHaveLength(2)
    expect(data[1]).toContain(',clerk.anna,user,,registry,"id,full_name",192.0.2.10,,test-service,read,,success,')

    const json = await runCli(['query', 'records-touched-by-principal', '--param', 'principal=clerk.bruno', '--format', 'json', ...dir])
    expect(json.code).toBe(4)
    const answer = JSON.parse(json.stdout)
    // Answered from access_log itself, where seq 3 now says 'nobody' (the
    // views still hold the old row): 28 of bruno's 29 reads, and failed.
    expect(answer.rows).toHaveLength(28)
    expect(answer).toMatchObject({ query: 'records-touched-by-principal', truncated: false, row_count: 28, provenance: { status: 'failed' } })
    expect(answer.provenance.chains).toEqual([expect.objectContaining({ chain_id: 'demo/0', first_seq: 1, last_seq: 30, events: 28, status: 'failed' })])
    const ndjson = await runCli(['query', 'records-touched-by-principal', '--param', 'principal=clerk.bruno', '--param', 'limit=5', '--format', 'ndjson', ...dir])
    const ndLines = ndjson.stdout.trim().split('\n')
    expect(ndLines).toHaveLength(6)
    expect(JSON.parse(ndLines[0]!)._readtrail).toMatchObject({ truncated: true, row_count: 5, provenance: { status: 'failed' } })
    const table = await runCli(['query', 'records-touched-by-principal', '--param', 'principal=clerk.bruno', ...dir])
    expect(table.code).toBe(4)
    expect(table.stdout).toMatch(/^provenance: FAILED VERIFICATION/m)

    const hostile = await runCli(['query', 'records-touched-by-principal', '--param', "principal=x' OR 1=1 --", '--format', 'json', ...dir])
    expect(hostile.code).toBe(4)
    expect(JSON.parse(hostile.stdout).rows).toEqual([])
    const twice = await runCli(['query', 'breach-scope', '--param', 'principals=a', '--param', 'principals=b', ...dir])
    expect(twice.code).toBe(2)
    expect(twice.stderr).toContain('given twice')
  })

  it('while `consume` owns the embedded store, query and verify go through it', async () => {
    const kafka = testKafka()
    const topic = await freshTopic(kafka, 1)
    const owner = spawnCli(['consume', ...dir], { READTRAIL_KAFKA_BROKERS: TEST_BROKERS.join(','), READTRAIL_TOPIC: topic, READTRAIL_GROUP_ID: `${topic}-g` })
    try {
      await owner.waitFor(/serving queries for other readtrail processes/)
      const q = await runCli(['query', 'records-touched-by-principal', '--param', 'principal=clerk.bruno', '--format', 'json', ...dir])
      // Only the provenance warning: the answer came through the owner.
      expect(q.stderr).toMatch(/^readtrail: FAILED VERIFICATION: [^\n]*\n$/)
      expect(q.code).toBe(4)
      expect(JSON.parse(q.stdout).rows).toHaveLength(28)
      const v = await runCli(['verify', uncheckpointed, '--json', ...dir])
      expect(v.code).toBe(1)
      expect(JSON.parse(v.stdout).findings[0]).toMatchObject({ chain_id: 'demo/0', seq: 3 })
    } finally {
      owner.child.kill('SIGTERM')
      expect((await owner.exited).code).toBe(0)
    }
    // After a clean stop the store is free again and opened directly.
    expect((await runCli(['verify', uncheckpointed, ...dir])).code).toBe(1)
  })

  it('a store owned by a process that serves no socket fails with STORE_LOCKED naming it', async () => {
    const holder = spawn('sleep', ['60'])
    try {
      writeFileSync(join(dataDir, 'readtrail-owner.json'), JSON.stringify({ pid: holder.pid, command: 'readtrail demo', started_at: new Date().toISOString() }))
      // A socket path left behind by an earlier owner answers nothing.
      writeFileSync(join(dataDir, 'readtrail.sock'), '')
      const r = await runCli(['query', 'records-touched-by-principal', '--param', 'principal=clerk.bruno', ...dir])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('STORE_LOCKED')
      expect(r.stderr).toContain(`readtrail process ${holder.pid} (\`readtrail demo\``)
    } finally {
      holder.kill()
      rmSync(join(dataDir, 'readtrail.sock'), { force: true })
    }
    // A lock whose process has died is taken over.
    await new Promise((r) => holder.on('exit', r))
    expect((await runCli(['verify', uncheckpointed, ...dir])).code).toBe(1)
  })
})
