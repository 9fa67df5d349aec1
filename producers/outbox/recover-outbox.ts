import { open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../../common/logger.js'
import { PRIVATE_FILE_MODE } from '../../common/private-dir.js'
import { CURSOR_FILE, readCursorFile, removeCursorTemp, writeCursorFile, type CursorState } from './cursor-file.js'
import { OutboxError } from './errors.js'
import { parseSegmentFileName, scanSegment, segmentEnd, segmentFileName, type Segment } from './segment.js'
import { syncDirectory } from '../../common/atomic-file.js'

/** Positions start at 1, like the first segment's name `00000000000000000001.seg`. */
export const FIRST_POSITION = 1n

// The valid prefix of a damaged segment is written here before the damaged
// file is renamed away, so a crash between the two renames loses neither.
const RECOVERING_SUFFIX = '.recovering'

export interface RecoveredOutbox {
  /** Segments holding records not yet acknowledged (and possibly the last one, fully acknowledged), by position. */
  segments: Segment[]
  /** Persisted cursor; may point into a gap left by set-aside records. */
  cursor: bigint
  /** Position after the last one ever assigned. */
  end: bigint
  /** Undelivered records set aside as corrupt during this recovery. */
  lostMessages: number
}

/**
 * Rebuilds the outbox's state from its directory after any kind of exit,
 * clean or not. The rules, in order:
 *
 * - Segments wholly below the persisted cursor were delivered; a crash
 *   between writing the cursor and deleting them left them behind. Deleted.
 * - A damaged end of the last segment, with no valid record after the
 *   damage and no position the cursor file knows of inside it, is a write a
 *   crash tore: it was never fsync'd, so never reported durable. Truncated,
 *   with a warning.
 * - Any other damage is corruption of records that were reported durable.
 *   The valid records before it stay deliverable; the rest are counted as
 *   lost, logged at error level with OUTBOX_CORRUPT, and the damaged file is
 *   kept as `<name>.corrupt`. Positions after it are never reused.
 */
export async function recoverOutbox(dir: string, logger: Logger): Promise<RecoveredOutbox> {
  await removeCursorTemp(dir)
  const state = await loadCursor(dir, logger)
  await finishInterruptedSetAsides(dir, logger)

  const firsts = (await readdir(dir))
    .map(parseSegmentFileName)
    .filter((p): p is bigint => p !== undefined)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))

  const segments: Segment[] = []
  let end = maxOf(state.next, state.cursor, FIRST_POSITION)
  let lostMessages = 0
  let namesChanged = false

  for (const [i, first] of firsts.entries()) {
    const nextFirst = firsts[i + 1]
    const name = segmentFileName(first)
    const path = join(dir, name)
    if (nextFirst !== undefined && nextFirst <= state.cursor) {
      await rm(path, { force: true })
      namesChanged = true
      continue
    }
    const bytes = await readFile(path)
    const scan = scanSegment(bytes)
    const validEnd = first + BigInt(scan.offsets.length)
    const segment: Segment = { first, path, offsets: scan.offsets, size: scan.validBytes }
    end = maxOf(end, validEnd)
    if (scan.damage) {
      const { damage } = scan
      // The cursor file's `next` was written when every position below it
      // was durable: damage hiding one of those is not a torn write.
      const torn = nextFirst === undefined && damage.framesAfter === 0 && validEnd >= state.next
      if (torn) {
        await truncateFile(path, scan.validBytes)
        logger.warn(
          { segment: name, offset: damage.offset, problem: damage.problem, bytes_dropped: bytes.length - scan.validBytes },
          'outbox segment ended in a torn record (a write a crash interrupted, never reported durable); truncated it',
        )
      } else {
        // How many records the damage swallowed: exactly up to the next
        // segment's first position, or for the last segment at least the
        // damaged record plus every valid one found past it.
        const lostEnd = nextFirst ?? maxOf(validEnd + 1n + BigInt(damage.framesAfter), state.next)
        const lost = lostEnd - maxOf(validEnd, state.cursor)
        lostMessages += lost > 0n ? Number(lost) : 0
        end = maxOf(end, lostEnd)
        // Persist `next` before anything moves: once the damaged file is set
        // aside nothing else remembers that its positions were used.
        state.next = maxOf(state.next, end)
        await writeCursorFile(dir, state)
        const keptAs = await setAside(dir, name, bytes.subarray(0, scan.validBytes))
        namesChanged = true
        const err = new OutboxError(
          'OUTBOX_CORRUPT',
          `outbox segment ${name} is damaged at byte ${damage.offset} (${damage.problem}); ${scan.offsets.length} records before it stay deliverable, ` +
            `${lost > 0n ? lost : 0n} undelivered records after it are lost; the damaged file is kept as ${keptAs}`,
          { details: { dir, segment: name, offset: damage.offset, kept_as: keptAs } },
        )
        logger.error(
          { err, code: err.code, segment: name, offset: damage.offset, problem: damage.problem, lost_messages: Number(lost > 0n ? lost : 0n), kept_as: keptAs },
          'outbox segment corrupt: set aside, its undelivered records counted as lost',
        )
        if (scan.offsets.length === 0) continue
      }
    }
    segments.push(segment)
  }

  // A fully delivered last segment is deleted too: the next append starts a
  // new one at `end`, and the cursor file remembers `end`.
  const last = segments.at(-1)
  if (last && segmentEnd(last) <= state.cursor && state.next >= end) {
    await rm(last.path, { force: true })
    segments.pop()
    namesChanged = true
  }
  if (namesChanged) await syncDirectory(dir)
  return { segments, cursor: state.cursor, end, lostMessages }
}

