import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import Cursor from 'pg-cursor'
import QueryStream from 'pg-query-stream'
import { beforeAll, describe, expect, it } from 'vitest'
import { runWithAuditContext } from '../../producers/context/audit-context.js'
import { instrumentPg } from '../../producers/hooks/pg.js'
import { createReadRecorder, type ReadRecorder } from '../../producers/hooks/read-recorder.js'
import { startHookPipeline, type HookPipeline, type StoredRead } from '../helpers/hook-pipeline.js'
import { createPracticeDatabase, PATIENT_COUNT, PG_CONNECTION } from '../helpers/postgres.js'
import { thrown } from '../helpers/thrown.js'

const TABLES = {
  patients: { policy: 'fail-open' as const },
  'public.treatments': { policy: 'fail-open' as const },
}

interface Row {
  id: string
}

/** Record ids per table the stored events of one principal name, each once. */
function idsByTable(reads: StoredRead[], principal: string): Record<string, string[]> {
  const out: Record<string, Set<string>> = {}
  for (const r of reads.filter((e) => e.principal_id === principal)) for (const id of r.record_ids) (out[r.table_name] ??= new Set()).add(id)
  return Object.fromEntries(Object.entries(out).map(([t, ids]) => [t, [...ids].sort()]))
}

const sorted = (ids: Iterable<unknown>) => [...new Set([...ids].map(String))].sort()

