import { ReadtrailError } from '../../common/errors.js'

/**
 * Raised by the local outbox; `code` is OUTBOX_FULL, OUTBOX_UNAVAILABLE,
 * OUTBOX_LOCKED or OUTBOX_CORRUPT, and `retriable` says whether the same
 * call may succeed later.
 */
export class OutboxError extends ReadtrailError {}

/** A file-system failure: the disk may come back (space freed, remounted), so the caller may retry. */
export function outboxUnavailable(dir: string, what: string, cause: unknown, details: Record<string, unknown> = {}): OutboxError {
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new OutboxError('OUTBOX_UNAVAILABLE', `outbox ${dir}: ${what}: ${reason}`, { cause, details: { dir, ...details } })
}
