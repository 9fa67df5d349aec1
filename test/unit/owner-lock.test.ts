import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { claimDataDir, readOwnerRecord } from '../../store/owner-lock.js'

describe('claimDataDir', () => {
  const dirs: string[] = []
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rt-lock-'))
    dirs.push(d)
    return d
  }
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

  it('records this process as owner and removes the record on release', () => {
    const dir = fresh()
    const release = claimDataDir(dir, 'readtrail consume')
    const owner = JSON.parse(readFileSync(join(dir, 'readtrail-owner.json'), 'utf8')) as { pid: number; command: string }
    expect(owner).toMatchObject({ pid: process.pid, command: 'readtrail consume' })
    release()
    expect(existsSync(join(dir, 'readtrail-owner.json'))).toBe(false)
  })

  it('refuses a directory owned by a live process, naming it', async () => {
    const dir = fresh()
    const other = spawn('sleep', ['30'])
    try {
      writeFileSync(join(dir, 'readtrail-owner.json'), JSON.stringify({ pid: other.pid, command: 'readtrail consume', started_at: 'then' }))
      expect(() => claimDataDir(dir, 'readtrail verify')).toThrow(expect.objectContaining({ code: 'STORE_LOCKED', retriable: true }))
      expect(() => claimDataDir(dir, 'readtrail verify')).toThrow(`readtrail process ${other.pid} (\`readtrail consume\``)
    } finally {
      other.kill()
      await new Promise((r) => other.on('exit', r))
    }
    // Once that process is gone its record is taken over.
    const release = claimDataDir(dir, 'readtrail verify')
    expect(JSON.parse(readFileSync(join(dir, 'readtrail-owner.json'), 'utf8'))).toMatchObject({ pid: process.pid })
    release()
  })

  it('treats a record still being written as taken, and takes over an old unreadable one', () => {
    const dir = fresh()
    const path = join(dir, 'readtrail-owner.json')
    writeFileSync(path, '')
    expect(() => claimDataDir(dir, 'x')).toThrow(expect.objectContaining({ code: 'STORE_LOCKED' }))
    const past = new Date(Date.now() - 60_000)
    utimesSync(path, past, past)
    claimDataDir(dir, 'x')()
  })

  it('readOwnerRecord returns a well-formed record and nothing for a planted file of another shape', () => {
    const dir = fresh()
    const path = join(dir, 'readtrail-owner.json')
    expect(readOwnerRecord(dir)).toBeUndefined()
    writeFileSync(path, JSON.stringify({ pid: 4242, command: 'readtrail consume', started_at: 'then' }))
    expect(readOwnerRecord(dir)).toEqual({ pid: 4242, command: 'readtrail consume', started_at: 'then' })
    for (const planted of [
      JSON.stringify({ pid: '4242', command: 'x', started_at: 'y' }),
      JSON.stringify({ pid: -1, command: 'x', started_at: 'y' }),
      JSON.stringify({ pid: 1.5, command: 'x', started_at: 'y' }),
      JSON.stringify({ pid: 4242 }),
      JSON.stringify([4242]),
      'null',
      'not json',
      // Larger than any record: not read whole.
      JSON.stringify({ pid: 4242, command: 'x'.repeat(10_000), started_at: 'y' }),
    ]) {
      writeFileSync(path, planted)
      expect(readOwnerRecord(dir), planted.slice(0, 60)).toBeUndefined()
    }
  })
})
