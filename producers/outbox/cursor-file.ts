import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { replaceFile } from '../../common/atomic-file.js'

export const CURSOR_FILE = 'cursor'
const CURSOR_TEMP_FILE = 'cursor.tmp'

/** What the cursor file keeps between runs. Positions are decimal strings in JSON, bigints in memory. */
export interface CursorState {
  /** Next position not yet acknowledged. */
  cursor: bigint
  /**
   * Next position to assign. Kept so positions are never reused, even once
   * every segment has been delivered and deleted, or a damaged tail set aside.
   */
  next: bigint
}

const Position = z.string().regex(/^\d{1,20}$/, 'a decimal position')
const CursorFileContents = z
  .object({ version: z.literal(1), cursor: Position, next: Position })
  .strict()
  .refine((c) => BigInt(c.cursor) <= BigInt(c.next), 'cursor beyond next')

export type CursorRead = { kind: 'missing' } | { kind: 'ok'; state: CursorState } | { kind: 'unreadable'; problem: string }

/** Reads the cursor file; its contents are checked, never trusted. File-system errors other than absence are thrown. */
export async function readCursorFile(dir: string): Promise<CursorRead> {
  let text: string
  try {
    text = await readFile(join(dir, CURSOR_FILE), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
    throw err
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return { kind: 'unreadable', problem: 'not JSON' }
  }
  const parsed = CursorFileContents.safeParse(json)
  if (!parsed.success) return { kind: 'unreadable', problem: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') }
  return { kind: 'ok', state: { cursor: BigInt(parsed.data.cursor), next: BigInt(parsed.data.next) } }
}

/**
 * Replaces the cursor file atomically: temp file, fsync, rename, fsync the
 * directory. A crash leaves either the old cursor or the new one, never a
 * torn file; the old one only means some records are delivered twice.
 */
export async function writeCursorFile(dir: string, state: CursorState): Promise<void> {
  const text = `${JSON.stringify({ version: 1, cursor: state.cursor.toString(), next: state.next.toString() })}\n`
  // A fixed temp name, so recovery can remove one a crash left (removeCursorTemp); the outbox lock keeps writers to one.
  await replaceFile(join(dir, CURSOR_FILE), text, { tempPath: join(dir, CURSOR_TEMP_FILE) })
}

/** Removes a temp file a crash left behind mid-write; the cursor file beside it is whole. */
export async function removeCursorTemp(dir: string): Promise<void> {
  await rm(join(dir, CURSOR_TEMP_FILE), { force: true })
}
