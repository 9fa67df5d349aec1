import { ReadtrailError, type ReadtrailErrorOptions } from '../../common/errors.js'

/** Raised by the database hooks: a misconfigured table, a refused read in strict mode. */
export class HookError extends ReadtrailError {}

/**
 * A read of a fail-closed table whose audit event could not be made durable
 * (broker acknowledgement or outbox fsync) within the deadline. The hooked
 * query rejects with it and the caller never sees the rows.
 */
export class AuditUnavailableError extends ReadtrailError {
  constructor(message: string, options: ReadtrailErrorOptions = {}) {
    super('AUDIT_UNAVAILABLE', message, { ...options })
  }
}
