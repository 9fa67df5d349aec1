import { open, readFile, rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Logger } from '../../common/logger.js'
import { OutboxError, outboxUnavailable } from './errors.js'
import { isProcessAlive } from '../../common/process.js'
import { PRIVATE_FILE_MODE } from '../../common/private-dir.js'

export const LOCK_FILE = 'lock'

// A lock file with no readable pid younger than this is taken to be one that
// another process has just created and is about to write its pid into.
const CLAIM_GRACE_MS = 5000

// Directories this process holds. The pid in the lock file cannot tell two
// outboxes of one process apart, and after a container restart the previous
// owner often had this very pid, so the file alone would let a second
// openOutbox in this process take over a directory that is in use.
const heldHere = new Set<string>()

export interface OutboxLock {
  /** Removes the lock file if it still names this process. */
  release(): Promise<void>
}

/**
 * Claims `dir` for this process: one writer per outbox, or two processes
 * would interleave records and each delete segments the other still needs.
 * The lock file is created exclusively and holds the owner's pid. A lock
 * whose pid is not running (the owner was SIGKILLed or the host rebooted) is
 * taken over with a warning.
 *
 * Two processes taking over the same stale lock in the same instant could
 * both succeed; the re-read after writing narrows that window to a few
 * microseconds. The lock guards against a misconfigured deployment, not an
 * adversary.
 */
export async function acquireOutboxLock(dir: string, logger: Logger): Promise<OutboxLock> {
  const key = resolve(dir)
  if (heldHere.has(key)) {
    throw new OutboxError('OUTBOX_LOCKED', `outbox ${dir} is already open in this process (pid ${process.pid})`, {
      details: { dir, pid: process.pid },
    })
  }
  const path = join(dir, LOCK_FILE)
  const mine = `${process.pid}\n`
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx', PRIVATE_FILE_MODE)
      try {
        await handle.writeFile(mine, 'utf8')
        await handle.close()
      } catch (err) {
        await handle.close().catch(() => {})
        // An empty lock file would block the next start for the claim grace period.
        await rm(path, { force: true }).catch(() => {})
        throw err
      }
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw outboxUnavailable(dir, 'cannot create the lock file', err)
    }
    const owner = await readOwnerPid(path, dir)
    if (owner === undefined) {
      const age = await ageMs(path, dir)
      // Gone already: its owner released it between our two looks.
      if (age === undefined) continue
      if (age < CLAIM_GRACE_MS) {
        throw new OutboxError('OUTBOX_LOCKED', `outbox ${dir} is being claimed by another process right now`, { details: { dir } })
      }
      logger.warn({ dir }, 'outbox lock file holds no pid; taking it over')
    } else if (owner !== process.pid && isProcessAlive(owner)) {
      throw new OutboxError('OUTBOX_LOCKED', `outbox ${dir} is owned by live process ${owner}; each process needs its own outbox directory`, {
        details: { dir, pid: owner },
      })
    } else {
      logger.warn({ dir, stale_pid: owner }, 'outbox lock left by a process that is no longer running; taking it over')
    }
    try {
      await rm(path, { force: true })
    } catch (cause) {
      throw outboxUnavailable(dir, 'cannot remove a stale lock file', cause)
    }
  }
  const now = await readOwnerPid(path, dir)
  if (now !== process.pid) {
    throw new OutboxError('OUTBOX_LOCKED', `outbox ${dir} was claimed by process ${now ?? '(unknown)'} at the same moment`, {
      details: { dir, pid: now },
    })
  }
  heldHere.add(key)
  let released = false
  return {
    async release() {
      if (released) return
      released = true
      heldHere.delete(key)
      try {
        if ((await readOwnerPid(path, dir)) === process.pid) await rm(path, { force: true })
      } catch (cause) {
        throw outboxUnavailable(dir, 'cannot remove the lock file', cause)
      }
    },
  }
}

async function readOwnerPid(path: string, dir: string): Promise<number | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw outboxUnavailable(dir, 'cannot read the lock file', err)
  }
  const trimmed = text.trim()
  if (!/^\d{1,10}$/.test(trimmed)) return undefined
  const pid = Number(trimmed)
  return pid > 0 ? pid : undefined
}

async function ageMs(path: string, dir: string): Promise<number | undefined> {
  try {
    return Date.now() - (await stat(path)).mtimeMs
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw outboxUnavailable(dir, 'cannot stat the lock file', err)
  }
}
