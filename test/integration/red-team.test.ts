import { generateKeyPairSync } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { keyId, signCheckpoint, SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { linkEntries } from '../../consumers/chain.js'
import type { Finding, VerificationReport } from '../../integrity/report.js'
import { HASH_SQL } from '../../store/access-log-columns.js'
import type { Store } from '../../store/store.js'
import { makeEvent } from '../helpers/events.js'
import { buildSignedLog, type SignedLog } from '../helpers/signed-log.js'

/**
 * The red-team suite: each attack is carried out for real — ClickHouse
 * mutations and inserts on the embedded engine, edits of the checkpoint log
 * file — and verify must report exactly the chain, the sequence number and
 * the kind of damage, in both modes. The in-db mode also checks the query
 * views, which copy rows on insert only, so an attack on access_log is also a
 * view_mismatch there at the rows it touched; that is the only extra finding
 * allowed, and only inside the attacked range.
 *
 * Layout: chains A and B, 40 rows each, a signed checkpoint every 10 rows
 * (seqs 10, 20, 30, 40). Attacks hit chain A; chain B must stay clean.
 */
const A = 'orders/0'
const B = 'orders/1'
const MODES = ['in-db', 'independent'] as const

async function signedLog(): Promise<SignedLog> {
  return buildSignedLog({ chains: [A, B], rowsPerChain: 40, checkpointEvery: 10 })
}

const mutate = (store: Store, sql: string) => store.client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } })
const where = (chainId: string, cond: string) => `chain_id = '${chainId}' AND ${cond}`
const DERIVED = new Set(['view_mismatch'])
const located = (findings: Finding[]) => findings.filter((f) => !DERIVED.has(f.kind)).map((f) => [f.chain_id, f.seq, f.kind])

/**
 * Verifies in both modes and checks: not ok; the findings other than view
 * mismatches are exactly `expected`; view mismatches only in chain A within
 * `viewSeqs` (in-db only: the independent mode does not read the views).
 */
async function expectFound(log: SignedLog, expected: [string, number, string][], viewSeqs: [number, number] | null = null): Promise<VerificationReport[]> {
  const reports: VerificationReport[] = []
  for (const mode of MODES) {
    const report = await log.verify(mode)
    reports.push(report)
    expect(report.ok, `${mode}: ${JSON.stringify(report.findings)}`).toBe(false)
    expect(located(report.findings), `${mode}: ${JSON.stringify(report.findings.slice(0, 12))}`).toEqual(expected)
    const views = report.findings.filter((f) => f.kind === 'view_mismatch')
    if (mode === 'independent' || !viewSeqs) expect(views, mode).toEqual([])
    else for (const v of views) expect([v.chain_id, v.seq >= viewSeqs[0] && v.seq <= viewSeqs[1]], `${mode} ${JSON.stringify(v)}`).toEqual([A, true])
  }
  return reports
}

