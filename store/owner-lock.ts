import { join } from 'node:path'
import { StoreError } from './errors.js'
import { acquirePidLock, readPidLockRecord, type PidLockRecord } from '../common/pid-lock.js'
import { ensurePrivateDirectory } from '../common/private-dir.js'

/** Who owns an embedded store's data directory. */
export type OwnerRecord = PidLockRecord

const LOCK_FILE = 'readtrail-owner.json'

/**
 * chDB lets one process own a data directory; a second one fails deep inside
 * the engine with "Cannot lock file …/status". We claim the directory first so
 * the second process gets an error naming the owner instead. A lock left by a
 * process that died (kill -9) is taken over: the engine's own file lock died
 * with it (common/pid-lock.ts). This process may claim its own directory
 * again: libchdb binds one data directory per process anyway.
 *
 * The directory is created 0700, and an existing one others can reach is
 * refused (DIRECTORY_NOT_PRIVATE) before it is claimed: the engine's files
 * hold every stored read, and anyone who can enter the directory can copy
 * them and open them with their own chDB.
 */
export function claimDataDir(dataDir: string, command: string): () => void {
  ensurePrivateDirectory({ dir: dataDir, holds: 'the embedded store' })
  const lock = acquirePidLock({
    path: join(dataDir, LOCK_FILE),
    command,
    sameProcess: 'reclaim',
    refuse: (refusal) => {
      switch (refusal.reason) {
        case 'live': {
          const { pid, command: theirs = '(unknown command)', started_at = '(unknown time)' } = refusal.holder
          return new StoreError(
            'STORE_LOCKED',
            `the embedded store ${dataDir} is owned by readtrail process ${pid} (\`${theirs}\`, started ${started_at}); ` +
              'stop it first, or run against a ClickHouse server (READTRAIL_CLICKHOUSE_URL) to share the store',
            { details: { ...refusal.holder } },
          )
        }
        case 'raced':
          return new StoreError('STORE_LOCKED', `the embedded store ${dataDir} was claimed by process ${refusal.holder?.pid ?? '(unknown)'} at the same moment`, {
            details: { ...refusal.holder },
          })
        case 'claiming':
        case 'held-here':
          return new StoreError('STORE_LOCKED', `the embedded store ${dataDir} is being claimed by another process right now`)
      }
    },
  })
  return () => lock.release()
}

/**
 * The owner record of a data directory, or undefined when there is none or it
 * is not one. Only its shape is checked: whoever reads it to find the owner
 * must still make that owner prove itself (cli/owner-auth.ts).
 */
export function readOwnerRecord(dataDir: string): OwnerRecord | undefined {
  return readPidLockRecord(join(dataDir, LOCK_FILE))
}
