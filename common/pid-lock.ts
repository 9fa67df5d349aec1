import { openSync, closeSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import { resolve } from 'node:path'
import { PRIVATE_FILE_MODE } from './private-dir.js'
import { isProcessAlive } from './process.js'

/** What a lock file written by this module says about its holder. */
export interface PidLockRecord {
  pid: number
  /** What the holder runs, e.g. 'readtrail consume'; named in the refusal. */
  command: string
  started_at: string
}

/** The holder as far as the file tells: older lock files held a bare pid. */
export interface PidLockHolder {
  pid: number
  command?: string
  started_at?: string
}

/** Why a lock was refused; each caller turns it into its own coded error. */
export type PidLockRefusal =
  /** A running process other than this one holds it. */
  | { reason: 'live'; holder: PidLockHolder }
  /** A lock file with no readable pid yet, younger than the claim grace: another process is writing it. */
  | { reason: 'claiming' }
  /** This process holds it already (only with `sameProcess: 'refuse'`). */
  | { reason: 'held-here' }
  /** Another process took over the same stale lock in the same instant. */
  | { reason: 'raced'; holder: PidLockHolder | undefined }

export interface PidLockOptions {
  /** The lock file. */
  path: string
  /** Recorded for whoever is refused. Never the full command line: it may carry secrets. */
  command: string
  /** The coded error for a refusal. */
  refuse(refusal: PidLockRefusal): Error
  /** The coded error for a file-system failure (`what` says which step). @default rethrows the cause */
  ioError?(what: string, cause: unknown): Error
  /** Told before a stale lock (its holder died, or it never got a pid) is removed. */
  onTakeover?(stale: PidLockHolder | undefined): void
  /**
   * A lock this very process holds: 'refuse' it (one holder per process too),
   * or 'reclaim' it as a stale one. Either way a file naming this pid that
   * this process did not make is stale: after a container restart the
   * previous holder often had this very pid (pid 1).
   * @default 'refuse'
   */
  sameProcess?: 'refuse' | 'reclaim'
}

export interface PidLock {
  /** Removes the lock file if it still names this process. Idempotent. */
  release(): void
}

// A lock file with no readable pid younger than this is taken to be one that
// another process has just created and is about to write its pid into.
const CLAIM_GRACE_MS = 5000

// A record is far smaller; the bound keeps a planted file from being read whole.
const MAX_RECORD_BYTES = 4096

// Lock files this process holds. The pid in the file cannot tell two holders
// in one process apart, nor this process from a dead one that had its pid.
const heldHere = new Set<string>()

/**
 * Claims `path` for this process: created exclusively (O_EXCL, mode 0600),
 * holding the JSON record of this process. A lock whose holder is not
 * running (SIGKILLed, the host rebooted) is taken over.
 *
 * Two processes taking over the same stale lock in the same instant could
 * both succeed; the re-read after writing narrows that window to a few
 * microseconds. The lock guards against a misconfigured deployment, not an
 * adversary: anyone who can write the directory can replace the file.
 */
export function acquirePidLock(options: PidLockOptions): PidLock {
  const path = resolve(options.path)
  const ioError = options.ioError ?? ((_what: string, cause: unknown) => cause as Error)
  if (heldHere.has(path) && (options.sameProcess ?? 'refuse') === 'refuse') throw options.refuse({ reason: 'held-here' })
  const record: PidLockRecord = { pid: process.pid, command: options.command, started_at: new Date().toISOString() }
  for (let attempt = 0; ; attempt++) {
    try {
      createLockFile(path, `${JSON.stringify(record)}\n`)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw ioError('cannot create the lock file', err)
    }
    const holder = readHolder(path, ioError)
    if (holder === undefined) {
      const age = ageMs(path, ioError)
      // Gone already: its holder released it between our two looks.
      if (age === undefined) continue
      if (age < CLAIM_GRACE_MS) throw options.refuse({ reason: 'claiming' })
    } else if (holder.pid !== process.pid && isProcessAlive(holder.pid)) {
      throw options.refuse({ reason: 'live', holder })
    }
    options.onTakeover?.(holder)
    try {
      rmSync(path, { force: true })
    } catch (cause) {
      throw ioError('cannot remove a stale lock file', cause)
    }
  }
  const now = readHolder(path, ioError)
  if (now?.pid !== process.pid) throw options.refuse({ reason: 'raced', holder: now })
  heldHere.add(path)
  let released = false
  return {
    release() {
      if (released) return
      released = true
      heldHere.delete(path)
      try {
        if (readHolder(path, ioError)?.pid === process.pid) rmSync(path, { force: true })
      } catch (cause) {
        throw ioError('cannot remove the lock file', cause)
      }
    },
  }
}

/**
 * The full record in a lock file, or undefined when there is none or it is
 * not one. Only its shape is checked: whoever reads it to find the holder
 * must still make that holder prove itself (cli/owner-auth.ts).
 */
export function readPidLockRecord(path: string): PidLockRecord | undefined {
  try {
    const holder = parseHolder(readBounded(path))
    if (holder?.command === undefined || holder.started_at === undefined) return undefined
    return { pid: holder.pid, command: holder.command, started_at: holder.started_at }
  } catch {
    return undefined
  }
}

function createLockFile(path: string, text: string): void {
  const fd = openSync(path, 'wx', PRIVATE_FILE_MODE)
  try {
    writeSync(fd, text)
    closeSync(fd)
  } catch (err) {
    try {
      closeSync(fd)
    } catch {
      // Already closed, or the write's error says more.
    }
    // An empty lock file would block the next start for the claim grace period.
    rmSync(path, { force: true })
    throw err
  }
}

function readHolder(path: string, ioError: (what: string, cause: unknown) => Error): PidLockHolder | undefined {
  let text: string | undefined
  try {
    text = readBounded(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError('cannot read the lock file', err)
  }
  return parseHolder(text)
}

/** The file's text, or undefined when it is larger than any record. */
function readBounded(path: string): string | undefined {
  if (statSync(path).size > MAX_RECORD_BYTES) return undefined
  return readFileSync(path, 'utf8')
}

/** A JSON record, or a bare decimal pid (lock files of earlier versions). */
function parseHolder(text: string | undefined): PidLockHolder | undefined {
  if (text === undefined) return undefined
  const trimmed = text.trim()
  if (/^\d{1,10}$/.test(trimmed)) return validPid(Number(trimmed)) ? { pid: Number(trimmed) } : undefined
  let value: unknown
  try {
    value = JSON.parse(trimmed)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const { pid, command, started_at } = value as Partial<Record<keyof PidLockRecord, unknown>>
  if (typeof pid !== 'number' || !validPid(pid)) return undefined
  return {
    pid,
    ...(typeof command === 'string' ? { command } : {}),
    ...(typeof started_at === 'string' ? { started_at } : {}),
  }
}

function validPid(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid >= 1
}

function ageMs(path: string, ioError: (what: string, cause: unknown) => Error): number | undefined {
  try {
    return Date.now() - statSync(path).mtimeMs
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError('cannot stat the lock file', err)
  }
}