describe('node-postgres hook on the real PostgreSQL server, end to end through Kafka and the chain', () => {
  let database: string
  let pipeline: HookPipeline
  let recorder: ReadRecorder
  let pool: pg.Pool

  beforeAll(async () => {
    database = await createPracticeDatabase()
    pipeline = await startHookPipeline()
    recorder = createReadRecorder(pipeline.producer, { tables: TABLES })
    pool = await instrumentPg(new pg.Pool({ ...PG_CONNECTION, database, max: 4 }), recorder)
    return async () => {
      await pool.end()
    }
  })

  it('names exactly the primary keys each principal received: by id, range, join, alias, array rows, callbacks, streams, RETURNING, a bulk export, Kysely', async () => {
    const expected: Record<string, Record<string, string[]>> = {}
    const as = <T>(id: string, fn: () => Promise<T>) => runWithAuditContext({ principal: { id }, purpose: 'care', clientIp: '10.1.2.3' }, fn)

    const byId = await as('clerk.byid', () => pool.query<Row>('SELECT * FROM patients WHERE id = $1', [100042]))
    expected['clerk.byid'] = { 'patients': sorted(byId.rows.map((r) => r.id)) }

    const range = await as('clerk.range', () => pool.query<Row>('SELECT id, full_name, phone FROM patients WHERE id BETWEEN $1 AND $2', [100100, 100199]))
    expect(range.rows).toHaveLength(100)
    expected['clerk.range'] = { 'patients': sorted(range.rows.map((r) => r.id)) }

    const join = await as('doctor.join', () =>
      pool.query<{ pid: string; doctor_id: number; patient_id: string }>(
        `SELECT p.id AS pid, p.full_name, t.doctor_id, t.patient_id, t.diagnosis FROM patients p JOIN treatments t ON t.patient_id = p.id WHERE t.doctor_id = $1`,
        [7],
      ),
    )
    expect(join.rows.length).toBeGreaterThan(10)
    expected['doctor.join'] = {
      'patients': sorted(join.rows.map((r) => r.pid)),
      'public.treatments': sorted(join.rows.map((r) => JSON.stringify([String(r.doctor_id), String(r.patient_id)]))),
    }

    const arrayRows = await as('clerk.array', () => pool.query({ text: 'SELECT full_name, id FROM patients WHERE id < $1', values: [100011], rowMode: 'array' }))
    expected['clerk.array'] = { 'patients': sorted((arrayRows.rows as unknown[][]).map((r) => r[1])) }

    const viaCallback = await as('clerk.callback', () =>
      new Promise<pg.QueryResult<Row>>((resolve, reject) => pool.query<Row>('SELECT id, address FROM patients WHERE id IN (100001, 100002, 100003)', (err, res) => (err ? reject(err) : resolve(res)))),
    )
    expected['clerk.callback'] = { 'patients': sorted(viaCallback.rows.map((r) => r.id)) }

    // Streams: pg-query-stream and a raw pg-cursor on a checked-out client.
    const streamed: string[] = []
    await as('clerk.stream', async () => {
      const client = await pool.connect()
      try {
        const stream = client.query(new QueryStream('SELECT id, religion FROM patients WHERE id > $1 ORDER BY id', [102000], { batchSize: 250 }))
        for await (const row of stream) streamed.push(String((row as Row).id))
      } finally {
        client.release()
      }
    })
    expect(streamed).toHaveLength(PATIENT_COUNT - 2000)
    expected['clerk.stream'] = { 'patients': sorted(streamed) }

    const cursorRows: string[] = []
    await as('clerk.cursor', async () => {
      const client = await pool.connect()
      try {
        const cursor = client.query(new Cursor<Row>('SELECT id, phone FROM patients ORDER BY id LIMIT 120'))
        for (;;) {
          const rows = await cursor.read(50)
          if (rows.length === 0) break
          cursorRows.push(...rows.map((r) => String(r.id)))
        }
        await cursor.close()
      } finally {
        client.release()
      }
    })
    expected['clerk.cursor'] = { 'patients': sorted(cursorRows) }

    const returning = await as('clerk.insert', () =>
      pool.query<Row>(`INSERT INTO patients VALUES ($1, 'New Patient', '1990-05-05', '1 Rue Neuve', '+33 6 99999999', NULL) RETURNING id, full_name`, [900001]),
    )
    expected['clerk.insert'] = { 'patients': sorted(returning.rows.map((r) => r.id)) }

    const bulk = await as('exporter.bulk', () => pool.query<Row>('SELECT * FROM patients ORDER BY id'))
    expect(bulk.rows.length).toBe(PATIENT_COUNT + 1)
    expected['exporter.bulk'] = { 'patients': sorted(bulk.rows.map((r) => r.id)) }

    // A query builder on the instrumented pool is audited with no extra code.
    const db = new Kysely<{ patients: { id: string; full_name: string; phone: string } }>({ dialect: new PostgresDialect({ pool }) })
    const kyselyRows = await as('kysely.user', () => db.selectFrom('patients').select(['id', 'phone']).where('id', '>=', '100500').where('id', '<', '100520').execute())
    const kyselyRaw = await as('kysely.user', () => sql<Row>`SELECT id FROM patients WHERE id = ${100777}`.execute(db))
    expected['kysely.user'] = { 'patients': sorted([...kyselyRows.map((r) => r.id), ...kyselyRaw.rows.map((r) => r.id)]) }

    // Reads of tables nobody marked sensitive are not recorded.
    await as('clerk.doctors', () => pool.query('SELECT * FROM doctors'))

    await pipeline.settle()
    const stored = await pipeline.storedReads()
    for (const [principal, tables] of Object.entries(expected)) expect(idsByTable(stored, principal), principal).toEqual(tables)
    expect(stored.filter((r) => r.principal_id === 'clerk.doctors')).toEqual([])

    const join2 = stored.filter((r) => r.principal_id === 'doctor.join')
    expect(join2.map((r) => r.table_name).sort()).toEqual(['patients', 'public.treatments'])
    expect(join2.find((r) => r.table_name === 'patients')!.columns).toEqual(['id', 'full_name'])
    expect(join2.every((r) => r.read_id !== join2[0]!.read_id || r === join2[0])).toBe(true)
    const byIdEvent = stored.find((r) => r.principal_id === 'clerk.byid')!
    expect(byIdEvent).toMatchObject({ db_name: database, principal_type: 'user', purpose: 'care', record_ids_complete: true, row_count: 1 })
    expect(byIdEvent.columns).toEqual(['id', 'full_name', 'birth_date', 'address', 'phone', 'religion'])
    // Columns are recorded by their real names, not the query's aliases.
    expect(stored.find((r) => r.principal_id === 'clerk.array')!.columns).toEqual(['full_name', 'id'])
    // The stream was recorded batch by batch as it was consumed.
    expect(stored.filter((r) => r.principal_id === 'clerk.stream').length).toBeGreaterThanOrEqual(4)
    expect(stored.filter((r) => r.principal_id === 'clerk.cursor').sort((a, b) => a.producer_seq - b.producer_seq).map((r) => r.row_count)).toEqual([50, 50, 20])
    // No producer sequence number is missing or repeated.
    const seqs = stored.map((r) => r.producer_seq).sort((a, b) => a - b)
    expect(seqs).toEqual(seqs.map((_, i) => i + 1))
  })

  it('records each read under its own caller when a one-client pool queues them (a client handed over from another query)', async () => {
    const single = await instrumentPg(new pg.Pool({ ...PG_CONNECTION, database, max: 1 }), recorder)
    // The only client is opened in one principal's context...
    await runWithAuditContext({ principal: { id: 'opener' } }, () => single.query('SELECT id FROM patients WHERE id = 100001'))
    // ...then twelve callers queue for it at once.
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        runWithAuditContext({ principal: { id: `queued.${i}` } }, () => single.query('SELECT id, phone FROM patients WHERE id = $1', [100100 + i])),
      ),
    )
    await single.end()
    await pipeline.settle()
    const stored = await pipeline.storedReads()
    for (let i = 0; i < 12; i++) expect(idsByTable(stored, `queued.${i}`), `queued.${i}`).toEqual({ patients: [String(100100 + i)] })
    expect(idsByTable(stored, 'opener')).toEqual({ patients: ['100001'] })
  })

  it('records a read without the primary key with its row count and an incomplete flag, and refuses it in strict mode', async () => {
    const res = await runWithAuditContext({ principal: { id: 'clerk.nokey' } }, () => pool.query('SELECT full_name, phone FROM patients WHERE id BETWEEN 100001 AND 100025'))
    expect(res.rows).toHaveLength(25)
    // Same OID in both columns, but the key collides by name in object rows.
    await runWithAuditContext({ principal: { id: 'clerk.collide' } }, () => pool.query('SELECT p.id, p.full_name, t.patient_id AS id FROM patients p JOIN treatments t ON t.patient_id = p.id LIMIT 5'))

    const strictRecorder = createReadRecorder(pipeline.producer, { tables: TABLES, strict: true })
    const strictClient = new pg.Client({ ...PG_CONNECTION, database })
    await strictClient.connect()
    await instrumentPg(strictClient, strictRecorder)
    const refused = await thrown(runWithAuditContext({ principal: { id: 'clerk.strict' } }, () => strictClient.query('SELECT full_name FROM patients LIMIT 3')))
    expect(refused).toMatchObject({ code: 'RECORD_IDS_INCOMPLETE' })
    const noContext = await thrown(strictClient.query('SELECT id, full_name FROM patients LIMIT 3'))
    expect(noContext).toMatchObject({ code: 'CONTEXT_MISSING' })
    await strictClient.end()

    await pipeline.settle()
    const stored = await pipeline.storedReads()
    expect(stored.find((r) => r.principal_id === 'clerk.nokey')).toMatchObject({ record_ids: [], record_ids_complete: false, row_count: 25, columns: ['full_name', 'phone'] })
    const collide = stored.filter((r) => r.principal_id === 'clerk.collide' && r.table_name === 'patients')
    expect(collide).toMatchObject([{ record_ids_complete: false, row_count: 5 }])
    expect(stored.filter((r) => r.principal_id === 'clerk.strict')).toEqual([])
  })

  it('records a read outside any context as principal type system, only sensitive columns when listed, and refuses oversize reads', async () => {
    const scoped = createReadRecorder(pipeline.producer, { tables: { patients: { columns: ['religion', 'phone'] } }, maxRowsPerRead: 500 })
    const client = new pg.Client({ ...PG_CONNECTION, database })
    await client.connect()
    await instrumentPg(client, scoped)
    const system = await client.query<Row>('SELECT id, full_name, religion FROM patients WHERE id = 100003')
    expect(system.rows).toHaveLength(1)
    await runWithAuditContext({ principal: { id: 'clerk.names' } }, () => client.query('SELECT id, full_name FROM patients LIMIT 10'))
    const oversize = await thrown(runWithAuditContext({ principal: { id: 'clerk.oversize' } }, () => client.query('SELECT id, phone FROM patients LIMIT 501')))
    expect(oversize).toMatchObject({ code: 'READ_TOO_LARGE' })
    // The connection stays usable after a refused read.
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    await client.end()

    await pipeline.settle()
    const stored = await pipeline.storedReads()
    const sys = stored.filter((r) => r.principal_type === 'system')
    expect(sys).toMatchObject([{ principal_id: 'hook-test', record_ids: ['100003'], columns: ['religion'] }])
    expect(stored.filter((r) => r.principal_id === 'clerk.names')).toEqual([])
    expect(stored.filter((r) => r.principal_id === 'clerk.oversize')).toEqual([])
  })

  it('refuses bad configuration and bad context with coded errors', async () => {
    const client = new pg.Client({ ...PG_CONNECTION, database })
    await client.connect()
    try {
      const unknown = await thrown(instrumentPg(client, createReadRecorder(pipeline.producer, { tables: { 'public.no_such_table': {} } })))
      expect(unknown).toMatchObject({ code: 'HOOK_TABLE_UNKNOWN' })
      expect((unknown as Error).message).toContain('no_such_table')
      const noKey = await thrown(instrumentPg(client, createReadRecorder(pipeline.producer, { tables: { notes_without_key: {} } })))
      expect(noKey).toMatchObject({ code: 'HOOK_TABLE_UNKNOWN' })
      const badColumn = await thrown(instrumentPg(client, createReadRecorder(pipeline.producer, { tables: { patients: { columns: ['ssn'] } } })))
      expect(badColumn).toMatchObject({ code: 'HOOK_TABLE_UNKNOWN' })
      expect(() => createReadRecorder(pipeline.producer, { tables: {} })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error)
      expect(() => createReadRecorder(pipeline.producer, { tables: { patients: { policy: 'fail-sometimes' as 'fail-open' } } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error)
      let ran = false
      const badPrincipal = await thrown(async () => runWithAuditContext({ principal: { id: '' } }, async () => { ran = true }))
      expect(badPrincipal).toMatchObject({ code: 'CONTEXT_INVALID' })
      expect(ran).toBe(false)
    } finally {
      await client.end()
    }
  })
})
