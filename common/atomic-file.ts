import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs'
import { open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { PRIVATE_FILE_MODE } from './private-dir.js'

export interface ReplaceFileOptions {
  /**
   * The temporary file beside `path` (same directory, so the rename cannot
   * cross file systems). A fixed name lets a recovery step remove one a crash
   * left; the default carries the pid, so two processes replacing the same
   * file never write into one temporary file.
   * @default `${path}.${process.pid}.tmp`
   */
  tempPath?: string
}

/**
 * Replaces `path` with `text` atomically and durably: a private temporary
 * file, fsync'd, renamed over the path, then the directory fsync'd. A crash
 * leaves the old contents or the new, never a torn file; without the
 * directory fsync a crash could still bring back the old name.
 */
export async function replaceFile(path: string, text: string, options: ReplaceFileOptions = {}): Promise<void> {
  const temp = options.tempPath ?? defaultTempPath(path)
  const handle = await open(temp, 'w', PRIVATE_FILE_MODE)
  try {
    await handle.writeFile(text, 'utf8')
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, path)
  await syncDirectory(dirname(path))
}

/** replaceFile for callers that cannot wait: the same steps, synchronously. */
export function replaceFileSync(path: string, text: string, options: ReplaceFileOptions = {}): void {
  const temp = options.tempPath ?? defaultTempPath(path)
  const fd = openSync(temp, 'w', PRIVATE_FILE_MODE)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(temp, path)
  syncDirectorySync(dirname(path))
}

/**
 * fsyncs a directory. A file's name lives in its directory, not in the file:
 * without this a crash can lose a freshly created file, or a rename, even
 * though every byte inside the file was fsync'd.
 */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

function syncDirectorySync(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function defaultTempPath(path: string): string {
  return `${path}.${process.pid}.tmp`
}
