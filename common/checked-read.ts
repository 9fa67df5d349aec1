import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'

/** What a file must be before readtrail reads a secret or a trust decision from it. */
export interface CheckedReadRules {
  /** Largest file read; a larger one is refused before a byte of it is parsed. */
  maxBytes: number
  /**
   * Permission bits group and others must not hold: 0o077 for a secret (no
   * one else may read it), 0o022 for a file whose contents are trusted (no
   * one else may write it).
   */
  forbiddenModeBits: number
  /** Accept a file owned by root besides one owned by the current user (a file an administrator installed). */
  rootMayOwn: boolean
}

/** Why a file was refused; each caller turns it into its own coded error naming the path. */
export interface FileRefusal {
  problem: 'missing' | 'unreadable' | 'not-a-file' | 'too-large' | 'open-mode' | 'foreign-owner'
  /** A sentence about the file, without its path and without its contents. */
  message: string
  cause?: unknown
}

// O_NONBLOCK: a FIFO planted at the path would otherwise block open() until
// someone writes to it. It changes nothing for a regular file.
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)

/**
 * Reads `path` whole after checking, on the descriptor that is then read
 * (so a file swapped between the check and the read is the one checked),
 * that it is a regular file, within `maxBytes`, owned by the current user
 * (or root, when allowed) and free of the forbidden permission bits.
 * Symlinks are followed: secret mounts (Kubernetes, Vault agents) are links,
 * and the checks apply to the file they lead to. The read itself stops at
 * `maxBytes + 1`, so a file that grows after fstat is still refused unread.
 * The caller owns the returned bytes and may zero them once parsed.
 */
export function readCheckedFile(path: string, rules: CheckedReadRules, refuse: (refusal: FileRefusal) => Error): Buffer {
  let fd: number
  try {
    fd = openSync(path, READ_FLAGS)
  } catch (cause) {
    const errno = (cause as NodeJS.ErrnoException).code
    if (errno === 'ENOENT') throw refuse({ problem: 'missing', message: 'does not exist', cause })
    throw refuse({ problem: 'unreadable', message: `cannot be opened (${errno ?? (cause as Error).message})`, cause })
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw refuse({ problem: 'not-a-file', message: 'is not a regular file' })
    if (process.platform !== 'win32') {
      const mode = stat.mode & 0o777
      if ((mode & rules.forbiddenModeBits) !== 0) {
        const fix = (rules.forbiddenModeBits & 0o044) !== 0 ? 'chmod 600' : 'chmod go-w'
        throw refuse({ problem: 'open-mode', message: `has mode ${mode.toString(8).padStart(3, '0')}, which lets group or others ${rules.forbiddenModeBits & 0o044 ? 'read or write' : 'write'} it; run ${fix} on it` })
      }
      const uid = process.getuid?.()
      if (uid !== undefined && stat.uid !== uid && !(rules.rootMayOwn && stat.uid === 0)) {
        throw refuse({ problem: 'foreign-owner', message: `is owned by uid ${stat.uid}, not by the current user (uid ${uid})${rules.rootMayOwn ? ' or root' : ''}` })
      }
    }
    if (stat.size > rules.maxBytes) throw tooLarge(stat.size, rules.maxBytes, refuse)
    return readAtMost(fd, rules.maxBytes, refuse)
  } finally {
    closeSync(fd)
  }
}

function readAtMost(fd: number, maxBytes: number, refuse: (refusal: FileRefusal) => Error): Buffer {
  const buffer = Buffer.alloc(maxBytes + 1)
  let length = 0
  for (;;) {
    let n: number
    try {
      n = readSync(fd, buffer, length, buffer.length - length, null)
    } catch (cause) {
      throw refuse({ problem: 'unreadable', message: `cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, cause })
    }
    if (n === 0) break
    length += n
    if (length > maxBytes) {
      buffer.fill(0)
      throw tooLarge(length, maxBytes, refuse)
    }
  }
  const contents = Buffer.from(buffer.subarray(0, length))
  buffer.fill(0)
  return contents
}

function tooLarge(size: number, maxBytes: number, refuse: (refusal: FileRefusal) => Error): Error {
  return refuse({ problem: 'too-large', message: `is larger than the ${maxBytes} bytes it may be (${size} bytes read or reported)` })
}