async function loadCursor(dir: string, logger: Logger): Promise<CursorState> {
  const read = await readCursorFile(dir)
  if (read.kind === 'ok') return read.state
  if (read.kind === 'unreadable') {
    // Written only by rename of a fsync'd temp file, so this is not a crash
    // artefact. Replaying from the oldest segment delivers some events twice
    // (consumers dedupe on event_id) rather than risk skipping any.
    const keptAs = await uniqueName(dir, `${CURSOR_FILE}.corrupt`)
    await rename(join(dir, CURSOR_FILE), join(dir, keptAs))
    const err = new OutboxError('OUTBOX_CORRUPT', `outbox cursor file is unreadable (${read.problem}); replaying every segment from the oldest; kept as ${keptAs}`, {
      details: { dir, kept_as: keptAs },
    })
    logger.error({ err, code: err.code, problem: read.problem, kept_as: keptAs }, 'outbox cursor file corrupt: replaying from the oldest segment')
  }
  return { cursor: FIRST_POSITION, next: FIRST_POSITION }
}

/**
 * Sets a damaged segment aside as `<name>.corrupt`, never deleting it, and
 * puts its valid prefix (if any) back under the segment's own name.
 */
async function setAside(dir: string, name: string, validPrefix: Buffer): Promise<string> {
  const keptAs = await uniqueName(dir, `${name}.corrupt`)
  if (validPrefix.length > 0) {
    const recovering = join(dir, `${name}${RECOVERING_SUFFIX}`)
    const handle = await open(recovering, 'w', PRIVATE_FILE_MODE)
    try {
      await handle.writeFile(validPrefix)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(join(dir, name), join(dir, keptAs))
    await rename(recovering, join(dir, name))
  } else {
    await rename(join(dir, name), join(dir, keptAs))
  }
  await syncDirectory(dir)
  return keptAs
}

/**
 * Completes a set-aside a crash interrupted. With the damaged segment still
 * in place the copy may be partial: it is dropped and the segment examined
 * afresh. With the damaged file already renamed, the copy was fsync'd
 * before that rename and is the segment's valid prefix.
 */
async function finishInterruptedSetAsides(dir: string, logger: Logger): Promise<void> {
  const names = await readdir(dir)
  let changed = false
  for (const name of names) {
    if (!name.endsWith(RECOVERING_SUFFIX)) continue
    const segmentName = name.slice(0, -RECOVERING_SUFFIX.length)
    if (parseSegmentFileName(segmentName) === undefined) continue
    const setAsideDone = names.some((n) => n.startsWith(`${segmentName}.`) && n.endsWith('.corrupt'))
    if (!names.includes(segmentName) && setAsideDone) {
      await rename(join(dir, name), join(dir, segmentName))
      logger.warn({ segment: segmentName }, 'outbox finished setting aside a corrupt segment that a crash interrupted')
    } else {
      await rm(join(dir, name), { force: true })
    }
    changed = true
  }
  if (changed) await syncDirectory(dir)
}

async function truncateFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'r+')
  try {
    await handle.truncate(size)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** `wanted`, or `wanted` with a number before its extension if that name is taken: a set-aside file is never overwritten. */
async function uniqueName(dir: string, wanted: string): Promise<string> {
  const names = new Set(await readdir(dir))
  if (!names.has(wanted)) return wanted
  const dot = wanted.lastIndexOf('.')
  for (let n = 2; ; n++) {
    const candidate = `${wanted.slice(0, dot)}.${n}${wanted.slice(dot)}`
    if (!names.has(candidate)) return candidate
  }
}

function maxOf(...values: bigint[]): bigint {
  return values.reduce((a, b) => (a > b ? a : b))
}
