import { ReadtrailError } from '../../common/errors.js'
/**
 * The codes the database-audit reader raises, each with the sentence the
 * documentation shows and whether the same operation may succeed if tried
 * again unchanged. Kept in one table so `retriable` is decided per code,
 * never at a throw site. The codes and their documentation are also in
 * common/error-codes.ts and docs/errors.md; test/unit/error-codes.test.ts
 * keeps the retriable flags here and there in agreement.
 */
export const DB_AUDIT_ERROR_CODES = {
  DB_AUDIT_POSITION_INVALID: {
    retriable: false,
    doc: 'The database-audit reader\'s position file is unreadable, too large, not the expected JSON, written for another source or log, or readable or writable by group or others (or owned by another user); the reader refuses to guess where it stopped.',
  },
  DB_AUDIT_POSITION_UNAVAILABLE: {
    retriable: true,
    doc: 'The database-audit reader could not write or fsync its position file; it stops before reading further, so no entry is published twice after a restart.',
  },
  DB_AUDIT_LOG_UNAVAILABLE: {
    retriable: true,
    doc: 'The database\'s audit log (file or directory) could not be listed, opened or read (missing, permission denied, I/O error).',
  },
  DB_AUDIT_LOG_UNSUPPORTED: {
    retriable: false,
    doc: 'The database\'s audit log is written in a way the reader cannot read exactly: a time zone other than UTC or a numeric offset, or a pgAudit message it does not know; the message names the setting to change.',
  },
  DB_AUDIT_RESUME_CONFLICT: {
    retriable: false,
    doc: 'What Kafka holds from this reader (its signed db-audit batches) does not line up with its position file or with the log as it now reads: the position file was lost, restored from an older copy, or the logs were changed. Nothing was published; the message names what differs.',
  },
  DB_AUDIT_READER_LOCKED: {
    retriable: true,
    doc: 'Another live process is already reading this source (its lock file in the state directory names its pid); two readers of one source would publish every entry twice.',
  },
  DB_AUDIT_PUBLISH_FAILED: {
    retriable: true,
    doc: 'Kafka did not acknowledge a db-audit batch; its entries are read again and republished, its position is not committed.',
  },
} as const satisfies Record<string, { retriable: boolean; doc: string }>

export type DbAuditErrorCode = keyof typeof DB_AUDIT_ERROR_CODES

export interface DbAuditErrorOptions {
  cause?: unknown
  /** Paths, offsets, limits: never statement text or user data. */
  details?: Record<string, unknown>
}

/** Raised by the database-audit reader; callers branch on `code` and retry only on `retriable` (common/error-codes.ts decides it per code). */
export class DbAuditError extends ReadtrailError {
  declare readonly code: DbAuditErrorCode

  constructor(code: DbAuditErrorCode, message: string, options: DbAuditErrorOptions = {}) {
    super(code, message, options)
  }
}
