import { open, readFile, stat, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { syncDirectory } from '../common/atomic-file.js'
import { isReadtrailError } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import { ensurePrivateDirectory, PRIVATE_FILE_MODE } from '../common/private-dir.js'
import { namedIssues } from '../common/zod-issues.js'
import { formatCheckpointLine, SignedCheckpoint } from './checkpoint.js'
import { CheckpointError } from './errors.js'

/** The append-only JSON-lines file of signed checkpoints: the primary copy, kept outside ClickHouse. */
export interface CheckpointLog {
  /** Appends one line per checkpoint in a single write, then fsyncs: once this resolves they survive a crash. */
  append(cps: readonly SignedCheckpoint[]): Promise<void>
  close(): Promise<void>
}

export interface CheckpointLogContents {
  /** True when the file does not exist (no checkpoint was ever written there). */
  missing: boolean
  /** Lines that parsed as checkpoints, in file order; `line` is 1-based. */
  entries: { line: number; checkpoint: SignedCheckpoint }[]
  /** Lines that did not, with why. */
  unreadable: { line: number; problem: string }[]
}

// A checkpoint line is about 560 bytes; anything far longer is not one, and
// is rejected before JSON.parse spends time on it.
const MAX_LINE_CHARS = 8 * 1024
const TAIL_CHUNK = 64 * 1024
const NEWLINE = 0x0a

function unavailable(path: string, what: string, cause: unknown): CheckpointError {
  return new CheckpointError('CHECKPOINT_LOG_UNAVAILABLE', `checkpoint log ${path}: ${what}: ${(cause as Error).message}`, { cause, details: { path } })
}

/**
 * Opens (creating if needed) the checkpoint log for appending. A last line
 * without its newline is a write a crash tore: it was never fsync'd, so the
 * signer never went on to publish it, and it is cut off here rather than
 * left to glue itself onto the next line.
 *
 * Its directory is created 0700 and the file 0600, and an existing directory
 * others can reach is refused (DIRECTORY_NOT_PRIVATE): whoever can write
 * there can replace the file a verifier trusts.
 */
export async function openCheckpointLog(path: string, logger?: Logger): Promise<CheckpointLog> {
  const log = logger?.child({ component: 'checkpoint-log' })
  let handle: FileHandle
  try {
    // A path naming a directory is a wrong setting: say so, rather than ask for a chmod of its parent.
    if ((await stat(path).catch(() => undefined))?.isDirectory()) throw new Error('not a regular file')
    ensurePrivateDirectory({ dir: dirname(path), holds: 'the checkpoint log' })
  } catch (cause) {
    if (isReadtrailError(cause)) throw cause
    throw unavailable(path, 'cannot open', cause)
  }
  try {
    try {
      handle = await open(path, 'ax+', PRIVATE_FILE_MODE)
      // The new file's name lives in the directory: without this a crash could lose the file with every checkpoint fsync'd into it.
      await syncDirectory(dirname(path))
      log?.info({ path }, 'checkpoint log created')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      handle = await open(path, 'a+')
    }
  } catch (cause) {
    throw unavailable(path, 'cannot open', cause)
  }
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) throw new Error('not a regular file')
    const keep = await lengthOfCompleteLines(handle, stat.size)
    if (keep < stat.size) {
      await handle.truncate(keep)
      await handle.sync()
      log?.warn({ path, bytes_dropped: stat.size - keep, kept_bytes: keep }, 'checkpoint log ended in a torn line (a write interrupted by a crash, never published); truncated it')
    }
  } catch (cause) {
    await handle.close().catch(() => {})
    throw unavailable(path, 'cannot check its last line', cause)
  }

  let closed = false
  // After a failed write or fsync the file's tail (and, on Linux, whether
  // earlier pages reached the disk) is unknown, so nothing more is appended
  // to it from this process; reopening truncates any torn tail.
  let broken: CheckpointError | undefined

  return {
    async append(cps) {
      if (closed) throw new CheckpointError('CHECKPOINT_LOG_UNAVAILABLE', `checkpoint log ${path} is closed`, { details: { path } })
      if (broken) throw broken
      if (cps.length === 0) return
      const bytes = Buffer.from(cps.map((cp) => `${formatCheckpointLine(cp)}\n`).join(''), 'utf8')
      try {
        // Opened in append mode: every write lands at the end whatever the position.
        let written = 0
        while (written < bytes.length) {
          const { bytesWritten } = await handle.write(bytes, written, bytes.length - written)
          written += bytesWritten
        }
        await handle.sync()
      } catch (cause) {
        broken = unavailable(path, 'write or fsync failed; restart to reopen it', cause)
        throw broken
      }
    },
    async close() {
      if (closed) return
      closed = true
      try {
        await handle.close()
      } catch (cause) {
        throw unavailable(path, 'cannot close', cause)
      }
    },
  }
}

/** Bytes up to and including the file's last newline. */
async function lengthOfCompleteLines(handle: FileHandle, size: number): Promise<number> {
  const buf = Buffer.alloc(TAIL_CHUNK)
  let end = size
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK)
    const { bytesRead } = await handle.read(buf, 0, end - start, start)
    const at = buf.subarray(0, bytesRead).lastIndexOf(NEWLINE)
    if (at >= 0) return start + at + 1
    end = start
  }
  return 0
}

/**
 * Reads every checkpoint in the file. Each line is treated as
 * attacker-controlled: a line that is not a well-formed signed checkpoint is
 * reported in `unreadable` with the reason, never thrown, so one bad line
 * cannot hide the rest from a verifier.
 */
export async function readCheckpointLog(path: string): Promise<CheckpointLogContents> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true, entries: [], unreadable: [] }
    throw unavailable(path, 'cannot read', cause)
  }
  const out: CheckpointLogContents = { missing: false, entries: [], unreadable: [] }
  if (text === '') return out
  const lines = text.split('\n')
  // split leaves '' after a final newline; anything else there is a line the writer never finished.
  const torn = lines.pop()
  lines.forEach((raw, i) => {
    const parsed = parseCheckpointText(raw)
    if (parsed.ok) out.entries.push({ line: i + 1, checkpoint: parsed.checkpoint })
    else out.unreadable.push({ line: i + 1, problem: parsed.problem })
  })
  if (torn !== undefined && torn !== '') out.unreadable.push({ line: lines.length + 1, problem: 'last line has no newline (a write torn by a crash, or appended by something else)' })
  return out
}

/** Parses one checkpoint's JSON text from an untrusted source (file line or Kafka message). */
export function parseCheckpointText(raw: string): { ok: true; checkpoint: SignedCheckpoint } | { ok: false; problem: string } {
  if (raw.trim() === '') return { ok: false, problem: 'empty line' }
  if (raw.length > MAX_LINE_CHARS) return { ok: false, problem: `${raw.length} characters, more than a checkpoint's ${MAX_LINE_CHARS}` }
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch (err) {
    return { ok: false, problem: `not JSON: ${(err as Error).message}` }
  }
  const result = SignedCheckpoint.safeParse(json)
  if (!result.success) return { ok: false, problem: `not a signed checkpoint: ${namedIssues(result.error).map((i) => `${i.key}: ${i.problem}`).join('; ')}` }
  return { ok: true, checkpoint: result.data }
}
