import { basename, join } from 'node:path'
import type { Logger } from '../../common/logger.js'
import { acquirePidLock, type PidLockHolder } from '../../common/pid-lock.js'
import { OutboxError, outboxUnavailable } from './errors.js'

export const LOCK_FILE = 'lock'

export interface OutboxLock {
  /** Removes the lock file if it still names this process. */
  release(): Promise<void>
}

/**
 * Claims `dir` for this process: one writer per outbox, or two processes
 * would interleave records and each delete segments the other still needs.
 * A second outbox of this same process on the directory is refused too; a
 * lock whose process is not running (the owner was SIGKILLed or the host
 * rebooted) is taken over with a warning (common/pid-lock.ts).
 */
export async function acquireOutboxLock(dir: string, logger: Logger): Promise<OutboxLock> {
  const lock = acquirePidLock({
    path: join(dir, LOCK_FILE),
    // The script, not the command line: arguments may carry secrets.
    command: basename(process.argv[1] ?? process.argv0),
    refuse: (refusal) => {
      switch (refusal.reason) {
        case 'held-here':
          return new OutboxError('OUTBOX_LOCKED', `outbox ${dir} is already open in this process (pid ${process.pid})`, { details: { dir, pid: process.pid } })
        case 'claiming':
          return new OutboxError('OUTBOX_LOCKED', `outbox ${dir} is being claimed by another process right now`, { details: { dir } })
        case 'live':
          return new OutboxError('OUTBOX_LOCKED', `outbox ${dir} is owned by live process ${describeHolder(refusal.holder)}; each process needs its own outbox directory`, {
            details: { dir, pid: refusal.holder.pid, ...(refusal.holder.command === undefined ? {} : { command: refusal.holder.command }) },
          })
        case 'raced':
          return new OutboxError('OUTBOX_LOCKED', `outbox ${dir} was claimed by process ${refusal.holder?.pid ?? '(unknown)'} at the same moment`, {
            details: { dir, pid: refusal.holder?.pid },
          })
      }
    },
    ioError: (what, cause) => outboxUnavailable(dir, what, cause),
    onTakeover: (stale) =>
      stale === undefined
        ? logger.warn({ dir }, 'outbox lock file holds no pid; taking it over')
        : logger.warn({ dir, stale_pid: stale.pid }, 'outbox lock left by a process that is no longer running; taking it over'),
  })
  return {
    release: async () => lock.release(),
  }
}

function describeHolder(holder: PidLockHolder): string {
  return holder.command === undefined ? String(holder.pid) : `${holder.pid} (\`${holder.command}\`)`
}
