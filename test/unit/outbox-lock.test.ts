import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../common/logger.js'
import { openOutbox } from '../../producers/outbox/index.js'

/** The pid the lock file names (a JSON record; earlier versions wrote the bare pid). */
function lockPid(dir: string): number {
  return (JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')) as { pid: number }).pid
}

function capturingLogger() {
  const records: { level: number; msg: string; [k: string]: unknown }[] = []
  const logger = createLogger({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as (typeof records)[number]) })
  return { logger, records }
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise((resolve) => child.once('exit', resolve))
}

describe('outbox lock', () => {
  const dirs: string[] = []
  const children: ChildProcess[] = []
  const quiet = createLogger({ level: 'silent' })
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rt-outbox-lock-'))
    dirs.push(d)
    return d
  }
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL')
      await exited(child)
    }
    dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }))
  })

  it('holds the directory with this pid and releases it on close', async () => {
    const dir = fresh()
    const outbox = await openOutbox({ dir }, { logger: quiet })
    expect(lockPid(dir)).toBe(process.pid)
    // A second outbox of this process on the same directory is refused too.
    await expect(openOutbox({ dir }, { logger: quiet })).rejects.toMatchObject({ code: 'OUTBOX_LOCKED', retriable: true })
    await outbox.close()
    expect(existsSync(join(dir, 'lock'))).toBe(false)
    await (await openOutbox({ dir }, { logger: quiet })).close()
  })

  it('refuses a directory whose lock names a live process, naming its pid', async () => {
    const dir = fresh()
    const other = spawn(process.execPath, ['-e', 'setTimeout(()=>{},60000)'], { stdio: 'ignore' })
    children.push(other)
    writeFileSync(join(dir, 'lock'), `${other.pid}\n`)
    const err = await openOutbox({ dir }, { logger: quiet }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'OUTBOX_LOCKED', retriable: true, details: { pid: other.pid } })
    expect((err as Error).message).toContain(String(other.pid))
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(other.pid))
  })

  it('names the command of a live holder that wrote a record', async () => {
    const dir = fresh()
    const other = spawn(process.execPath, ['-e', 'setTimeout(()=>{},60000)'], { stdio: 'ignore' })
    children.push(other)
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: other.pid, command: 'clinic-portal.js', started_at: 'then' }))
    const err = await openOutbox({ dir }, { logger: quiet }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'OUTBOX_LOCKED', details: { pid: other.pid, command: 'clinic-portal.js' } })
    expect((err as Error).message).toContain(`${other.pid} (\`clinic-portal.js\`)`)
  })

  it('takes over a lock left by a process that died, with a warning', async () => {
    const dir = fresh()
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
    await exited(dead)
    writeFileSync(join(dir, 'lock'), `${dead.pid}\n`)
    const { logger, records } = capturingLogger()
    const outbox = await openOutbox({ dir }, { logger })
    expect(lockPid(dir)).toBe(process.pid)
    expect(records.find((r) => r.level === 40)).toMatchObject({ stale_pid: dead.pid })
    await outbox.close()
  })

  it('treats a lock file without a pid as being claimed while it is fresh', async () => {
    const dir = fresh()
    writeFileSync(join(dir, 'lock'), '')
    await expect(openOutbox({ dir }, { logger: quiet })).rejects.toMatchObject({ code: 'OUTBOX_LOCKED' })
  })
})
