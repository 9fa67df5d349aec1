import { randomBytes } from 'node:crypto'
import { closeSync, constants, fchmodSync, fsyncSync, lstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { ReadtrailError } from '../common/errors.js'

export interface OpenOutputOptions {
  /**
   * Replace an existing file (atomically, through a temporary file renamed
   * over it). A symlink at the path is replaced, never written through.
   * @default false
   */
  force?: boolean
  /** @default 0o600 */
  mode?: number
  /** The flag that named the path, for messages. @default '--out' */
  flag?: string
}

/**
 * An output file opened before the work that fills it: the name is already
 * held (or, with `force`, a temporary file beside it), so a path that cannot
 * be written fails in a second, not after the queries.
 */
export interface OutputFile {
  /** The absolute path the contents end up at. */
  readonly path: string
  /** Writes the whole contents, fsyncs and closes; with `force`, renames over the path. Once only. */
  commit(contents: string | Buffer): void
  /** Gives up: closes and removes what this open created. Safe to call after commit (does nothing). */
  abandon(): void
}

// O_EXCL with O_CREAT already refuses a symlink at the last component (even
// a dangling one); O_NOFOLLOW says so to a reader and holds where O_EXCL is
// weakened (NFSv2). Absent on Windows, where 0 leaves the flags as they are.
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0)

/**
 * Opens `path` for one whole-file write, safely against a path an attacker
 * may have prepared: created exclusively with O_NOFOLLOW, so an existing
 * file or a symlink planted at the name is never overwritten nor followed
 * (OUTPUT_EXISTS), unless `force`, which writes a new temporary file in the
 * same directory and renames it over the path at commit (a rename replaces
 * a symlink itself, not its target). Any other failure, a read-only file
 * system or a missing directory, is OUTPUT_UNWRITABLE with the errno.
 */
export function openOutputFile(path: string, options: OpenOutputOptions = {}): OutputFile {
  const target = resolve(path)
  const flag = options.flag ?? '--out'
  const mode = options.mode ?? 0o600
  if (options.force) refuseDirectory(target, flag)
  const writePath = options.force ? join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`) : target
  let fd: number
  try {
    fd = openSync(writePath, CREATE_NEW, mode)
  } catch (cause) {
    if (errnoOf(cause) === 'EEXIST' && !options.force) throw outputExists(target, flag, cause)
    throw unwritable(target, flag, cause)
  }
  let state: 'open' | 'committed' | 'abandoned' = 'open'
  const discard = () => {
    try {
      closeSync(fd)
    } catch {
      // Already closed by a failed commit.
    }
    try {
      unlinkSync(writePath)
    } catch {
      // Nothing to remove, or the first error says more.
    }
  }
  try {
    // The umask may have narrowed the mode, never widened it; set exactly what was asked.
    fchmodSync(fd, mode)
  } catch (cause) {
    discard()
    throw unwritable(target, flag, cause)
  }
  return Object.freeze({
    path: target,
    commit(contents: string | Buffer): void {
      if (state !== 'open') throw new ReadtrailError('USAGE', `${target} was already ${state}`)
      state = 'committed'
      try {
        const bytes = typeof contents === 'string' ? Buffer.from(contents, 'utf8') : contents
        for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at)
        fsyncSync(fd)
        closeSync(fd)
        if (writePath !== target) renameSync(writePath, target)
      } catch (cause) {
        // No partial file left behind under the name, nor a stray temporary file.
        discard()
        throw unwritable(target, flag, cause)
      }
    },
    abandon(): void {
      if (state !== 'open') return
      state = 'abandoned'
      discard()
    },
  })
}

/** A rename cannot put a file over a directory; say so now, not after the work. */
function refuseDirectory(target: string, flag: string): void {
  let isDirectory = false
  try {
    isDirectory = lstatSync(target).isDirectory()
  } catch {
    // Absent (or unreadable): the open below gives the real reason.
  }
  if (isDirectory) {
    throw new ReadtrailError('OUTPUT_UNWRITABLE', `${flag} ${target} is a directory; name a file`, { details: { path: target, errno: 'EISDIR' } })
  }
}

function outputExists(target: string, flag: string, cause: unknown): ReadtrailError {
  let what = 'a file'
  try {
    const s = lstatSync(target)
    what = s.isSymbolicLink() ? 'a symlink' : s.isDirectory() ? 'a directory' : 'a file'
  } catch {
    // Gone again: the message stays generic.
  }
  return new ReadtrailError('OUTPUT_EXISTS', `${flag} ${target} already exists (${what}); refusing to overwrite it or write through it (choose another path, or --force to replace a file)`, {
    cause,
    details: { path: target, kind: what.slice(2) },
  })
}

function unwritable(target: string, flag: string, cause: unknown): ReadtrailError {
  const errno = errnoOf(cause) ?? 'UNKNOWN'
  return new ReadtrailError('OUTPUT_UNWRITABLE', `cannot write ${flag} ${target}: ${(cause as Error).message}`, { cause, details: { path: target, errno } })
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' ? code : undefined
}
