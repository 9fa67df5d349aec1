import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { formatCheckpointLine, GENESIS_CHECKPOINT, signCheckpoint, type SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { generateKeyFiles, loadSigningKey, type SigningKey } from '../../checkpoints/keys.js'
import { readSignedThrough } from '../../cli/signed-through.js'

const dir = mkdtempSync(join(tmpdir(), 'readtrail-signed-through-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
generateKeyFiles(join(dir, 'checkpoint.key'))
generateKeyFiles(join(dir, 'forger.key'))
const key = loadSigningKey(join(dir, 'checkpoint.key'))
const forger = loadSigningKey(join(dir, 'forger.key'))

function checkpoint(chain: string, index: number, seq: number, by: SigningKey = key, database = 'audit'): SignedCheckpoint {
  return signCheckpoint(
    { v: 1, database, chain_id: chain, index, seq, hash: 'ab'.repeat(32), kafka_offset: String(seq), signed_at: '2026-11-27T12:00:00.000Z', prev: GENESIS_CHECKPOINT, key_id: by.keyId },
    by.privateKey,
  )
}
const lines = (cps: SignedCheckpoint[]) => cps.map((cp) => `${formatCheckpointLine(cp)}\n`).join('')

describe('readSignedThrough', () => {
  const path = join(dir, 'checkpoints.jsonl')
  // 1,500 checkpoints (~800 KB): the newest of orders/1 is far from the end, past several 256 KiB chunks.
  const history = [checkpoint('orders/1', 1, 10), ...Array.from({ length: 1500 }, (_, i) => checkpoint('orders/0', i + 1, (i + 1) * 10))]
  writeFileSync(path, lines(history))
  const request = { logPath: path, database: 'audit', key, chains: ['orders/0', 'orders/1', 'orders/2'] }

  it('finds each chain’s newest valid checkpoint, reading back across chunks; a chain with none is absent', async () => {
    expect(await readSignedThrough(request)).toEqual({ 'orders/0': 15_000, 'orders/1': 10 })
  })

  it('never believes a forged, edited, other-database or torn line at the end', async () => {
    const forgedPath = join(dir, 'forged.jsonl')
    writeFileSync(forgedPath, lines(history))
    const edited = { ...checkpoint('orders/0', 1501, 15_010), seq: 99_999 }
    const otherKeyClaimingOurs = { ...checkpoint('orders/0', 1502, 99_998, forger), key_id: key.keyId }
    appendFileSync(forgedPath, lines([checkpoint('orders/0', 1503, 99_997, forger), edited, otherKeyClaimingOurs, checkpoint('orders/0', 1504, 99_996, key, 'elsewhere')]))
    appendFileSync(forgedPath, `not json\n${formatCheckpointLine(checkpoint('orders/0', 1505, 99_995)).slice(0, 200)}`)
    expect(await readSignedThrough({ ...request, logPath: forgedPath })).toEqual({ 'orders/0': 15_000, 'orders/1': 10 })
  })

  it('reads at most maxBytes from the end: what lies beyond counts as unsigned', async () => {
    expect(await readSignedThrough({ ...request, maxBytes: 64 * 1024 })).toEqual({ 'orders/0': 15_000 })
  })

  it('without a key or a file, nothing is signed', async () => {
    expect(await readSignedThrough({ ...request, key: null })).toEqual({})
    expect(await readSignedThrough({ ...request, logPath: join(dir, 'none.jsonl') })).toEqual({})
  })
})
