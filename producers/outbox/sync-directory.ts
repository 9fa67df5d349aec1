import { open } from 'node:fs/promises'

/**
 * fsyncs a directory. A file's name lives in its directory, not in the file:
 * without this a crash can lose a freshly created segment, or a rename, even
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
