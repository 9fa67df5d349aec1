import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { acquirePidLock, readPidLockRecord, type PidLockOptions, type PidLockRefusal } from '../../common/pid-lock.js'

class Refused extends Error {
  constructor(readonly refusal: PidLockRefusal) {
    super(refusal.reason)
  }
}

describe('acquirePidLock', () => {
  const dirs: string[] = []
  const lockIn = () => {
    const dir = mkdtempSync(join(tmpdir(), 'rt-pid-lock-'))
    dirs.push(dir)
    return join(dir, 'lock')
  }
  const options = (path: string, more: Partial<PidLockOptions> = {}): PidLockOptions => ({ path, command: 'test', refuse: (r) => new Refused(r), ...more })
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

  it('writes a private record of this process and removes it on release, once', () => {
    const path = lockIn()
    const lock = acquirePidLock(options(path))
    expect(readPidLockRecord(path)).toMatchObject({ pid: process.pid, command: 'test' })
    expect(readFileSync(path).length).toBeGreaterThan(0)
    lock.release()
    lock.release()
    expect(existsSync(path)).toBe(false)
  })

  it('refuses a second holder in this process, or lets it reclaim the lock when asked', () => {
    const path = lockIn()
    const lock = acquirePidLock(options(path))
    expect(() => acquirePidLock(options(path))).toThrow(expect.objectContaining({ refusal: { reason: 'held-here' } }))
    const again = acquirePidLock(options(path, { sameProcess: 'reclaim' }))
    again.release()
    lock.release()
  })

  // After a container restart the new process often has the pid the dead one had (pid 1).
  it('takes over a lock naming this pid that this process never made', () => {
    const path = lockIn()
    writeFileSync(path, JSON.stringify({ pid: process.pid, command: 'readtrail consume', started_at: 'before the restart' }))
    const stale: unknown[] = []
    const lock = acquirePidLock(options(path, { onTakeover: (holder) => stale.push(holder) }))
    expect(stale).toEqual([{ pid: process.pid, command: 'readtrail consume', started_at: 'before the restart' }])
    lock.release()
  })

  it('honours a bare pid left by an earlier version', () => {
    const path = lockIn()
    writeFileSync(path, `${process.ppid}\n`)
    expect(() => acquirePidLock(options(path))).toThrow(expect.objectContaining({ refusal: { reason: 'live', holder: { pid: process.ppid } } }))
    expect(readPidLockRecord(path)).toBeUndefined()
  })

  it('waits out a fresh file without a pid, then takes it over', () => {
    const path = lockIn()
    writeFileSync(path, '')
    expect(() => acquirePidLock(options(path))).toThrow(expect.objectContaining({ refusal: { reason: 'claiming' } }))
    const past = new Date(Date.now() - 60_000)
    utimesSync(path, past, past)
    acquirePidLock(options(path)).release()
  })

  it('reports a file-system failure through ioError', () => {
    const path = join(lockIn(), 'missing-dir', 'lock')
    expect(() => acquirePidLock(options(path, { ioError: (what) => new Error(`io: ${what}`) }))).toThrow('io: cannot create the lock file')
  })
})
