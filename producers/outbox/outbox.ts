import { open, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { parseConfig } from '../../common/config.js'
import { isReadtrailError } from '../../common/errors.js'
import { ensurePrivateDirectory, PRIVATE_FILE_MODE } from '../../common/private-dir.js'
import { componentLogger, silentLogger, type Logger } from '../../common/logger.js'
import { writeCursorFile } from './cursor-file.js'
import { OutboxError, outboxUnavailable } from './errors.js'
import { acquireOutboxLock } from './outbox-lock.js'
import { encodeFrames, FRAME_OVERHEAD_MAX, readFrame } from './record-frame.js'
import { recoverOutbox } from './recover-outbox.js'
import { segmentEnd, segmentFileName, type Segment } from './segment.js'
import { syncDirectory } from '../../common/atomic-file.js'

const MiB = 1024 * 1024

/** Defaults of OutboxOptions, in one place. */
export const OUTBOX_DEFAULTS = Object.freeze({
  maxBytes: 256 * MiB,
  segmentBytes: 16 * MiB,
})

/** Options of openOutbox, validated once and frozen. */
export const OutboxOptions = z
  .object({
    /**
     * Directory of this outbox, created 0700 if missing (its files are 0600);
     * an existing one that group or others can reach is refused with
     * DIRECTORY_NOT_PRIVATE, since the events in it name who read what. One
     * process per directory: each worker needs its own.
     */
    dir: z.string().min(1),
    /**
     * Bound on the framed bytes of undelivered records. An append that would
     * pass it is refused whole with OUTBOX_FULL, so a long broker outage
     * cannot fill the disk. @default 268435456 (256 MiB)
     */
    maxBytes: z.number().int().min(1024).max(Number.MAX_SAFE_INTEGER).default(OUTBOX_DEFAULTS.maxBytes),
    /**
     * A write that would take the current segment file past this size goes to
     * a new one. Delivered space is freed a whole segment at a time, so
     * smaller segments free it sooner; larger ones mean fewer files and
     * directory fsyncs. @default 16777216 (16 MiB)
     */
    segmentBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * MiB)
      .default(OUTBOX_DEFAULTS.segmentBytes),
  })
  .strict()

export type OutboxOptions = z.output<typeof OutboxOptions>

export interface OutboxMessage {
  key: Buffer | null
  value: Buffer
}

export interface StoredMessage extends OutboxMessage {
  position: bigint
}

export interface OutboxStats {
  /** Durable records not yet acknowledged. */
  pendingMessages: number
  /** Their framed bytes on disk; appends are refused once this would pass maxBytes. */
  pendingBytes: number
  /** Segment files in the directory (set-aside `.corrupt` files not counted). */
  segments: number
  /** Undelivered records found corrupt on open and set aside: events that will never reach Kafka from here. */
  lostMessages: number
}

export interface Outbox {
  readonly dir: string
  /**
   * Appends in order and resolves only after write + fsync: then the messages
   * survive SIGKILL and power loss. Positions are consecutive. Concurrent
   * calls are serialised (group commit: appends waiting while a write+fsync
   * is in flight share the next one). Rejects OUTBOX_FULL (nothing written)
   * if pendingBytes + the new framed bytes > maxBytes; OUTBOX_UNAVAILABLE on
   * any fs error (nothing reported durable, no position used). An empty batch
   * writes nothing and resolves with `last = first - 1`.
   */
  append(messages: readonly OutboxMessage[]): Promise<{ first: bigint; last: bigint }>
  /** Next position not yet acknowledged (where replay starts). */
  cursor(): bigint
  /** Next position append will assign. cursor() === end() means nothing pending. */
  end(): bigint
  /**
   * Durable messages from `from` (>= cursor; a smaller value reads from the
   * cursor) in position order, at most maxMessages and (after the first)
   * maxBytes of values+keys. Safe to call while appends run. Positions lost
   * to corruption are skipped. A record whose checksum no longer matches
   * rejects with OUTBOX_CORRUPT.
   */
  read(from: bigint, maxMessages: number, maxBytes: number): Promise<StoredMessage[]>
  /**
   * Everything up to and including `through` was delivered: persists the
   * cursor (write temp file, fsync, rename, fsync dir) and deletes segment
   * files wholly below the cursor, the last one too once no append is
   * writing (else at close). `through` >= end() is a RangeError: it
   * would mark records not yet written as delivered.
   */
  acknowledge(through: bigint): Promise<void>
  stats(): OutboxStats
  /** Waits for appends in flight, then releases the directory lock. */
  close(): Promise<void>
}

