import { ReadtrailError, type ReadtrailErrorOptions } from '../common/errors.js'

/** Raised by the SDK: closed producer, unacknowledged publish, unsplittable read. */
export class ProducerError extends ReadtrailError {}

/**
 * A hooked read refused by the extraction guard: EXTRACTION_LIMIT (over a
 * budget whose action refuses, or throttled past its bound) or
 * GUARD_UNAVAILABLE (the budget could not be checked and fails closed). The
 * caller sees no rows; `details` names the budget, window, limit and what
 * was observed, never the records.
 */
export class ExtractionGuardError extends ReadtrailError {
  constructor(code: 'EXTRACTION_LIMIT' | 'GUARD_UNAVAILABLE', message: string, options: ReadtrailErrorOptions = {}) {
    super(code, message, options)
  }
}
