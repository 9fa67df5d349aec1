import { generateKeyPairSync } from 'node:crypto'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { formatCheckpointLine, GENESIS_CHECKPOINT, keyId, signCheckpoint, type SignedCheckpoint } from '../../checkpoints/checkpoint.js'
import { openCheckpointLog, readCheckpointLog } from '../../checkpoints/checkpoint-log.js'
import { CheckpointError } from '../../checkpoints/errors.js'
import { createLogger } from '../../common/logger.js'

const { privateKey, publicKey } = generateKeyPairSync('ed25519')

function checkpoint(index: number, chainId = 'access/0'): SignedCheckpoint {
  return signCheckpoint(
    {
      v: 1,
      database: 'readtrail',
      chain_id: chainId,
      index,
      seq: index * 10,
      hash: index.toString(16).padStart(64, '0'),
      kafka_offset: String(index * 10 - 1),
      signed_at: new Date(Date.UTC(2025, 0, 1, 0, 0, index)).toISOString(),
      prev: GENESIS_CHECKPOINT,
      key_id: keyId(publicKey),
    },
    privateKey,
  )
}

/** Collects pino records so a test can see what was warned. */
function capturingLogger() {
  const records: { level: number; msg: string }[] = []
  const logger = createLogger({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as { level: number; msg: string }) })
  return { logger, records }
}

describe('checkpoint log', () => {
  const dirs: string[] = []
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rt-cplog-'))
    dirs.push(d)
    return d
  }
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

  it('appends one line per checkpoint and reads them back in order', async () => {
    const path = join(fresh(), 'sub', 'checkpoints.jsonl')
    const log = await openCheckpointLog(path)
    await log.append([checkpoint(1), checkpoint(1, 'access/1')])
    await log.append([])
    await log.append([checkpoint(2)])
    await log.close()
    await log.close()
    expect(readFileSync(path, 'utf8')).toBe([checkpoint(1), checkpoint(1, 'access/1'), checkpoint(2)].map((cp) => `${formatCheckpointLine(cp)}\n`).join(''))
    // Reopening appends after what is there.
    const again = await openCheckpointLog(path)
    await again.append([checkpoint(3)])
    await again.close()
    const read = await readCheckpointLog(path)
    expect(read.missing).toBe(false)
    expect(read.unreadable).toEqual([])
    expect(read.entries.map((e) => [e.line, e.checkpoint.chain_id, e.checkpoint.index])).toEqual([
      [1, 'access/0', 1],
      [2, 'access/1', 1],
      [3, 'access/0', 2],
      [4, 'access/0', 3],
    ])
    expect(read.entries[0]!.checkpoint).toEqual(checkpoint(1))
  })

  it('refuses appends after close', async () => {
    const log = await openCheckpointLog(join(fresh(), 'c.jsonl'))
    await log.close()
    await expect(log.append([checkpoint(1)])).rejects.toMatchObject({ code: 'CHECKPOINT_LOG_UNAVAILABLE' })
  })

  it('truncates a torn last line on open and warns', async () => {
    const path = join(fresh(), 'c.jsonl')
    const whole = `${formatCheckpointLine(checkpoint(1))}\n`
    writeFileSync(path, whole + formatCheckpointLine(checkpoint(2)).slice(0, 100))
    expect((await readCheckpointLog(path)).unreadable).toEqual([{ line: 2, problem: expect.stringContaining('no newline') }])
    const { logger, records } = capturingLogger()
    const log = await openCheckpointLog(path, logger)
    expect(readFileSync(path, 'utf8')).toBe(whole)
    expect(records.some((r) => r.level === 40 && r.msg.includes('torn'))).toBe(true)
    await log.append([checkpoint(2)])
    await log.close()
    const read = await readCheckpointLog(path)
    expect(read.unreadable).toEqual([])
    expect(read.entries.map((e) => e.checkpoint.index)).toEqual([1, 2])
  })

  it('truncates a file that is one torn line to empty', async () => {
    const path = join(fresh(), 'c.jsonl')
    writeFileSync(path, '{"v":1,"datab')
    const log = await openCheckpointLog(path)
    await log.close()
    expect(readFileSync(path, 'utf8')).toBe('')
  })

  it('reports each malformed line with its line number and keeps the others', async () => {
    const path = join(fresh(), 'c.jsonl')
    const good = formatCheckpointLine(checkpoint(1))
    const { sig: _sig, ...unsigned } = checkpoint(2)
    writeFileSync(
      path,
      [
        good,
        'not json',
        '',
        JSON.stringify({ ...checkpoint(2), index: -1 }),
        JSON.stringify(unsigned),
        JSON.stringify({ ...checkpoint(2), extra: true }),
        JSON.stringify([1, 2]),
        `"${'x'.repeat(20_000)}"`,
        formatCheckpointLine(checkpoint(3)),
      ].join('\n') + '\n',
    )
    const read = await readCheckpointLog(path)
    expect(read.entries.map((e) => [e.line, e.checkpoint.index])).toEqual([
      [1, 1],
      [9, 3],
    ])
    expect(read.unreadable).toEqual([
      { line: 2, problem: expect.stringContaining('not JSON') },
      { line: 3, problem: 'empty line' },
      { line: 4, problem: expect.stringContaining('index') },
      { line: 5, problem: expect.stringContaining('sig') },
      { line: 6, problem: expect.stringContaining('extra: unknown key') },
      { line: 7, problem: expect.stringContaining('not a signed checkpoint') },
      { line: 8, problem: expect.stringContaining('characters') },
    ])
  })

  it('reports a missing file as missing, not as an error', async () => {
    expect(await readCheckpointLog(join(fresh(), 'absent.jsonl'))).toEqual({ missing: true, entries: [], unreadable: [] })
  })

  it('raises CHECKPOINT_LOG_UNAVAILABLE (retriable) when the path cannot be a file', async () => {
    const dir = fresh()
    const err = await openCheckpointLog(dir).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CheckpointError)
    expect(err).toMatchObject({ code: 'CHECKPOINT_LOG_UNAVAILABLE', retriable: true, details: { path: dir } })
    await expect(readCheckpointLog(dir)).rejects.toMatchObject({ code: 'CHECKPOINT_LOG_UNAVAILABLE', details: { path: dir } })
    const underFile = join(dir, 'file')
    appendFileSync(underFile, '')
    await expect(openCheckpointLog(join(underFile, 'c.jsonl'))).rejects.toMatchObject({ code: 'CHECKPOINT_LOG_UNAVAILABLE' })
  })
})
