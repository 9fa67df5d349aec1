import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keyId } from '../../checkpoints/checkpoint.js'
import { uuidv7 } from '../../common/uuid.js'
import { ensureTopics } from '../../consumers/topics.js'
import type { DbAuditEvent } from '../../schemas/db-audit-event.js'
import { createDbAuditBatchCodec, sideTopic } from '../../schemas/side-batch.js'
import { DB_AUDIT_TABLE } from '../../store/side-tables.js'
import type { Store } from '../../store/store.js'
import { testDeployment } from '../helpers/ingest.js'
import { freshTopic, testKafka } from '../helpers/kafka.js'
import { testSigningKey } from '../helpers/producer-trust.js'
import { openTestStore } from '../helpers/store.js'
import { loadCheckpoints } from '../../integrity/checkpoint-sources.js'
import { formatReport } from '../../integrity/report.js'
import { verifyStore } from '../../integrity/verify-store.js'

/**
 * The side-stream chains (database-audit entries here; alerts take the same
 * path): stored only when a trusted key signed them, hash-chained like
 * reads, and taken up from a signed checkpoint by re-deriving from Kafka, so
 * a restart never duplicates a row and a row edited in the store stops the
 * writer.
 */
const kafka = testKafka()
const codec = createDbAuditBatchCodec()
const SERVICE = 'registry'
let readerSeq = 0

/** The reader's next entry; a forged one (`own: false`) takes no place in its sequence. */
function entry(statement: string, own = true): DbAuditEvent {
  if (own) readerSeq += 1
  return {
    event_id: uuidv7(),
    source_kind: 'pgaudit',
    logged_at: Date.UTC(2026, 11, 5, 10) * 1000 + readerSeq,
    db_name: 'registry',
    db_user: 'app',
    client_addr: '127.0.0.1',
    application_name: 'psql',
    db_session: String(4000 + readerSeq),
    command: 'SELECT',
    object_name: 'public.applicants',
    statement,
    statement_truncated: false,
    statement_digest: createHash('sha256').update(statement).digest('hex'),
    log_file: '/var/log/postgresql/postgresql.csv',
    log_offset: readerSeq * 300,
    reader_seq: readerSeq,
  }
}

