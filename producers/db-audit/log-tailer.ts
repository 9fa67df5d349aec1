import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { DbAuditError } from './errors.js'
import { identityOf, isSameFile, HEAD_BYTES, type FileIdentity } from './file-identity.js'
import { filesAfterLost, listLogFiles, type ListedLogFile, type LogLocation } from './log-files.js'
import { RecordFramer, type FramedItem, type Framing } from './record-framer.js'

export interface LogTailerOptions {
  location: LogLocation
  framing: Framing
  maxRecordBytes: number
  readChunkBytes: number
}

/** What one step of the tailer found. */
export type TailStep =
  /** Records (and oversize notices) of the current file, in order. */
  | { kind: 'items'; path: string; items: FramedItem[] }
  /** The current file is finished (a newer one exists and it has no more bytes): the next step reads `to` from its start. */
  | { kind: 'switched'; from: string | undefined; to: string; truncatedTail: { offset: number; bytes: number } | undefined }
  /** Nothing to read now (at the end of the newest file, or no file yet). */
  | { kind: 'idle' }

/** Something the reader must count and say while resuming. */
export type ResumeNotice =
  | { kind: 'lost'; path: string }
  | { kind: 'shrunk'; path: string; offset: number; size: number }

// O_NOFOLLOW: a symlink swapped in for a log file after it was listed is not followed.
// O_NONBLOCK: a FIFO planted there would otherwise block open().
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0)
// A file may be missing from one listing while it is renamed; it is looked for again before taken as gone.
const RELIST_ATTEMPTS = 3
const RELIST_WAIT_MS = 25

interface Current {
  handle: FileHandle
  path: string
  identity: FileIdentity
  framer: RecordFramer
}

/**
 * Follows a log across rotation, reading each file to its end before the
 * next: a file is finished only when a newer one exists and a read made
 * after seeing it returns nothing (a database writes only to its newest
 * file, so nothing more can come). The current file stays open, so a
 * rename or delete while it is read loses nothing. Bounded: one chunk
 * buffer and at most one record's bytes (RecordFramer).
 */
export class LogTailer {
  private current: Current | undefined
  private readonly buffer: Buffer
  /** After a lost file: only files sorting after it may be opened (directory logs). */
  private lostPath: string | undefined

  constructor(private readonly options: LogTailerOptions) {
    this.buffer = Buffer.alloc(options.readChunkBytes)
  }

  /**
   * Takes up the file `file` at `offset` (a record boundary), or the oldest
   * (start 'beginning') or newest file's end (start 'end') when there is no
   * position. Returns what was found wrong on the way.
   */
  async resume(file: FileIdentity | null, offset: number, start: 'beginning' | 'end'): Promise<ResumeNotice[]> {
    if (file === null) {
      if (start === 'end') {
        const files = await listLogFiles(this.options.location)
        const newest = files[files.length - 1]
        const opened = newest && (await this.openListed(newest))
        if (opened) this.adopt(opened.handle, opened.path, await identityOf(opened.handle, opened.path), Number((await opened.handle.stat()).size))
      }
      return []
    }
    for (let attempt = 0; attempt < RELIST_ATTEMPTS; attempt++) {
      for (const candidate of await listLogFiles(this.options.location)) {
        if (candidate.dev.toString() !== file.dev || candidate.ino.toString() !== file.ino) continue
        const handle = await this.openHandle(candidate.path)
        if (!handle) continue
        if (!(await isSameFile(handle, file))) {
          await handle.close()
          continue
        }
        const size = Number((await handle.stat()).size)
        if (size < offset) {
          // Shrunk below what was read: truncated and rewritten in place; what it holds now is new.
          this.adopt(handle, candidate.path, await identityOf(handle, candidate.path), 0)
          return [{ kind: 'shrunk', path: candidate.path, offset, size }]
        }
        this.adopt(handle, candidate.path, file, offset)
        return []
      }
      await sleep(RELIST_WAIT_MS)
    }
    this.lostPath = file.path
    return [{ kind: 'lost', path: file.path }]
  }

  /** The current file and the identity to store with a position in it (its head re-hashed while shorter than HEAD_BYTES). */
  async currentIdentity(): Promise<FileIdentity | null> {
    const c = this.current
    if (!c) return null
    if (c.identity.head_len < HEAD_BYTES) c.identity = await identityOf(c.handle, c.path)
    return c.identity
  }

  /** Offset after the last record handed out of the current file (0 with none). */
  get consumed(): number {
    return this.current?.framer.consumed ?? 0
  }

