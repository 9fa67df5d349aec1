import { join } from 'node:path'
import { z } from 'zod'
import { replaceFile } from '../../common/atomic-file.js'
import { readCheckedFile } from '../../common/checked-read.js'
import { DB_AUDIT_SOURCE_KINDS } from '../../schemas/db-audit-event.js'
import { DbAuditError } from './errors.js'
import { FileIdentity } from './file-identity.js'
import { PendingRead } from './server-audit-joiner.js'

// Pending MariaDB statements are bounded by the reader (maxPending); this
// bound keeps a planted or damaged file from being read whole.
const MAX_POSITION_BYTES = 8 * 1024 * 1024

/**
 * Where a reader stopped: the file (by identity) and the offset after the
 * last entry whose batch Kafka acknowledged, the last reader_seq it gave, the
 * MariaDB reads still waiting for their QUERY line, and where in Kafka its
 * next batch will be (so a restart looks only there for a batch acked after
 * this was written). Offsets are decimal strings in JSON.
 */
export const DbAuditPosition = z
  .object({
    version: z.literal(1),
    source: z.string().min(1).max(128),
    kind: z.enum(DB_AUDIT_SOURCE_KINDS),
    /** The configured log location; a reader pointed elsewhere refuses this file. */
    log: z.string().min(1).max(4096),
    /** null before the first file was found (an empty log directory). */
    file: FileIdentity.nullable(),
    offset: z.number().int().min(0),
    seq: z.number().int().min(0),
    pending: z.array(PendingRead).max(100_000),
    kafka: z.object({ topic: z.string().min(1).max(249), partition: z.number().int().min(0), next_offset: z.string().regex(/^\d{1,20}$/) }).strict(),
  })
  .strict()
export type DbAuditPosition = z.output<typeof DbAuditPosition>

export function positionPath(stateDir: string, source: string): string {
  return join(stateDir, `db-audit-${source}.position.json`)
}

/**
 * Reads the position file, or undefined when there is none. It decides what
 * is published next, so it must be this user's and private (as the keys
 * are); its contents are checked, never trusted.
 */
export function readPositionFile(path: string): DbAuditPosition | undefined {
  let bytes: Buffer
  try {
    bytes = readCheckedFile(path, { maxBytes: MAX_POSITION_BYTES, forbiddenModeBits: 0o077, rootMayOwn: false }, (refusal) => {
      if (refusal.problem === 'missing') return new MissingPosition()
      return new DbAuditError('DB_AUDIT_POSITION_INVALID', `the position file ${path} ${refusal.message}`, { cause: refusal.cause, details: { path, problem: refusal.problem } })
    })
  } catch (err) {
    if (err instanceof MissingPosition) return undefined
    throw err
  }
  let json: unknown
  try {
    json = JSON.parse(bytes.toString('utf8'))
  } catch (cause) {
    throw new DbAuditError('DB_AUDIT_POSITION_INVALID', `the position file ${path} is not JSON`, { cause, details: { path, problem: 'not-json' } })
  }
  const parsed = DbAuditPosition.safeParse(json)
  if (!parsed.success) {
    const problem = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
    throw new DbAuditError('DB_AUDIT_POSITION_INVALID', `the position file ${path} is not a db-audit position: ${problem}`, { details: { path, problem } })
  }
  return parsed.data
}

/** Replaces the position file atomically and durably (temp file, fsync, rename, fsync of the directory). */
export async function writePositionFile(path: string, position: DbAuditPosition): Promise<void> {
  try {
    await replaceFile(path, `${JSON.stringify(position)}\n`, { tempPath: `${path}.tmp` })
  } catch (cause) {
    throw new DbAuditError('DB_AUDIT_POSITION_UNAVAILABLE', `cannot write the position file ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause, details: { path } })
  }
}

class MissingPosition extends Error {}