export interface OutboxDeps {
  logger?: Logger
}

interface AppendRequest {
  bytes: Buffer
  lengths: number[]
  resolve: (range: { first: bigint; last: bigint }) => void
  reject: (err: Error) => void
}

interface ActiveSegment {
  segment: Segment
  handle: FileHandle
}

/**
 * Opens (creating if needed) the outbox in `options.dir`: takes the
 * directory lock, then recovers what a previous run left (see
 * recoverOutbox). Records are framed with a CRC-32 into segment files named
 * by their first position; an in-memory index of every durable record's
 * segment and offset serves reads without rescanning files.
 */
export async function openOutbox(options: z.input<typeof OutboxOptions>, deps: OutboxDeps = {}): Promise<Outbox> {
  const config = parseConfig(OutboxOptions, options, 'outbox')
  const dir = config.dir
  const logger = componentLogger(deps.logger ?? silentLogger(), 'outbox', { dir })

  try {
    // Modes passed explicitly: the SDK runs inside someone else's process and leaves its umask alone.
    ensurePrivateDirectory({ dir, holds: 'an audit outbox' })
  } catch (cause) {
    if (isReadtrailError(cause)) throw cause
    throw outboxUnavailable(dir, 'cannot create the directory', cause)
  }
  const lock = await acquireOutboxLock(dir, logger)
  let recovered
  try {
    recovered = await recoverOutbox(dir, logger)
  } catch (cause) {
    await lock.release().catch(() => {})
    throw cause instanceof OutboxError ? cause : outboxUnavailable(dir, 'cannot recover the outbox', cause)
  }

  const segments = recovered.segments
  let end = recovered.end
  let cursor = skipLost(recovered.cursor)
  // The cursor the cursor file holds: a segment is deleted only below it, so
  // the file always remembers positions as used after their records are gone.
  let durableCursor = recovered.cursor
  const lostMessages = recovered.lostMessages
  if (segments.length > 0 || lostMessages > 0) {
    logger.info({ pending_messages: countPending(), pending_bytes: countPendingBytes(), lost_messages: lostMessages, cursor: cursor.toString(), end: end.toString() }, 'outbox opened with undelivered records')
  }

  let active: ActiveSegment | undefined
  let queue: AppendRequest[] = []
  // Framed bytes accepted by append but not yet durable: counted against
  // maxBytes so concurrent appends cannot overshoot it together.
  let reservedBytes = 0
  let committing: Promise<void> | undefined
  let commitRunning = false
  // After a failed write whose torn bytes could not be cut off, nothing more
  // is appended here: the next open truncates them.
  let broken: OutboxError | undefined
  let acknowledging: Promise<void> = Promise.resolve()
  let closed = false

  /** Skips positions that were lost to corruption: they are never pending. */
  function skipLost(position: bigint): bigint {
    for (const segment of segments) {
      if (position < segment.first) return segment.first
      if (position < segmentEnd(segment)) return position
    }
    return position < end ? end : position
  }

  function countPending(): number {
    let count = 0
    for (const segment of segments) {
      const last = segmentEnd(segment)
      if (last > cursor) count += Number(last - (cursor > segment.first ? cursor : segment.first))
    }
    return count
  }

  function countPendingBytes(): number {
    let bytes = 0
    for (const segment of segments) {
      if (segmentEnd(segment) <= cursor) continue
      const from = cursor > segment.first ? segment.offsets[Number(cursor - segment.first)]! : 0
      bytes += segment.size - from
    }
    return bytes
  }

  function makeClosedError(): OutboxError {
    return new OutboxError('OUTBOX_UNAVAILABLE', `outbox ${dir} is closed`, { details: { dir, closed: true } })
  }

  /** The segment the next `bytes` go into: the current one, or a new one named after `end`. */
  async function chooseSegment(bytes: number): Promise<ActiveSegment> {
    const fits = (segment: Segment) => segment.size === 0 || segment.size + bytes <= config.segmentBytes
    if (active && fits(active.segment)) return active
    const last = segments.at(-1)
    if (!active && last && segmentEnd(last) === end && fits(last)) {
      // First append after open: carry on in the segment the last run left.
      const handle = await open(last.path, 'r+')
      active = { segment: last, handle }
      return active
    }
    if (active) {
      const sealed = active
      active = undefined
      // Its records were fsync'd as they were written; closing loses nothing.
      await sealed.handle.close().catch((err: unknown) => logger.warn({ err }, 'closing a full outbox segment failed'))
    }
    const path = join(dir, segmentFileName(end))
    const handle = await open(path, 'wx', PRIVATE_FILE_MODE)
    try {
      await syncDirectory(dir)
    } catch (err) {
      await handle.close().catch(() => {})
      await rm(path, { force: true }).catch(() => {})
      throw err
    }
    const segment: Segment = { first: end, path, offsets: [], size: 0 }
    segments.push(segment)
    active = { segment, handle }
    return active
  }

  async function writeGroup(group: AppendRequest[], bytes: Buffer): Promise<void> {
    const target = await chooseSegment(bytes.length)
    const { segment, handle } = target
    const start = segment.size
    try {
      let written = 0
      while (written < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, start + written)
        written += bytesWritten
      }
      await handle.sync()
    } catch (cause) {
      const err = outboxUnavailable(dir, 'write or fsync failed', cause, { segment: segment.path })
      try {
        // Cut off what may have reached the file so the segment stays a clean
        // sequence of durable records and later appends can follow them.
        await handle.truncate(start)
        await handle.sync()
      } catch (truncateCause) {
        broken = outboxUnavailable(dir, 'a failed write could not be undone; appends are refused until the outbox is reopened', truncateCause)
        logger.error({ err: broken }, 'outbox broken')
      }
      throw err
    }
    // Durable from here on: index the records, then tell the callers.
    let offset = start
    let position = end
    const ranges: { first: bigint; last: bigint }[] = []
    for (const request of group) {
      const first = position
      for (const length of request.lengths) {
        segment.offsets.push(offset)
        offset += length
      }
      position += BigInt(request.lengths.length)
      ranges.push({ first, last: position - 1n })
    }
    segment.size = offset
    end = position
    group.forEach((request, i) => request.resolve(ranges[i]!))
  }

  function startCommitting(): void {
    if (commitRunning) return
    commitRunning = true
    committing = commitLoop()
  }

  async function commitLoop(): Promise<void> {
    try {
      while (queue.length > 0) {
        // A group stays within one segment's worth of bytes, and always takes
        // at least one request however large.
        let take = 0
        let size = 0
        while (take < queue.length && (take === 0 || size + queue[take]!.bytes.length <= config.segmentBytes)) {
          size += queue[take]!.bytes.length
          take += 1
        }
        const group = queue.slice(0, take)
        queue = queue.slice(take)
        try {
          if (broken) throw broken
          await writeGroup(group, group.length === 1 ? group[0]!.bytes : Buffer.concat(group.map((r) => r.bytes), size))
        } catch (cause) {
          const err = cause instanceof OutboxError ? cause : outboxUnavailable(dir, 'cannot append', cause)
          logger.error({ err, messages: group.reduce((n, r) => n + r.lengths.length, 0) }, 'outbox append failed')
          for (const request of group) request.reject(err)
        } finally {
          reservedBytes -= size
        }
      }
    } finally {
      // Cleared in the same turn as the loop's last look at the queue, so an
      // append arriving after it starts a new loop instead of waiting forever.
      commitRunning = false
    }
  }

  async function readRange(segment: Segment, start: number, endByte: number): Promise<Buffer> {
    const handle = await open(segment.path, 'r')
    try {
      const buf = Buffer.allocUnsafe(endByte - start)
      let got = 0
      while (got < buf.length) {
        const { bytesRead } = await handle.read(buf, got, buf.length - got, start + got)
        if (bytesRead === 0) throw new Error(`segment ends at byte ${start + got}, before its indexed records (byte ${endByte})`)
        got += bytesRead
      }
      return buf
    } finally {
      await handle.close()
    }
  }

  /** The first segment holding a record at or after `position`. */
  function findSegmentFrom(position: bigint): Segment | undefined {
    return segments.find((segment) => segmentEnd(segment) > position)
  }

  async function persistAcknowledgement(through: bigint): Promise<void> {
    if (through < cursor) return
    if (through >= end) throw new RangeError(`outbox acknowledge(${through}) is beyond the last durable position ${end - 1n}`)
    const next = skipLost(through + 1n)
    try {
      await writeCursorFile(dir, { cursor: next, next: end })
    } catch (cause) {
      throw outboxUnavailable(dir, 'cannot persist the cursor', cause)
    }
    cursor = next
    durableCursor = next
    // The last segment is left to removeDeliveredLast: appends may be writing to it.
    const done = segments.slice(0, -1).filter((segment) => segmentEnd(segment) <= cursor)
    segments.splice(0, segments.length, ...segments.filter((segment) => !done.includes(segment)))
    for (const segment of done) await removeSegmentFile(segment)
    await removeDeliveredLast()
  }

  /**
   * Deletes the last segment once every record in it is acknowledged and no
   * append is queued or being written: a drained outbox must not keep
   * delivered events readable on disk until the next open. It is detached in
   * one synchronous step, so a later append starts a new segment, named after
   * `end`, which is above every position in this one: the unlink below can
   * never meet that new file. An empty segment (left by a failed write) holds
   * no event and may share its name with the next one, so it stays.
   */
  async function removeDeliveredLast(): Promise<void> {
    const last = segments.at(-1)
    if (!last || last.offsets.length === 0 || segmentEnd(last) > durableCursor || commitRunning || queue.length > 0) return
    segments.pop()
    const sealed = active?.segment === last ? active : undefined
    if (sealed) active = undefined
    await sealed?.handle.close().catch((err: unknown) => logger.warn({ err }, 'closing a delivered outbox segment failed'))
    await removeSegmentFile(last)
  }

  async function removeSegmentFile(segment: Segment): Promise<void> {
    // Not fatal: the cursor is persisted, and the next open deletes whatever is wholly below it.
    await rm(segment.path, { force: true }).catch((err: unknown) => logger.warn({ err, segment: segment.path }, 'cannot delete a delivered outbox segment'))
  }

  return Object.freeze({
    dir,
    append(messages: readonly OutboxMessage[]): Promise<{ first: bigint; last: bigint }> {
      if (closed) return Promise.reject(makeClosedError())
      if (broken) return Promise.reject(broken)
      if (messages.length === 0) return Promise.resolve({ first: end, last: end - 1n })
      let encoded: { bytes: Buffer; lengths: number[] }
      try {
        encoded = encodeFrames(messages)
      } catch (err) {
        return Promise.reject(err as Error)
      }
      const pending = countPendingBytes()
      if (pending + reservedBytes + encoded.bytes.length > config.maxBytes) {
        return Promise.reject(
          new OutboxError(
            'OUTBOX_FULL',
            `outbox ${dir} is full: ${pending + reservedBytes} bytes undelivered or being written, ${encoded.bytes.length} more would pass maxBytes ${config.maxBytes}`,
            { details: { dir, pending_bytes: pending, reserved_bytes: reservedBytes, requested_bytes: encoded.bytes.length, max_bytes: config.maxBytes } },
          ),
        )
      }
      reservedBytes += encoded.bytes.length
      return new Promise((resolve, reject) => {
        queue.push({ bytes: encoded.bytes, lengths: encoded.lengths, resolve, reject })
        startCommitting()
      })
    },
    cursor: () => cursor,
    end: () => end,
    async read(from: bigint, maxMessages: number, maxBytes: number): Promise<StoredMessage[]> {
      if (closed) throw makeClosedError()
      const out: StoredMessage[] = []
      let position = from < cursor ? cursor : from
      let bytes = 0
      while (out.length < maxMessages && position < end) {
        const segment = findSegmentFrom(position)
        if (!segment) break
        // Snapshot: appends only ever add records after these.
        const count = segment.offsets.length
        const size = segment.size
        if (position < segment.first) position = segment.first
        const i = Number(position - segment.first)
        // Pick the records to fetch with one read, using a lower bound of
        // each one's key+value bytes; the exact cut is made after decoding.
        let j = i
        let estimate = bytes
        while (j < count && out.length + (j - i) < maxMessages) {
          const frameEnd = j + 1 < count ? segment.offsets[j + 1]! : size
          const least = frameEnd - segment.offsets[j]! - FRAME_OVERHEAD_MAX
          if (out.length + (j - i) > 0 && estimate + least > maxBytes) break
          estimate += least
          j += 1
        }
        if (j === i) break
        let buf: Buffer
        try {
          buf = await readRange(segment, segment.offsets[i]!, j < count ? segment.offsets[j]! : size)
        } catch (cause) {
          // Acknowledged and deleted while this read ran: those records are delivered.
          if ((cause as NodeJS.ErrnoException).code === 'ENOENT' && !segments.includes(segment)) break
          throw outboxUnavailable(dir, 'cannot read a segment', cause, { segment: segment.path })
        }
        let at = 0
        let full = false
        for (let k = i; k < j; k++) {
          const frame = readFrame(buf, at)
          const recordPosition = segment.first + BigInt(k)
          if (frame.status !== 'ok') {
            const err = new OutboxError('OUTBOX_CORRUPT', `outbox record ${recordPosition} in ${segment.path} no longer reads back (${frame.problem}); reopen the outbox to set the segment aside`, {
              details: { dir, segment: segment.path, position: recordPosition.toString() },
            })
            logger.error({ err, code: err.code }, 'outbox record corrupt on read')
            throw err
          }
          const recordBytes = (frame.key?.length ?? 0) + frame.value.length
          if (out.length > 0 && bytes + recordBytes > maxBytes) {
            full = true
            break
          }
          out.push({ position: recordPosition, key: frame.key, value: frame.value })
          bytes += recordBytes
          at = frame.end
        }
        if (full || j < count) break
        position = segment.first + BigInt(j)
      }
      return out
    },
    acknowledge(through: bigint): Promise<void> {
      if (closed) return Promise.reject(makeClosedError())
      // One at a time, so cursors are written in order and a slow older
      // acknowledgement cannot overwrite a newer one.
      const run = acknowledging.then(() => persistAcknowledgement(through))
      acknowledging = run.catch(() => {})
      return run
    },
    stats(): OutboxStats {
      return { pendingMessages: countPending(), pendingBytes: countPendingBytes(), segments: segments.length, lostMessages }
    },
    async close(): Promise<void> {
      if (closed) return
      closed = true
      await committing
      await acknowledging
      await removeDeliveredLast()
      if (active) {
        const { handle } = active
        active = undefined
        await handle.close().catch((err: unknown) => logger.warn({ err }, 'closing the outbox segment failed'))
      }
      await lock.release()
    },
  })
}