describe('red team: every attack is found, at its chain and seq, in both modes', () => {
  it('an untouched log verifies clean in both modes, every chain matched to its newest checkpoint', async () => {
    const log = await signedLog()
    for (const mode of MODES) {
      const report = await log.verify(mode)
      expect(report.findings, mode).toEqual([])
      expect(report.ok, mode).toBe(true)
      expect(report.rows_verified).toBe(80)
      expect(report.checkpoints).toMatchObject({ total: 8, valid: 8 })
      expect(report.chains.map((c) => [c.chain_id, c.first_seq, c.last_seq, c.checkpoint?.index, c.checkpoint?.seq])).toEqual([
        [A, 1, 40, 4, 40],
        [B, 1, 40, 4, 40],
      ])
    }
  })

  it.each([
    ['principal_id', "'mallory'"],
    ['record_ids', "['999']"],
    ['occurred_at', "toDateTime64('2020-01-01 00:00:00', 6, 'UTC')"],
    ['table_name', "'other_table'"],
  ])('1. one column of one row changed (%s): hash_mismatch at that row', async (column, value) => {
    const log = await signedLog()
    await mutate(log.store, `ALTER TABLE ${log.store.table('access_log')} UPDATE ${column} = ${value} WHERE ${where(A, 'seq = 17')}`)
    await expectFound(log, [[A, 17, 'hash_mismatch']], [17, 17])
  })

  it('2. one column changed and that row re-hashed: rewritten_row at that row', async () => {
    const log = await signedLog()
    const t = log.store.table('access_log')
    await mutate(log.store, `ALTER TABLE ${t} UPDATE principal_id = 'mallory' WHERE ${where(A, 'seq = 17')}`)
    await mutate(log.store, `ALTER TABLE ${t} UPDATE hash = ${HASH_SQL} WHERE ${where(A, 'seq = 17')}`)
    await expectFound(log, [[A, 17, 'rewritten_row']], [17, 17])
  })

  it('3. a middle row deleted: deleted_rows at its seq (and its event is a hole in its producer)', async () => {
    const log = await signedLog()
    await mutate(log.store, `ALTER TABLE ${log.store.table('access_log')} DELETE WHERE ${where(A, 'seq = 17')}`)
    await expectFound(
      log,
      [
        [A, 17, 'deleted_rows'],
        // Chain A's producer numbered its events like the chain: event 17 is gone.
        [A, 18, 'producer_gap'],
      ],
      [17, 17],
    )
  })

  it('4. a forged row inserted between two rows: inserted_row at its seq', async () => {
    const log = await signedLog()
    // A well-formed row: it links to row 17 and its own hash is right.
    const forged = linkEntries(log.headAt(A, 17), [{ event: makeEvent({ principal_id: 'alibi' }), offset: 9999n, schemaVersion: 1 }], log.ingestedAt)
    await log.store.insertRowBinary('access_log', forged.rows, forged.count)
    await expectFound(log, [[A, 18, 'inserted_row']])
  })

  it('5. two rows swapped: reordered at the first, each with its seq edited', async () => {
    const log = await signedLog()
    const t = log.store.table('access_log')
    const tmp = log.store.table('swap_tmp')
    await log.store.client.command({ query: `CREATE TABLE ${tmp} AS ${t}` })
    // (A subquery: an alias named seq would also replace seq in the WHERE.)
    await log.store.client.command({
      query: `INSERT INTO ${tmp} SELECT * REPLACE (if(seq = 17, toUInt64(18), toUInt64(17)) AS seq) FROM (SELECT * FROM ${t} WHERE ${where(A, 'seq IN (17, 18)')})`,
    })
    await mutate(log.store, `ALTER TABLE ${t} DELETE WHERE ${where(A, 'seq IN (17, 18)')}`)
    await log.store.client.command({ query: `INSERT INTO ${t} SELECT * FROM ${tmp}` })
    await expectFound(
      log,
      [
        [A, 17, 'reordered'],
        [A, 17, 'hash_mismatch'],
        [A, 18, 'hash_mismatch'],
      ],
      [17, 18],
    )
  })

  it('6. a duplicate row: duplicate_row (and its producer seq twice) at its seq', async () => {
    const log = await signedLog()
    const t = log.store.table('access_log')
    await log.store.client.command({ query: `INSERT INTO ${t} SELECT * FROM ${t} WHERE ${where(A, 'seq = 17')}` })
    await expectFound(log, [
      [A, 17, 'duplicate_row'],
      [A, 17, 'producer_duplicate'],
    ])
  })

  it('7. the newest rows deleted: truncated at the first missing seq, against the newest checkpoint', async () => {
    const log = await signedLog()
    await mutate(log.store, `ALTER TABLE ${log.store.table('access_log')} DELETE WHERE ${where(A, 'seq > 33')}`)
    const [report] = await expectFound(log, [[A, 34, 'truncated']], [34, 40])
    expect(report!.findings.find((f) => f.kind === 'truncated')!.detail).toContain('vouches for seq 40')
  })

  it('8. every row after some point rewritten with consistent hashes: checkpoint_mismatch at the first checkpoint after it', async () => {
    const log = await signedLog()
    const rows = log.rows.get(A)!
    // From seq 25 on, rows are rebuilt with one edit and every hash recomputed:
    // the chain alone is perfectly consistent.
    const entries = rows.slice(24).map((r, k) => ({ event: k === 0 ? { ...r.event, principal_id: 'mallory' } : r.event, offset: r.offset, schemaVersion: 1 }))
    const rewritten = linkEntries(log.headAt(A, 24), entries, log.ingestedAt)
    await mutate(log.store, `ALTER TABLE ${log.store.table('access_log')} DELETE WHERE ${where(A, 'seq >= 25')}`)
    await log.store.insertRowBinary('access_log', rewritten.rows, rewritten.count)
    const [report] = await expectFound(log, [[A, 30, 'checkpoint_mismatch']], [25, 40])
    expect(report!.findings.find((f) => f.kind === 'checkpoint_mismatch')!.detail).toContain('after seq 20')
  })

  it('9a. a checkpoint edited in the log: checkpoint_invalid at its chain and seq', async () => {
    const log = await signedLog()
    const lines = readFileSync(log.logPath, 'utf8').trimEnd().split('\n')
    const i = lines.findIndex((l) => JSON.parse(l).chain_id === A && JSON.parse(l).index === 2)
    const cp = SignedCheckpoint.parse(JSON.parse(lines[i]!))
    lines[i] = JSON.stringify({ ...cp, hash: 'e'.repeat(64) })
    writeFileSync(log.logPath, `${lines.join('\n')}\n`)
    await expectFound(log, [[A, 20, 'checkpoint_invalid']])
  })

  it('9b. a checkpoint forged with another key: checkpoint_invalid naming the other key', async () => {
    const log = await signedLog()
    const attacker = generateKeyPairSync('ed25519')
    const lines = readFileSync(log.logPath, 'utf8').trimEnd().split('\n')
    const i = lines.findIndex((l) => JSON.parse(l).chain_id === A && JSON.parse(l).index === 3)
    const cp = SignedCheckpoint.parse(JSON.parse(lines[i]!))
    const forged = signCheckpoint({ ...cp, hash: 'e'.repeat(64), key_id: keyId(attacker.publicKey) }, attacker.privateKey)
    lines[i] = JSON.stringify(forged)
    writeFileSync(log.logPath, `${lines.join('\n')}\n`)
    const [report] = await expectFound(log, [[A, 30, 'checkpoint_invalid']])
    expect(report!.findings[0]!.detail).toContain('another key')
  })

  it('10. the checkpoint log rolled back while the table is intact: found against the Kafka copy', async () => {
    const log = await signedLog()
    const lines = readFileSync(log.logPath, 'utf8').trimEnd().split('\n')
    // The file holds A's four checkpoints, then B's: drop B's newest two.
    const removed = lines.slice(-2).map((l) => SignedCheckpoint.parse(JSON.parse(l)))
    expect(removed.map((c) => [c.chain_id, c.index])).toEqual([
      [B, 3],
      [B, 4],
    ])
    writeFileSync(log.logPath, `${lines.slice(0, -2).join('\n')}\n`)
    const [report] = await expectFound(log, [[B, 30, 'checkpoint_log_rolled_back']])
    expect(report!.findings[0]!.detail).toContain('#3..#4')
  })

  it('11. a producer event that never arrived: producer_gap at the next event, naming the missing seq', async () => {
    // Chain A's producer skips seq 8: the event was produced and lost before the store.
    const log = await buildSignedLog({ chains: [A, B], rowsPerChain: 40, checkpointEvery: 10, event: (chainId, i) => (chainId === A && i >= 7 ? { producer_seq: i + 2 } : {}) })
    const reports = await expectFound(log, [[A, 8, 'producer_gap']])
    for (const r of reports) expect(r.findings[0]!.producer).toMatchObject({ from_seq: 8, to_seq: 8 })
  })

  it('11b. a producer hole younger than the grace window is in flight, not a finding', async () => {
    const log = await buildSignedLog({
      chains: [A],
      rowsPerChain: 20,
      checkpointEvery: 10,
      ingestedAt: Date.now() * 1000,
      event: (_chainId, i) => (i >= 7 ? { producer_seq: i + 2 } : {}),
    })
    for (const mode of MODES) {
      const report = await log.verify(mode)
      expect(report.ok, mode).toBe(true)
      expect(report.producers.in_flight).toMatchObject([{ from_seq: 8, to_seq: 8 }])
    }
  })
})
