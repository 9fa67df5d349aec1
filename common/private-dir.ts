import { mkdirSync, statSync } from 'node:fs'
import { ReadtrailError } from './errors.js'

/** Owner-only permissions for every directory readtrail creates. */
export const PRIVATE_DIR_MODE = 0o700
/** Owner-only permissions for every file readtrail creates. */
export const PRIVATE_FILE_MODE = 0o600

/** A directory readtrail keeps its state in, and what to tell the operator about it. */
export interface StateDirectory {
  dir: string
  /** What readtrail keeps there, e.g. 'the embedded store' or 'the checkpoint log'. */
  holds: string
  /** The setting that moves it elsewhere, e.g. 'READTRAIL_DATA_DIR'; named in the error. */
  setting?: string
}

/** An existing directory that group or others can reach, with its permission bits. */
export interface OpenDirectory extends StateDirectory {
  /** Permission bits in octal, e.g. '755'. */
  mode: string
}

/**
 * Creates `dir` (and missing parents) 0700, or checks the existing one:
 * mkdir's mode applies only to directories it creates, so one left 0755 by an
 * older version or by hand would keep the log readable to every local user.
 * Throws DIRECTORY_NOT_PRIVATE naming the chmod that fixes it.
 */
export function ensurePrivateDirectory(location: StateDirectory): void {
  // A creation failure (a file in the way, no permission) is left to the caller's own coded error.
  mkdirSync(location.dir, { recursive: true, mode: PRIVATE_DIR_MODE })
  assertPrivateDirectories([location])
}

/**
 * Checks every existing directory in `locations` (missing ones are skipped:
 * they will be created 0700) and throws one DIRECTORY_NOT_PRIVATE listing
 * all that group or others can read, write or enter, so one chmod fixes them
 * all. A directory named twice is reported once with everything it holds.
 */
export function assertPrivateDirectories(locations: readonly StateDirectory[]): void {
  const open = findOpenDirectories(locations)
  if (open.length > 0) throw notPrivate(open)
}

/** The existing directories in `locations` that group or others can reach, each once. */
export function findOpenDirectories(locations: readonly StateDirectory[]): OpenDirectory[] {
  const byDir = new Map<string, OpenDirectory>()
  for (const location of locations) {
    const seen = byDir.get(location.dir)
    if (seen) {
      seen.holds = `${seen.holds}, ${location.holds}`
      if (location.setting && !seen.setting?.split(', ').includes(location.setting)) seen.setting = seen.setting ? `${seen.setting}, ${location.setting}` : location.setting
      continue
    }
    const mode = openModeOf(location.dir)
    if (mode !== undefined) byDir.set(location.dir, { ...location, mode })
  }
  return [...byDir.values()]
}

/** The octal mode of `dir` when group or others have any bit on it; undefined when private or missing. */
function openModeOf(dir: string): string | undefined {
  if (process.platform === 'win32') return undefined
  const stat = statSync(dir, { throwIfNoEntry: false })
  if (stat === undefined || (stat.mode & 0o077) === 0) return undefined
  return (stat.mode & 0o7777).toString(8)
}

function notPrivate(open: readonly OpenDirectory[]): ReadtrailError {
  const listed = open.map((d) => `${d.dir} (mode ${d.mode}, holds ${d.holds})`).join('; ')
  const settings = open.flatMap((d) => (d.setting ? [d.setting] : []))
  const fix = `run chmod 700 ${open.map((d) => shellWord(d.dir)).join(' ')}${settings.length > 0 ? `, or point ${settings.join(', ')} at a private directory` : ''}`
  return new ReadtrailError('DIRECTORY_NOT_PRIVATE', `group or others can reach ${open.length === 1 ? 'a directory' : 'directories'} readtrail keeps private: ${listed}; ${fix}`, {
    details: { directories: open.map((d) => ({ dir: d.dir, mode: d.mode, holds: d.holds })) },
  })
}

/** Quotes a path for the suggested command when the shell would split or expand it. */
function shellWord(path: string): string {
  return /^[\w./+,:@%-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`
}