  async step(): Promise<TailStep> {
    const c = this.current
    if (!c) return this.openFirst()
    const items = await this.readChunk(c)
    if (items) return { kind: 'items', path: c.path, items }
    // At the end of the current file: finished only if a newer one exists and a read after seeing it finds nothing more.
    const next = await this.nextFile(c)
    if (!next) return { kind: 'idle' }
    const more = await this.readChunk(c)
    if (more) return { kind: 'items', path: c.path, items: more }
    const pending = c.framer.pendingBytes
    const truncatedTail = pending > 0 ? { offset: c.framer.consumed, bytes: pending } : undefined
    const opened = await this.openListed(next)
    // Gone before it could be opened (deleted by the server's own rotation limit): the next step looks again.
    if (!opened) return { kind: 'idle' }
    await c.handle.close().catch(() => {})
    this.adopt(opened.handle, opened.path, await identityOf(opened.handle, opened.path), 0)
    return { kind: 'switched', from: c.path, to: opened.path, truncatedTail }
  }

  /**
   * Opens the file `listed` describes, by identity, not by name: between the
   * listing and the open, a rotation can move another file to that name
   * (server_audit renames path.1 to path.2, then path to path.1), and
   * opening the name alone would skip a whole file.
   */
  private async openListed(listed: ListedLogFile): Promise<{ handle: FileHandle; path: string } | undefined> {
    let target: ListedLogFile | undefined = listed
    for (let attempt = 0; attempt < RELIST_ATTEMPTS * 4 && target; attempt++) {
      const handle = await this.openHandle(target.path)
      if (handle) {
        const stat = await handle.stat({ bigint: true })
        if (stat.dev === listed.dev && stat.ino === listed.ino) return { handle, path: target.path }
        await handle.close()
      }
      target = (await listLogFiles(this.options.location)).find((f) => f.dev === listed.dev && f.ino === listed.ino)
    }
    return undefined
  }

  async close(): Promise<void> {
    await this.closeCurrent()
  }

  /** Reads one chunk; undefined at end of file. A chunk of bytes that completes no record yields an empty list. */
  private async readChunk(c: Current): Promise<FramedItem[] | undefined> {
    let bytesRead: number
    try {
      ;({ bytesRead } = await c.handle.read(this.buffer, 0, this.buffer.length, c.framer.position))
    } catch (cause) {
      throw new DbAuditError('DB_AUDIT_LOG_UNAVAILABLE', `cannot read the audit log ${c.path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause, details: { path: c.path } })
    }
    if (bytesRead === 0) return undefined
    return c.framer.push(this.buffer.subarray(0, bytesRead))
  }

  private async nextFile(c: Current): Promise<ListedLogFile | undefined> {
    for (let attempt = 0; ; attempt++) {
      const files = await listLogFiles(this.options.location)
      const index = files.findIndex((f) => f.dev.toString() === c.identity.dev && f.ino.toString() === c.identity.ino)
      if (index >= 0) {
        // Renamed by a rotation while being read: entries read from now on name the file as it is now called.
        c.path = files[index]!.path
        return files[index + 1]
      }
      if (attempt + 1 >= RELIST_ATTEMPTS) return filesAfterLost(this.options.location, files, c.path).find((f) => f.dev.toString() !== c.identity.dev || f.ino.toString() !== c.identity.ino)
      await sleep(RELIST_WAIT_MS)
    }
  }

  private async openFirst(): Promise<TailStep> {
    let files = await listLogFiles(this.options.location)
    if (this.lostPath !== undefined) files = filesAfterLost(this.options.location, files, this.lostPath)
    const first = files[0]
    if (!first) return { kind: 'idle' }
    const opened = await this.openListed(first)
    if (!opened) return { kind: 'idle' }
    this.adopt(opened.handle, opened.path, await identityOf(opened.handle, opened.path), 0)
    this.lostPath = undefined
    return { kind: 'switched', from: undefined, to: opened.path, truncatedTail: undefined }
  }

  private async openHandle(path: string): Promise<FileHandle | undefined> {
    let handle: FileHandle
    try {
      handle = await open(path, OPEN_FLAGS)
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code
      // Renamed or deleted since it was listed (rotation): the next listing finds it.
      if (code === 'ENOENT' || code === 'ELOOP') return undefined
      throw new DbAuditError('DB_AUDIT_LOG_UNAVAILABLE', `cannot open the audit log ${path}: ${code ?? (cause as Error).message}`, { cause, details: { path } })
    }
    if (!(await handle.stat()).isFile()) {
      await handle.close()
      return undefined
    }
    return handle
  }

  private adopt(handle: FileHandle, path: string, identity: FileIdentity, offset: number): void {
    this.current = { handle, path, identity, framer: new RecordFramer(this.options.framing, this.options.maxRecordBytes, offset) }
  }

  private async closeCurrent(): Promise<void> {
    const c = this.current
    this.current = undefined
    await c?.handle.close().catch(() => {})
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
