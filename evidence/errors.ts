import { ReadtrailError, type ReadtrailErrorOptions } from '../common/errors.js'

/** The codes evidence export and verification raise; each is documented in docs/errors.md. */
export type EvidenceErrorCode = 'EVIDENCE_NOT_FOUND' | 'EVIDENCE_NOT_COVERED' | 'EVIDENCE_CHAIN_BROKEN' | 'EVIDENCE_INVALID'

/**
 * An evidence bundle could not be exported, or a bundle file is not one.
 * A bundle that parses but does not prove its claim is not an error: it is an
 * `ok: false` verdict.
 */
export class EvidenceError extends ReadtrailError {
  declare readonly code: EvidenceErrorCode

  constructor(code: EvidenceErrorCode, message: string, options: ReadtrailErrorOptions = {}) {
    super(code, message, options)
  }
}
