import { lstat, readdir } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { DbAuditError } from './errors.js'

/**
 * Where a database writes its audit log, and how it moves on to a new file:
 * - `directory`: every file with the extension in one directory, oldest
 *   first by name (PostgreSQL's log_filename, e.g. postgresql-%Y%m%d-%H%M%S,
 *   must then sort by time, as its default does);
 * - `rotated`: one path, renamed to path.1, path.2… when rotated (MariaDB
 *   server_audit, logrotate without copytruncate): the highest number is
 *   the oldest, the bare path the newest; the number may be zero-padded.
 */
export type LogLocation = { kind: 'directory'; dir: string; extension: string } | { kind: 'rotated'; path: string }

/** A log file as listed: where it is now and what it is (device and inode survive a rename). */
export interface ListedLogFile {
  path: string
  dev: bigint
  ino: bigint
  size: number
}

/** Listings tried before the last one is taken even though a rotation moved files under it. */
const MAX_LISTING_TRIES = 20

/**
 * The location's regular files, oldest first. Symlinks and anything else are
 * left out: a link planted in a log directory could lead the reader to any
 * file it can read.
 *
 * A rotation that renames files between the directory read and the stats
 * (path.1 → path.2 while path.1 is being looked at) would show one file
 * twice and another not at all, and the reader would skip what it holds:
 * the listing is taken again until two in a row agree.
 */
export async function listLogFiles(location: LogLocation): Promise<ListedLogFile[]> {
  let previous = await listOnce(location)
  for (let i = 0; i < MAX_LISTING_TRIES; i++) {
    const next = await listOnce(location)
    if (sameListing(previous, next)) return next
    previous = next
  }
  return previous
}

function sameListing(a: readonly ListedLogFile[], b: readonly ListedLogFile[]): boolean {
  return a.length === b.length && a.every((f, i) => f.path === b[i]!.path && f.dev === b[i]!.dev && f.ino === b[i]!.ino)
}

async function listOnce(location: LogLocation): Promise<ListedLogFile[]> {
  const dir = location.kind === 'directory' ? location.dir : dirname(location.path)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (cause) {
    throw new DbAuditError('DB_AUDIT_LOG_UNAVAILABLE', `cannot list the audit log directory ${dir}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause, details: { dir } })
  }
  const ranked: { name: string; rank: number }[] = []
  if (location.kind === 'directory') {
    for (const name of names) if (name.endsWith(location.extension) && name.length > location.extension.length) ranked.push({ name, rank: 0 })
    ranked.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  } else {
    const base = basename(location.path)
    for (const name of names) {
      if (name === base) ranked.push({ name, rank: 0 })
      else if (name.startsWith(`${base}.`)) {
        const suffix = name.slice(base.length + 1)
        // server_audit pads the number to the width of server_audit_file_rotations (path.01 … path.50).
        if (/^\d{1,6}$/.test(suffix) && Number(suffix) > 0) ranked.push({ name, rank: Number(suffix) })
      }
    }
    ranked.sort((a, b) => b.rank - a.rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }
  const files: ListedLogFile[] = []
  const seen = new Set<string>()
  for (const { name } of ranked) {
    const path = join(dir, name)
    const stat = await lstat(path, { bigint: true }).catch(() => undefined)
    // Gone between readdir and lstat (rotated away this instant): the next listing has it under its new name.
    if (!stat || !stat.isFile()) continue
    // The same file listed twice (renamed between readdir and lstat) is one file.
    const id = `${stat.dev}:${stat.ino}`
    if (seen.has(id)) continue
    seen.add(id)
    files.push({ path, dev: stat.dev, ino: stat.ino, size: Number(stat.size) })
  }
  return files
}

/**
 * The listed files that may still hold unread entries when the file the
 * reader was in is gone: in a directory, those sorting after its name; for a
 * rotated path, all of them (the oldest are deleted first, so whatever is
 * left is newer than a file rotated away).
 */
export function filesAfterLost(location: LogLocation, files: readonly ListedLogFile[], lostPath: string): ListedLogFile[] {
  if (location.kind === 'rotated') return [...files]
  const lost = basename(lostPath)
  return files.filter((f) => basename(f.path) > lost)
}
