import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { checkpointDigest, GENESIS_CHECKPOINT, keyId, signCheckpoint, type SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { analyseCheckpoints, type CheckpointSource } from '../../integrity/check-checkpoints.js'

const real = generateKeyPairSync('ed25519')
const attacker = generateKeyPairSync('ed25519')
const key = { publicKey: real.publicKey, keyId: keyId(real.publicKey) }

/** Checkpoints #1..#n of one chain, every 10 seqs, signed with `signer`. */
function series(chainId: string, n: number, signer = real): SignedCheckpoint[] {
  const out: SignedCheckpoint[] = []
  let prev = GENESIS_CHECKPOINT
  for (let index = 1; index <= n; index++) {
    const body = {
      v: 1 as const,
      database: 'db',
      chain_id: chainId,
      index,
      seq: index * 10,
      hash: index.toString(16).padStart(64, 'a'),
      kafka_offset: String(index * 10 - 1),
      signed_at: new Date(Date.UTC(2026, 10, 27, 12, 0, index)).toISOString(),
      prev,
      key_id: keyId(signer.publicKey),
    }
    const cp = signCheckpoint(body, signer.privateKey)
    out.push(cp)
    prev = checkpointDigest(cp)
  }
  return out
}

const source = (kind: 'file' | 'topic', cps: SignedCheckpoint[], missing = false): CheckpointSource => ({
  kind,
  where: kind === 'file' ? 'checkpoints.jsonl' : 'topic t.checkpoints',
  missing,
  entries: cps.map((checkpoint, i) => ({ at: `${kind === 'file' ? 'line' : 'offset'} ${i + 1}`, checkpoint })),
  unreadable: [],
})

const kinds = (cps: { file: CheckpointSource | null; topic: CheckpointSource | null }) =>
  analyseCheckpoints(cps, key, 'db').findings.map((f) => [f.chain_id, f.seq, f.kind])

describe('analyseCheckpoints', () => {
  it('trusts a clean series held identically by both copies', () => {
    const cps = [...series('t/0', 5), ...series('t/1', 3)]
    const a = analyseCheckpoints({ file: source('file', cps), topic: source('topic', cps) }, key, 'db')
    expect(a.findings).toEqual([])
    expect(a.valid).toBe(8)
    expect(a.trusted.get('t/0')!.map((c) => c.index)).toEqual([1, 2, 3, 4, 5])
  })

  it('an edited checkpoint is invalid at its chain and seq, and not trusted', () => {
    const cps = series('t/0', 5)
    cps[2] = { ...cps[2]!, hash: 'f'.repeat(64) }
    const a = analyseCheckpoints({ file: source('file', cps), topic: null }, key, 'db')
    expect(a.findings.map((f) => [f.chain_id, f.seq, f.kind])).toEqual([['t/0', 30, 'checkpoint_invalid']])
    expect(a.trusted.get('t/0')!.map((c) => c.index)).toEqual([1, 2, 4, 5])
  })

  it('a checkpoint signed by another key is invalid and says so', () => {
    const forged = series('t/0', 5, attacker)
    const cps = [...series('t/0', 4), forged[4]!]
    const a = analyseCheckpoints({ file: source('file', cps), topic: null }, key, 'db')
    expect(a.findings.map((f) => [f.seq, f.kind])).toEqual([[50, 'checkpoint_invalid']])
    expect(a.findings[0]!.detail).toContain('another key')
  })

  it('a removed middle checkpoint breaks the checkpoint chain at the next one', () => {
    const cps = series('t/0', 5).filter((c) => c.index !== 3)
    expect(kinds({ file: source('file', cps), topic: null })).toEqual([['t/0', 40, 'checkpoint_chain_broken']])
  })

  it('a file missing its newest lines is a rollback against the Kafka copy, at the first missing checkpoint', () => {
    const cps = series('t/0', 6)
    expect(kinds({ file: source('file', cps.slice(0, 4)), topic: source('topic', cps) })).toEqual([['t/0', 50, 'checkpoint_log_rolled_back']])
  })

  it('a deleted file is a missing copy, per chain, at the first checkpoint it lacks', () => {
    const cps = [...series('t/0', 2), ...series('t/1', 3)]
    expect(kinds({ file: source('file', [], true), topic: source('topic', cps) })).toEqual([
      ['t/0', 10, 'checkpoint_copy_missing'],
      ['t/1', 10, 'checkpoint_copy_missing'],
    ])
  })

  it('an emptied file (or one holding other databases only) is a missing copy too', () => {
    const cps = series('t/0', 2)
    const other = series('t/0', 2).map((c) => ({ ...c, database: 'other' }))
    expect(kinds({ file: source('file', other), topic: source('topic', cps) })).toEqual([['t/0', 10, 'checkpoint_copy_missing']])
    expect(analyseCheckpoints({ file: source('file', []), topic: source('topic', cps) }, key, 'db').findings[0]!.detail).toContain('holds no checkpoint of this database')
  })

  it('a deleted or emptied Kafka copy while the file holds checkpoints is a missing copy, not lag', () => {
    const cps = series('t/0', 3)
    expect(kinds({ file: source('file', cps), topic: source('topic', [], true) })).toEqual([['t/0', 10, 'checkpoint_copy_missing']])
    expect(kinds({ file: source('file', cps), topic: source('topic', []) })).toEqual([['t/0', 10, 'checkpoint_copy_missing']])
  })

  it('both copies empty is no finding here: verify judges it against the rows the store holds', () => {
    expect(kinds({ file: source('file', [], true), topic: source('topic', [], true) })).toEqual([])
  })

  it('the Kafka copy lagging the file is not damage (the writer publishes after fsync), only a warning', () => {
    const cps = series('t/0', 6)
    const a = analyseCheckpoints({ file: source('file', cps), topic: source('topic', cps.slice(0, 5)) }, key, 'db')
    expect(a.findings).toEqual([])
    expect(a.warnings.join()).toContain('1 checkpoints')
  })

  it('two valid but different checkpoints under one index conflict', () => {
    const a = series('t/0', 3)
    const b = series('t/0', 3).map((c) => (c.index === 3 ? signCheckpoint({ ...c, seq: 31 }, real.privateKey) : c))
    expect(kinds({ file: source('file', a), topic: source('topic', b) })).toEqual([['t/0', 30, 'checkpoint_conflict']])
  })

  it('ignores other databases and reports unreadable lines', () => {
    const other = series('t/0', 2).map((c) => ({ ...c, database: 'other' }))
    const src = { ...source('file', other), unreadable: [{ at: 'line 3', problem: 'not JSON' }] }
    const a = analyseCheckpoints({ file: src, topic: null }, key, 'db')
    expect(a.total).toBe(0)
    expect(a.findings.map((f) => f.kind)).toEqual(['checkpoint_unreadable'])
  })
})
