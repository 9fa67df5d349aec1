import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { checkpointDigest, GENESIS_CHECKPOINT, keyId, signCheckpoint, type SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { analyseCheckpoints, type CheckpointSource } from '../../integrity/check-checkpoints.js'
import { assembleFacts, FactsRequestSchema, type FactsRequest } from '../../integrity/facts.js'
import { formatReport } from '../../integrity/report.js'
import { verifyLog, type VerifyOptions } from '../../integrity/verify.js'

/**
 * The verifier's trust steps on facts given by hand (no store, no Kafka):
 * unsigned tails, the checkpoint high-water mark and its regression, and
 * both checkpoint copies empty while the store holds rows.
 */
const real = generateKeyPairSync('ed25519')
const key = { publicKey: real.publicKey, keyId: keyId(real.publicKey) }

function series(chainId: string, seqs: number[]): SignedCheckpoint[] {
  const out: SignedCheckpoint[] = []
  let prev = GENESIS_CHECKPOINT
  seqs.forEach((seq, i) => {
    const cp = signCheckpoint(
      {
        v: 1,
        database: 'db',
        chain_id: chainId,
        index: i + 1,
        seq,
        hash: seq.toString(16).padStart(64, '0'),
        kafka_offset: String(seq - 1),
        signed_at: '2026-12-01T00:00:00.000Z',
        prev,
        key_id: key.keyId,
      },
      real.privateKey,
    )
    out.push(cp)
    prev = checkpointDigest(cp)
  })
  return out
}

const file = (cps: SignedCheckpoint[], missing = false): CheckpointSource => ({ kind: 'file', where: 'checkpoints.jsonl', missing, entries: cps.map((checkpoint, i) => ({ at: `line ${i + 1}`, checkpoint })), unreadable: [] })

/** A store holding chain t/0 seq 1..last whose rows match every checkpoint's hash. */
function collectFor(last: number) {
  const requests: FactsRequest[] = []
  const collect = async (request: FactsRequest) => {
    requests.push(request)
    const seqs = request.checkpoint_seqs['t/0'] ?? []
    return assembleFacts({
      chains: [{ chain_id: 't/0', rows: last, first_seq: 1, last_seq: last, head_hash: 'ab'.repeat(32) }],
      windows: [],
      suspectsTruncated: false,
      checkpointRows: seqs.filter((s) => s <= last).map((seq) => ({ chain_id: 't/0', seq, hash: seq.toString(16).padStart(64, '0'), self_ok: true })),
      producers: { breaks: [], truncated: false, checked: 0, through: {} },
      viewFindings: [],
      viewsChecked: false,
      warnings: [],
    })
  }
  return { collect, requests }
}

async function run(last: number, cps: SignedCheckpoint[], options: Partial<VerifyOptions> = {}, missing = false) {
  const analysis = analyseCheckpoints({ file: file(cps, missing), topic: null }, key, 'db')
  const { collect, requests } = collectFor(last)
  const outcome = await verifyLog(collect, 'db', { checkpoints: { analysis, sources: { file: 'checkpoints.jsonl', topic: null, key_id: key.keyId } }, ...options })
  return { report: outcome.report, requests }
}

describe('verify trust steps', () => {
  it('rows after the newest matching checkpoint are unsigned, counted and shown, and not a finding', async () => {
    const { report } = await run(45, series('t/0', [10, 20, 40]))
    expect(report.ok).toBe(true)
    expect(report.chains[0]).toMatchObject({ checkpoint: { index: 3, seq: 40 }, unsigned_from_seq: 41, unsigned_rows: 5 })
    expect(formatReport(report)).toContain('rows 41..45 UNSIGNED (newer than the newest checkpoint)')
  })

  it('a chain signed through its head has no unsigned rows; one with no checkpoint is unsigned from its first row', async () => {
    expect((await run(40, series('t/0', [10, 40]))).report.chains[0]).toMatchObject({ unsigned_from_seq: null, unsigned_rows: 0 })
    const { report } = await run(7, series('t/1', [10]))
    expect(report.chains[0]).toMatchObject({ unsigned_from_seq: 1, unsigned_rows: 7 })
  })

  it('checkpoint_high is the highest valid index per chain, with its seq', async () => {
    const { report } = await run(45, [...series('t/0', [10, 20, 40]), ...series('t/1', [5])])
    expect(report.checkpoint_high).toEqual({ 't/0': { index: 3, seq: 40 }, 't/1': { index: 1, seq: 5 } })
  })

  it('valid checkpoints below the recorded high-water mark are checkpoint_regressed, naming both; at or above it nothing', async () => {
    const cps = series('t/0', [10, 20])
    const { report } = await run(45, cps, { checkpointHigh: { 't/0': { index: 3, seq: 40 }, 't/9': { index: 1, seq: 5 } } })
    expect(report.findings.map((f) => [f.chain_id, f.seq, f.kind])).toEqual([
      ['t/0', 21, 'checkpoint_regressed'],
      ['t/9', 1, 'checkpoint_regressed'],
    ])
    expect(report.findings[0]!.detail).toContain('#3 (seq 40)')
    expect(report.findings[0]!.detail).toContain('now #2 (seq 20)')
    expect((await run(45, cps, { checkpointHigh: { 't/0': { index: 2, seq: 20 } } })).report.findings).toEqual([])
  })

  it('no checkpoint of this database anywhere while the store holds rows: checkpoint_copy_missing per chain at its first row', async () => {
    const { report } = await run(12, [], {}, true)
    expect(report.findings.map((f) => [f.chain_id, f.seq, f.kind])).toEqual([['t/0', 1, 'checkpoint_copy_missing']])
  })

  it('without kafkaLog: no offsets are asked of the store, and the report warns they were not checked', async () => {
    const { report, requests } = await run(12, series('t/0', [10]))
    expect(requests.map((r) => [r.offsets, r.find_events])).toEqual([[false, null]])
    expect(report.kafka_checked).toBe(false)
    expect(report.warnings.join('\n')).toContain('chain ids and Kafka offsets NOT checked')
  })

  it('the owner socket validates the new request fields (find_events bounded)', () => {
    const base = { mode: 'in-db', views: false, workers: 1, maxSuspects: 10, checkpoint_seqs: {}, from_seq: null, producer_through: null, offsets: true, find_events: null }
    expect(FactsRequestSchema.parse(base)).toEqual(base)
    expect(() => FactsRequestSchema.parse({ ...base, find_events: { 't/0': ['x'.repeat(65)] } })).toThrow()
    expect(() => FactsRequestSchema.parse({ ...base, offsets: undefined })).toThrow()
  })
})
