import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { StoreError } from './errors.js'
import { ensurePrivateDirectory, PRIVATE_FILE_MODE } from '../common/private-dir.js'
import { isProcessAlive } from '../common/process.js'

export interface OwnerRecord {
  pid: number
  command: string
  started_at: string
}

const LOCK_FILE = 'readtrail-owner.json'

/**
 * chDB lets one process own a data directory; a second one fails deep inside
 * the engine with "Cannot lock file …/status". We claim the directory first so
 * the second process gets an error naming the owner instead. A lock left by a
 * process that died (kill -9) is taken over: the engine's own file lock died
 * with it.
 *
 * The directory is created 0700, and an existing one others can reach is
 * refused (DIRECTORY_NOT_PRIVATE) before it is claimed: the engine's files
 * hold every stored read, and anyone who can enter the directory can copy
 * them and open them with their own chDB.
 */
export function claimDataDir(dataDir: string, command: string): () => void {
  ensurePrivateDirectory({ dir: dataDir, holds: 'the embedded store' })
  const path = join(dataDir, LOCK_FILE)
  const record: OwnerRecord = { pid: process.pid, command, started_at: new Date().toISOString() }
  // Created exclusively, so two processes starting together cannot both win.
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(record), { flag: 'wx', mode: PRIVATE_FILE_MODE })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err
      const existing = readOwner(path)
      const written = statSync(path, { throwIfNoEntry: false })?.mtimeMs
      if (!existing && written !== undefined && Date.now() - written < 5000) {
        // Another process created the record a moment ago and is writing it.
        throw new StoreError('STORE_LOCKED', `the embedded store ${dataDir} is being claimed by another process right now`)
      }
      if (existing && existing.pid !== process.pid && isProcessAlive(existing.pid)) {
        throw new StoreError(
          'STORE_LOCKED',
          `the embedded store ${dataDir} is owned by readtrail process ${existing.pid} (\`${existing.command}\`, started ${existing.started_at}); ` +
            'stop it first, or run against a ClickHouse server (READTRAIL_CLICKHOUSE_URL) to share the store',
          { details: { ...existing } },
        )
      }
      // Left by a process that died (its engine lock died with it), or unreadable: take it over.
      rmSync(path, { force: true })
    }
  }
  return () => {
    if (readOwner(path)?.pid === process.pid) rmSync(path, { force: true })
  }
}

/** The owner record of a data directory, or undefined when there is none or it is not one. */
export function readOwnerRecord(dataDir: string): OwnerRecord | undefined {
  return readOwner(join(dataDir, LOCK_FILE))
}

// A lock record is far smaller; the bound keeps a planted file from being read whole.
const MAX_RECORD_BYTES = 4096

/**
 * The record is a file anyone who can write the data directory can replace:
 * only its shape is checked here. Whoever reads it to find the owner must
 * still make that owner prove itself (cli/owner-auth.ts).
 */
function readOwner(path: string): OwnerRecord | undefined {
  try {
    if (statSync(path).size > MAX_RECORD_BYTES) return undefined
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<OwnerRecord> | null
    if (typeof value !== 'object' || value === null) return undefined
    const { pid, command, started_at } = value
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid < 1) return undefined
    if (typeof command !== 'string' || typeof started_at !== 'string') return undefined
    return { pid, command, started_at }
  } catch {
    return undefined
  }
}
