import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { open, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { assertPrivateDirectories, PRIVATE_FILE_MODE } from '../common/private-dir.js'

/**
 * Private files that carry an insert's bytes to the embedded engine. chDB's
 * client reads an insert body as UTF-8 text, which would mangle RowBinary;
 * the engine reads a file `FROM INFILE` as the bytes they are.
 *
 * The files hold audit rows (principals, record ids), so they live in a
 * directory only this user can enter, made by mkdtemp under a random name
 * inside the store's own data directory (itself private, and owned by this
 * process alone: store/owner-lock.ts), and each file is created exclusively
 * (O_CREAT | O_EXCL: a name that exists, a symlink included, is refused
 * rather than followed) with mode 0600.
 */
export interface InsertFiles {
  /** Writes `bytes` to a new private file, runs `use` with its path, and removes the file however `use` ends. */
  withFile<T>(bytes: Uint8Array, use: (path: string) => Promise<T>): Promise<T>
  /** The directory, once the first file made it; undefined before. */
  readonly dir: string | undefined
  /** Removes the directory and anything a crash of `use` left in it. */
  remove(): void
}

const PREFIX = 'readtrail-insert-'

/**
 * One directory per store, made in `parent` on first use: a store that only
 * reads never creates it. Its name carries the pid, so removeStaleInsertDirs
 * can tell a directory a crashed owner left from this process's own.
 */
export function createInsertFiles(parent: string): InsertFiles {
  let dir: string | undefined
  const ensureDir = (): string => {
    if (dir === undefined) {
      // mkdtemp creates the directory 0700 under a name no one could guess
      // beforehand; the check catches an umask or file system that widened it.
      const made = mkdtempSync(join(parent, `${PREFIX}${process.pid}-`))
      assertPrivateDirectories([{ dir: made, holds: 'rows being inserted into the embedded store' }])
      dir = made
    }
    return dir
  }
  return {
    get dir() {
      return dir
    },
    async withFile<T>(bytes: Uint8Array, use: (path: string) => Promise<T>): Promise<T> {
      const path = join(ensureDir(), `${randomUUID()}.bin`)
      const handle = await open(path, 'wx', PRIVATE_FILE_MODE)
      try {
        try {
          // No fsync: the file lives for one insert, and a crash loses the insert anyway.
          await handle.writeFile(bytes)
        } finally {
          await handle.close()
        }
        return await use(path)
      } finally {
        await unlink(path).catch(() => {})
      }
    },
    remove() {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
      dir = undefined
    },
  }
}

/**
 * Removes insert directories another process left in `parent` (a crash
 * between writing a file and unlinking it): they hold audit rows nobody will
 * insert. Only for a directory this process owns exclusively, so no other
 * live process can be using one.
 */
export function removeStaleInsertDirs(parent: string): void {
  const own = `${PREFIX}${process.pid}-`
  for (const name of readdirSync(parent)) {
    if (name.startsWith(PREFIX) && !name.startsWith(own)) rmSync(join(parent, name), { recursive: true, force: true })
  }
}

/**
 * A ClickHouse string literal of `text`, for the one place SQL cannot take a
 * bound parameter (FROM INFILE's file name). Backslash and quote are the two
 * characters the literal's syntax gives meaning to.
 */
export function quoteStringLiteral(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}
