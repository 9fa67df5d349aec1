import { appendFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { listLogFiles } from '../../producers/db-audit/log-files.js'
import { LogTailer } from '../../producers/db-audit/log-tailer.js'
import { freshTempDir } from '../helpers/temp-dir.js'

/** Every record text the tailer yields until it goes idle. */
async function drain(tailer: LogTailer): Promise<{ records: string[]; truncated: number }> {
  const records: string[] = []
  let truncated = 0
  for (;;) {
    const step = await tailer.step()
    if (step.kind === 'idle') return { records, truncated }
    if (step.kind === 'switched') truncated += step.truncatedTail ? 1 : 0
    else for (const item of step.items) if (item.kind === 'record') records.push(item.bytes.toString())
  }
}

/** server_audit's rotation: path.(n-1) → path.n … path → path.1, then a new path; numbers zero-padded to `width`. */
function rotate(path: string, count: number, width: number): void {
  const name = (i: number) => (i === 0 ? path : `${path}.${String(i).padStart(width, '0')}`)
  for (let i = count; i >= 0; i--) {
    try {
      renameSync(name(i), name(i + 1))
    } catch {
      // not there yet
    }
  }
  writeFileSync(path, '')
}

describe('log files and the tailer', () => {
  it('regression: server_audit zero-pads rotated names (path.01 … path.12), oldest first', async () => {
    const dir = freshTempDir('rt-db-audit-list-')
    for (const name of ['a.log', 'a.log.01', 'a.log.02', 'a.log.12', 'a.log.x', 'a.log.0', 'b.log']) writeFileSync(join(dir, name), name)
    const files = await listLogFiles({ kind: 'rotated', path: join(dir, 'a.log') })
    expect(files.map((f) => f.path.slice(dir.length + 1))).toEqual(['a.log.12', 'a.log.02', 'a.log.01', 'a.log'])
  })

  it('directory logs sort by name and keep to their extension', async () => {
    const dir = freshTempDir('rt-db-audit-list-')
    for (const name of ['postgresql-20261205-140448.csv', 'postgresql-20261205-140001.csv', 'postgresql-20261205-140001.json', 'postgresql-20261205-140001.log']) writeFileSync(join(dir, name), 'x')
    const files = await listLogFiles({ kind: 'directory', dir, extension: '.csv' })
    expect(files.map((f) => f.path.slice(dir.length + 1))).toEqual(['postgresql-20261205-140001.csv', 'postgresql-20261205-140448.csv'])
  })

  it('follows renames: every record once, in order, the old file finished before the new one', async () => {
    const dir = freshTempDir('rt-db-audit-tail-')
    const path = join(dir, 'server_audit.log')
    writeFileSync(path, '')
    const tailer = new LogTailer({ location: { kind: 'rotated', path }, framing: 'line', maxRecordBytes: 1024, readChunkBytes: 64 })
    await tailer.resume(null, 0, 'beginning')
    const seen: string[] = []
    let n = 0
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 7; i++) appendFileSync(path, `line ${n++}\n`)
      // Half the rounds read before rotating, half rotate several times unread.
      if (round % 2 === 0) seen.push(...(await drain(tailer)).records)
      rotate(path, 20, 2)
    }
    appendFileSync(path, `line ${n++}\n`)
    seen.push(...(await drain(tailer)).records)
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => `line ${i}`))
    await tailer.close()
  })

  it('a file deleted while open is still read to its end; a lost position resumes at the files after it', async () => {
    const dir = freshTempDir('rt-db-audit-tail-')
    const first = join(dir, 'postgresql-1.csv')
    writeFileSync(first, 'a\nb\n')
    const tailer = new LogTailer({ location: { kind: 'directory', dir, extension: '.csv' }, framing: 'csv', maxRecordBytes: 1024, readChunkBytes: 64 })
    await tailer.resume(null, 0, 'beginning')
    expect((await drain(tailer)).records).toEqual(['a', 'b'])
    const identity = (await tailer.currentIdentity())!
    appendFileSync(first, 'c\n"unterminated')
    writeFileSync(join(dir, 'postgresql-2.csv'), 'd\n')
    rmSync(first)
    const after = await drain(tailer)
    expect(after.records).toEqual(['c', 'd'])
    expect(after.truncated).toBe(1)
    await tailer.close()

    const again = new LogTailer({ location: { kind: 'directory', dir, extension: '.csv' }, framing: 'csv', maxRecordBytes: 1024, readChunkBytes: 64 })
    writeFileSync(join(dir, 'postgresql-0.csv'), 'older\n')
    expect(await again.resume(identity, 4, 'beginning')).toEqual([{ kind: 'lost', path: first }])
    expect((await drain(again)).records).toEqual(['d'])
    await again.close()
  })
})