describe('side chain writer (db_audit_log)', () => {
  let topic: string
  let side: string
  const producer = kafka.producer()

  beforeAll(async () => {
    topic = await freshTopic(kafka, 1)
    await ensureTopics(kafka, { topic, partitions: 1, sideStreams: true })
    side = sideTopic(topic, 'db-audit')
    await producer.connect()
  })
  afterAll(async () => {
    await producer.disconnect()
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [side, sideTopic(topic, 'alert')] }).catch(() => {})
    await admin.disconnect()
  })

  const send = async (events: DbAuditEvent[], key: KeyObject = testSigningKey(SERVICE), service = SERVICE) => {
    const value = codec.encode(side, { keyId: keyId(createPublicKey(key)), producerId: 'reader-1', service }, events, key)
    await producer.send({ topic: side, messages: [{ value }] })
  }

  const rows = async (store: Store) =>
    store.queryRows<{ s: string; ok: number; linked: number; statement: string }>(
      `SELECT toString(seq) AS s, hash = ${DB_AUDIT_TABLE.hashSql} AS ok,
              prev_hash = ifNull(lagInFrame(hash) OVER (ORDER BY seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), prev_hash) AS linked, statement
       FROM ${store.table('db_audit_log')} ORDER BY seq`,
    )
  const until = async (store: Store, n: number) => {
    const deadline = Date.now() + 60_000
    for (;;) {
      const [r] = await store.queryRows<{ n: string }>(`SELECT toString(count()) AS n FROM ${store.table('db_audit_log')}`).catch(() => [{ n: '0' }])
      if (Number(r?.n) >= n) return
      if (Date.now() > deadline) throw new Error(`db_audit_log holds ${r?.n} rows, not ${n}, after 60 s`)
      await new Promise((r2) => setTimeout(r2, 200))
    }
  }

  it('stores signed batches as one chain, refuses an untrusted key, and a restart from no checkpoint re-derives without duplicating', async () => {
    const store = await openTestStore()
    const deployment = testDeployment(kafka, topic)
    await send([entry('SELECT * FROM applicants WHERE id = 1'), entry('SELECT * FROM applicants WHERE id = 2')])
    // A key nobody trusts, claiming the trusted service.
    const stranger = generateKeyPairSync('ed25519')
    await send([entry('SELECT * FROM applicants -- forged', false)], stranger.privateKey)
    // A trusted key signing for another service.
    await send([entry('SELECT * FROM applicants -- other service', false)], testSigningKey('billing'))
    await send([entry('SELECT * FROM applicants WHERE id = 3')])

    const ingest = await deployment.ingest({ store, topic, groupId: `g-${uuidv7()}`, sideStreams: true })
    await until(store, 3)
    await new Promise((r) => setTimeout(r, 1000))
    let stored = await rows(store)
    expect(stored.map((r) => r.statement)).toEqual(['SELECT * FROM applicants WHERE id = 1', 'SELECT * FROM applicants WHERE id = 2', 'SELECT * FROM applicants WHERE id = 3'])
    expect(stored.map((r) => [Number(r.ok), Number(r.linked)])).toEqual(stored.map(() => [1, 1]))
    const stats = ingest.stats().side!['db-audit']!
    expect(stats.refused).toEqual({ PRODUCER_KEY_UNKNOWN: 1, PRODUCER_NOT_AUTHORIZED: 1 })
    await ingest.stop()

    // verify checks the side chain against the checkpoint the stop signed.
    const checkpointsOf = (d: typeof deployment) => loadCheckpoints({ database: store.database, publicKeyPath: d.publicKeyPath, logPath: d.logPath, topic: { kafka, name: d.checkpointTopic } })
    const clean = await verifyStore(store, { checkpoints: await checkpointsOf(deployment) })
    expect(clean.findings).toEqual([])
    expect(clean.side_chains).toEqual([{ table: 'db_audit_log', chain_id: `${side}/0`, rows: 3, first_seq: 1, last_seq: 3, signed_through: 3 }])
    // The three entries name sessions no hooked read ran on: all unmatched.
    expect(clean.cross_check).toEqual([{ db_name: 'registry', entries: 3, unmatched: 3 }])
    expect(formatReport(clean)).toContain('UNAUDITED: database registry: 3 database-side reads, 3 unmatched')

    // No checkpoint at all (another deployment): the chain is re-derived from
    // the first message and every stored row confirmed, none inserted twice.
    await send([entry('SELECT * FROM applicants WHERE id = 4')])
    const second = testDeployment(kafka, topic)
    const again = await second.ingest({ store, topic, groupId: `g-${uuidv7()}`, sideStreams: true })
    await until(store, 4)
    await new Promise((r) => setTimeout(r, 1000))
    stored = await rows(store)
    expect(stored.map((r) => r.s)).toEqual(['1', '2', '3', '4'])
    expect(stored.map((r) => [Number(r.ok), Number(r.linked)])).toEqual(stored.map(() => [1, 1]))
    expect(again.stats().side!['db-audit']!.confirmed).toBe(3)
    await again.stop()

    // A statement edited in the store (and its hash recomputed, so the row
    // re-hashes): the next take-up derives another row from Kafka and stops.
    await store.client.command({
      query: `ALTER TABLE ${store.table('db_audit_log')} UPDATE statement = 'SELECT 1' WHERE seq = 2 SETTINGS mutations_sync = 1`,
    })
    await store.client.command({ query: `ALTER TABLE ${store.table('db_audit_log')} UPDATE hash = ${DB_AUDIT_TABLE.hashSql} WHERE seq = 2 SETTINGS mutations_sync = 1` })
    // The checkpoint topic also holds the other deployment's checkpoints
    // (another key): reported as checkpoint_invalid, not this test's matter.
    const rowFindings = (r: Awaited<ReturnType<typeof verifyStore>>) => r.findings.filter((f) => !f.kind.startsWith('checkpoint_')).map((f) => [f.kind, f.seq])
    const damaged = await verifyStore(store, { checkpoints: await checkpointsOf(deployment) })
    expect(rowFindings(damaged)).toEqual([['broken_link', 3]])
    // The checkpoint vouches for seq 3, whose prev_hash still names the old row 2.
    await store.client.command({ query: `ALTER TABLE ${store.table('db_audit_log')} DELETE WHERE seq = 4 SETTINGS mutations_sync = 1` })
    const cut = await verifyStore(store, { checkpoints: await checkpointsOf(second) })
    expect(rowFindings(cut)).toEqual([['broken_link', 3], ['truncated', 4]])
    const third = await testDeployment(kafka, topic).ingest({ store, topic, groupId: `g-${uuidv7()}`, sideStreams: true })
    const fatal = (await Promise.race([third.failed, new Promise((r) => setTimeout(() => r('no failure in 60 s'), 60_000))])) as { code?: string }
    expect(fatal.code).toBe('CHAIN_UNTRUSTED')
    await third.stop()
  })

  it('a genuine signed batch sent twice is stored twice, and verify names the repeated reader_seq; a lost one is a gap', async () => {
    const replayTopic = await freshTopic(kafka, 1)
    await ensureTopics(kafka, { topic: replayTopic, partitions: 1, sideStreams: true })
    const replaySide = sideTopic(replayTopic, 'db-audit')
    const store = await openTestStore()
    const deployment = testDeployment(kafka, replayTopic)
    readerSeq = 0
    const key = testSigningKey(SERVICE)
    const message = (events: DbAuditEvent[]) => codec.encode(replaySide, { keyId: keyId(createPublicKey(key)), producerId: 'reader-2', service: SERVICE }, events, key)
    const first = message([entry('SELECT * FROM applicants WHERE id = 7')])
    // The attacker copies the first message and sends it again; entry 2 is never sent.
    entry('SELECT * FROM applicants WHERE id = 8')
    await producer.send({ topic: replaySide, messages: [{ value: first }, { value: first }, { value: message([entry('SELECT * FROM applicants WHERE id = 9')]) }] })
    const ingest = await deployment.ingest({ store, topic: replayTopic, groupId: `g-${uuidv7()}`, sideStreams: true })
    await until(store, 3)
    await ingest.stop()
    const report = await verifyStore(store, { checkpoints: await loadCheckpoints({ database: store.database, publicKeyPath: deployment.publicKeyPath, logPath: deployment.logPath, topic: { kafka, name: deployment.checkpointTopic } }) })
    expect(report.findings.map((f) => [f.kind, f.producer])).toEqual([
      ['producer_gap', { producer_id: 'reader-2', from_seq: 1, to_seq: 3 }],
      ['producer_duplicate', { producer_id: 'reader-2', from_seq: 1, to_seq: 3 }],
    ])
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [replaySide, sideTopic(replayTopic, 'alert')] }).catch(() => {})
    await admin.disconnect()
  })
})
