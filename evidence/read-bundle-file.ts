import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { ReadtrailError } from '../common/errors.js'
import { EVIDENCE_LIMITS } from './bundle.js'
import { EvidenceError } from './errors.js'

/**
 * O_NONBLOCK: opening a named pipe for reading otherwise waits for a writer
 * that may never come. On a regular file it changes nothing, and anything
 * else is refused after fstat, before a byte is read.
 */
const OPEN_FOR_CHECK = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)

/**
 * Reads an evidence bundle file someone handed over, which may be anything:
 * only a regular file is read (a FIFO would block, /dev/zero never ends, and
 * a directory is not a bundle), and at most `maxBytes` + 1 bytes of it, so
 * neither a lying size nor a file growing while it is read can make this
 * process hold more. The type and size come from fstat on the opened
 * descriptor, not from a stat of the path that a swap could outrun.
 *
 * EVIDENCE_INVALID for a file that cannot be a bundle; USAGE for a path
 * that cannot be opened (absent, no permission).
 */
export async function readBundleFile(path: string, maxBytes: number = EVIDENCE_LIMITS.fileBytes): Promise<string> {
  let handle: FileHandle
  try {
    handle = await open(path, OPEN_FOR_CHECK)
  } catch (cause) {
    const errno = (cause as NodeJS.ErrnoException).code ?? 'UNKNOWN'
    throw new ReadtrailError('USAGE', `cannot read ${path}: ${(cause as Error).message}`, { cause, details: { path, errno } })
  }
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) {
      throw invalid(path, `${path} is not a regular file (${kindOf(stat)}); an evidence bundle is a file`, 'not a regular file')
    }
    if (stat.size > maxBytes) {
      throw invalid(path, `${path} is ${stat.size} bytes, more than an evidence bundle may be (${maxBytes})`, `file larger than ${maxBytes} bytes`)
    }
    // One byte beyond the stated size tells a file that grew since fstat from one that did not.
    const room = stat.size + 1
    const buffer = Buffer.allocUnsafe(room)
    let length = 0
    while (length < room) {
      const { bytesRead } = await handle.read(buffer, length, room - length, length)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > stat.size) {
      throw invalid(path, `${path} grew while it was read (stated ${stat.size} bytes); copy it somewhere stable and verify the copy`, 'file changed while read')
    }
    return buffer.toString('utf8', 0, length)
  } catch (err) {
    if (err instanceof ReadtrailError) throw err
    const errno = (err as NodeJS.ErrnoException).code ?? 'UNKNOWN'
    throw new ReadtrailError('USAGE', `cannot read ${path}: ${(err as Error).message}`, { cause: err, details: { path, errno } })
  } finally {
    await handle.close()
  }
}

function invalid(path: string, message: string, problem: string): EvidenceError {
  return new EvidenceError('EVIDENCE_INVALID', message, { details: { path, issues: [{ key: '(root)', problem }] } })
}

function kindOf(stat: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (stat.isDirectory()) return 'a directory'
  if (stat.isFIFO()) return 'a named pipe'
  if (stat.isCharacterDevice()) return 'a character device'
  if (stat.isBlockDevice()) return 'a block device'
  if (stat.isSocket()) return 'a socket'
  return 'not a file'
}
